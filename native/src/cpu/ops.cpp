#include "cpu/ops.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/blas.h"
#include "cpu/threadScratch.h"
#include "cpu/vecmath.h"

namespace aha::cpu {

namespace {
// Below this many floats an elementwise or per-row op runs on the calling thread: a decode step's vectors (a few
// thousand floats) take a microsecond or less, where starting and joining a parallel region costs several, and on a
// shared CPU a descheduled worker stalls the region for its whole time slice. Each element or row is computed the
// same way whichever thread runs it, so results do not change.
constexpr size_t kSerialFloats = size_t(1) << 15;
}  // namespace

void embeddingForward(float* out, const int32_t* ids, const float* table, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= kSerialFloats)
  for (int i = 0; i < N; i++) std::memcpy(out + (size_t)i * C, table + (size_t)ids[i] * C, sizeof(float) * C);
}

void embeddingBackward(float* dtable, const float* dout, const int32_t* ids, int N, int C) {
  // Rows may repeat an id, so columns are split across threads instead of rows.
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
    for (int i = 0; i < N; i++) {
      float* d = dtable + (size_t)ids[i] * C;
      const float* g = dout + (size_t)i * C;
      for (int c = c0; c < c1; c++) d[c] += g[c];
    }
  }
}

void rmsnormForward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= kSerialFloats)
  for (int i = 0; i < N; i++) {
    const float* x = inp + (size_t)i * C;
    float* y = out + (size_t)i * C;
    double ss = 0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    float r = (float)(1.0 / std::sqrt(ss / C + eps));
    for (int c = 0; c < C; c++) y[c] = x[c] * r * w[c];
    rstd[i] = r;
  }
}

void rmsnormBackward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                     int N, int C, bool accumulate) {
  // Per-thread partial sums of dw, added in thread order: the result does not depend on scheduling.
  const int maxThreads = omp_get_max_threads();
  std::vector<float> partial((size_t)maxThreads * C, 0.0f);
  int used = 1;
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
#pragma omp single
    used = nt;
    float* dwLocal = partial.data() + (size_t)t * C;
    const int i0 = (int)((long)N * t / nt), i1 = (int)((long)N * (t + 1) / nt);
    for (int i = i0; i < i1; i++) {
      const float* x = inp + (size_t)i * C;
      const float* dy = dout + (size_t)i * C;
      float* dx = dinp + (size_t)i * C;
      float r = rstd[i];
      double dot = 0;
      for (int c = 0; c < C; c++) {
        dot += (double)dy[c] * w[c] * x[c];
        dwLocal[c] += dy[c] * x[c] * r;
      }
      float k = (float)(dot * r * r * r / C);
      if (accumulate)
        for (int c = 0; c < C; c++) dx[c] += r * dy[c] * w[c] - k * x[c];
      else
        for (int c = 0; c < C; c++) dx[c] = r * dy[c] * w[c] - k * x[c];
    }
  }
  if (dw)
    for (int t = 0; t < used; t++)
      for (int c = 0; c < C; c++) dw[c] += partial[(size_t)t * C + c];
}

void linearForward(float* out, const float* inp, const float* W, const float* b, int N, int IC, int OC) {
  sgemm(false, true, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC);
  if (b) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
      float* o = out + (size_t)i * OC;
      for (int j = 0; j < OC; j++) o[j] += b[j];
    }
  }
}

void linearBackward(float* dinp, float* dW, float* db, const float* dout, const float* inp, const float* W, int N,
                    int IC, int OC, bool accumulateDinp) {
  if (dinp) sgemm(false, false, N, IC, OC, 1.0f, dout, OC, W, IC, accumulateDinp ? 1.0f : 0.0f, dinp, IC);
  if (dW) sgemm(true, false, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dW, IC);
  if (db) {
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int j0 = (int)((long)OC * t / nt), j1 = (int)((long)OC * (t + 1) / nt);
      for (int i = 0; i < N; i++) {
        const float* g = dout + (size_t)i * OC;
        for (int j = j0; j < j1; j++) db[j] += g[j];
      }
    }
  }
}

void rope(float* x, const int32_t* pos, const float* cosT, const float* sinT, int N, int heads, int D, bool inverse) {
  const int half = D / 2;
  const float sgn = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static) if ((size_t)N * heads * D >= kSerialFloats)
  for (int i = 0; i < N; i++) {
    const float* cs = cosT + (size_t)pos[i] * half;
    const float* sn = sinT + (size_t)pos[i] * half;
    for (int h = 0; h < heads; h++) {
      float* a = x + ((size_t)i * heads + h) * D;
      for (int j = 0; j < half; j++) {
        float x1 = a[j], x2 = a[j + half], c = cs[j], s = sgn * sn[j];
        a[j] = x1 * c - x2 * s;
        a[j + half] = x2 * c + x1 * s;
      }
    }
  }
}

static inline float sigmoidf(float z) { return 1.0f / (1.0f + vm::expScalar(-z)); }

// Parallel over fixed chunks of whole vectors; the scalar tail handles what is left.
template <class VecBody, class ScalarBody>
static void elementwise(size_t n, VecBody vbody, ScalarBody sbody) {
  size_t vecEnd = 0;
#if AHA_VECTOR
  vecEnd = n / vm::kLanes * vm::kLanes;
  const long nv = (long)(vecEnd / vm::kLanes);
#pragma omp parallel for schedule(static) if (n >= kSerialFloats)
  for (long v = 0; v < nv; v++) vbody((size_t)v * vm::kLanes);
#endif
  for (size_t i = vecEnd; i < n; i++) sbody(i);
}

void swigluForward(float* act, const float* gate, const float* up, size_t n) {
  elementwise(
      n,
      [&](size_t i) {
#if AHA_VECTOR
        using namespace vm;
        V g = load(gate + i);
        V s = sigmoid(g);
        store(act + i, mul(mul(g, s), load(up + i)));
#endif
      },
      [&](size_t i) {
        float g = gate[i];
        act[i] = g * sigmoidf(g) * up[i];
      });
}

void swigluBackward(float* dgate, float* dup, const float* dact, const float* gate, const float* up, size_t n) {
  elementwise(
      n,
      [&](size_t i) {
#if AHA_VECTOR
        using namespace vm;
        V g = load(gate + i), da = load(dact + i);
        V s = sigmoid(g);
        store(dup + i, mul(da, mul(g, s)));
        // d silu / dg = s * (1 + g * (1 - s))
        store(dgate + i, mul(mul(mul(da, load(up + i)), s), fma(g, sub(set1(1.0f), s), set1(1.0f))));
#endif
      },
      [&](size_t i) {
        float g = gate[i], s = sigmoidf(g), silu = g * s;
        dup[i] = dact[i] * silu;
        dgate[i] = dact[i] * up[i] * s * (1.0f + g * (1.0f - s));
      });
}

void addInPlace(float* x, const float* y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kSerialFloats)
  for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// Log-sum-exp of a row: float exps (vectorised), summed in double over short blocks, for accuracy at large
// vocabularies.
static inline double rowLse(const float* z, int V) {
  const float mx = maxOf(z, V);
  return mx + std::log(expShiftSumOnly(z, V, mx));
}

// sum_v p_v z_v with p = exp(z - lse), in double over float blocks.
static inline double expectedLogit(const float* z, int V, double lse, float* tmp) {
  expShiftSum(tmp, z, V, (float)lse);
  double s = 0;
  for (int v = 0; v < V; v++) s += (double)tmp[v] * z[v];
  return s;
}

void logprobForward(float* logp, float* entropy, const float* logits, const int32_t* targets, int N, int V) {
#pragma omp parallel
  {
    std::vector<float>& tmp = threadScratch(Scratch::LogitRow);
    if (entropy && tmp.size() < (size_t)V) tmp.resize(V);
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      const float* z = logits + (size_t)i * V;
      if (targets[i] < 0) {
        logp[i] = 0;
        if (entropy) entropy[i] = 0;
        continue;
      }
      double lse = rowLse(z, V);
      logp[i] = (float)(z[targets[i]] - lse);
      if (entropy) entropy[i] = (float)(lse - expectedLogit(z, V, lse, tmp.data()));  // H = lse - E_p[z]
    }
  }
}

void logprobBackward(float* dlogits, const float* logits, const int32_t* targets, const float* dlogp,
                     const float* dentropy, int N, int V) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const float* z = logits + (size_t)i * V;
    float* dz = dlogits + (size_t)i * V;
    float gl = dlogp ? dlogp[i] : 0.0f, ge = dentropy ? dentropy[i] : 0.0f;
    if (targets[i] < 0 || (gl == 0.0f && ge == 0.0f)) {
      std::memset(dz, 0, sizeof(float) * V);
      continue;
    }
    const double lse = rowLse(z, V);
    // z may alias dz (the head overwrites logits with their gradient): each element is read before it is written.
    if (ge == 0.0f) {
      // d logp / dz_v = [v == target] - p_v
      expShiftSum(dz, z, V, (float)lse);
      for (int v = 0; v < V; v++) dz[v] *= -gl;
    } else {
      // d H / dz_v = -p_v (log p_v + H)
      double pz = 0;
      for (int v = 0; v < V; v++) pz += std::exp(z[v] - lse) * z[v];
      const double H = lse - pz;
      for (int v = 0; v < V; v++) {
        double lp = z[v] - lse, p = std::exp(lp);
        dz[v] = (float)(-gl * p - ge * p * (lp + H));
      }
    }
    dz[targets[i]] += gl;
  }
}

}  // namespace aha::cpu
