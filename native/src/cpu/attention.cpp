#include "cpu/attention.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/blas.h"
#include "cpu/halfWeights.h"
#include "cpu/threadScratch.h"
#include "cpu/vecmath.h"

namespace aha::cpu {

namespace {
constexpr int kQueryBlock = 128;

// Fills P[B, r1] with softmax probabilities of causal rows r0..r0+B-1 from the raw scores in place.
// When lseIn is null the log-sum-exp is computed and stored to lseOut; otherwise lseIn is used (backward), so the
// backward recomputes exactly the forward's probabilities.
void causalSoftmax(float* P, int B, int r0, int r1, const float* lseIn, float* lseOut, int lseStride) {
  for (int i = 0; i < B; i++) {
    float* row = P + (size_t)i * r1;
    int valid = r0 + i + 1;
    float lse;
    if (lseIn) {
      lse = lseIn[(size_t)i * lseStride];
    } else {
      const float mx = maxOf(row, valid);
      lse = mx + (float)std::log(expShiftSumOnly(row, valid, mx));
      lseOut[(size_t)i * lseStride] = lse;
    }
    expShiftSum(row, row, valid, lse);
    for (int j = valid; j < r1; j++) row[j] = 0.0f;
  }
}
}  // namespace

void attentionForward(float* out, float* lse, const float* q, const float* k, const float* v, const AttentionShape& s) {
  const int D = s.headDim, qs = s.heads * D, ks = s.kvHeads * D, group = s.heads / s.kvHeads;
  const float scale = 1.0f / std::sqrt((float)D);
  const int tasks = s.numSeqs * s.heads;
#pragma omp parallel
  {
    std::vector<float>& buf = threadScratch(Scratch::AttentionScores);
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < tasks; task++) {
      int sq = task / s.heads, h = task % s.heads, kh = h / group;
      int st = s.starts[sq], T = s.starts[sq + 1] - st;
      for (int r0 = 0; r0 < T; r0 += kQueryBlock) {
        int r1 = r0 + kQueryBlock < T ? r0 + kQueryBlock : T, B = r1 - r0;
        if (buf.size() < (size_t)B * r1) buf.resize((size_t)B * r1);
        float* P = buf.data();
        const float* Q = q + (size_t)(st + r0) * qs + h * D;
        const float* K = k + (size_t)st * ks + kh * D;
        const float* V = v + (size_t)st * ks + kh * D;
        sgemm(false, true, B, r1, D, scale, Q, qs, K, ks, 0.0f, P, r1);
        causalSoftmax(P, B, r0, r1, nullptr, lse + (size_t)(st + r0) * s.heads + h, s.heads);
        sgemm(false, false, B, D, r1, 1.0f, P, r1, V, ks, 0.0f, out + (size_t)(st + r0) * qs + h * D, qs);
      }
    }
  }
}

void attentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                       const float* q, const float* k, const float* v, const AttentionShape& s) {
  const int D = s.headDim, qs = s.heads * D, ks = s.kvHeads * D, group = s.heads / s.kvHeads;
  const float scale = 1.0f / std::sqrt((float)D);
  const int N = s.starts[s.numSeqs];
  std::memset(dq, 0, sizeof(float) * (size_t)N * qs);
  std::memset(dk, 0, sizeof(float) * (size_t)N * ks);
  std::memset(dv, 0, sizeof(float) * (size_t)N * ks);
  // One task per (sequence, kv head): the query heads sharing a kv head all add into its dK/dV rows.
  const int tasks = s.numSeqs * s.kvHeads;
#pragma omp parallel
  {
    std::vector<float>& pbuf = threadScratch(Scratch::AttentionScores);
    std::vector<float>& dpbuf = threadScratch(Scratch::AttentionGrads);
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < tasks; task++) {
      int sq = task / s.kvHeads, kh = task % s.kvHeads;
      int st = s.starts[sq], T = s.starts[sq + 1] - st;
      const float* K = k + (size_t)st * ks + kh * D;
      const float* V = v + (size_t)st * ks + kh * D;
      float* dK = dk + (size_t)st * ks + kh * D;
      float* dV = dv + (size_t)st * ks + kh * D;
      for (int h = kh * group; h < (kh + 1) * group; h++) {
        for (int r0 = 0; r0 < T; r0 += kQueryBlock) {
          int r1 = r0 + kQueryBlock < T ? r0 + kQueryBlock : T, B = r1 - r0;
          if (pbuf.size() < (size_t)B * r1) pbuf.resize((size_t)B * r1);
          if (dpbuf.size() < (size_t)B * r1) dpbuf.resize((size_t)B * r1);
          float *P = pbuf.data(), *dP = dpbuf.data();
          const size_t rowOff = (size_t)(st + r0) * qs + h * D;
          const float* Q = q + rowOff;
          const float* O = out + rowOff;
          const float* dO = dout + rowOff;
          sgemm(false, true, B, r1, D, scale, Q, qs, K, ks, 0.0f, P, r1);
          causalSoftmax(P, B, r0, r1, lse + (size_t)(st + r0) * s.heads + h, nullptr, s.heads);
          sgemm(false, true, B, r1, D, 1.0f, dO, qs, V, ks, 0.0f, dP, r1);
          for (int i = 0; i < B; i++) {
            double di = 0;
            for (int d = 0; d < D; d++) di += (double)dO[(size_t)i * qs + d] * O[(size_t)i * qs + d];
            float* dpr = dP + (size_t)i * r1;
            const float* pr = P + (size_t)i * r1;
            for (int j = 0; j < r1; j++) dpr[j] = pr[j] * (dpr[j] - (float)di);  // dS (unscaled)
          }
          sgemm(false, false, B, D, r1, scale, dP, r1, K, ks, 1.0f, dq + rowOff, qs);
          sgemm(true, false, r1, D, B, scale, dP, r1, Q, qs, 1.0f, dK, ks);
          sgemm(true, false, r1, D, B, 1.0f, P, r1, dO, qs, 1.0f, dV, ks);
        }
      }
    }
  }
}

namespace {

// The decode attention over a cache of element type T; row(base, offset, buf) gives D floats of the row at offset
// (float32 rows in place, 16-bit rows widened into buf).
template <class T, class Row>
void attentionDecodeOver(float* out, const float* q, const T* kCache, const T* vCache, const int32_t* lens,
                         const uint8_t* active, int batch, int maxLen, int heads, int kvHeads, int D, Row row) {
  const int qs = heads * D, group = heads / kvHeads;
  const float scale = 1.0f / std::sqrt((float)D);
  // One task per (sequence, kv head): the query heads that share a kv head read its cached keys and values once.
  const int tasks = batch * kvHeads;
  // A short cache (one sequence, a few hundred positions) is less work than waking the other threads for it.
  size_t work = 0;
  for (int b = 0; b < batch; b++)
    if (active[b]) work += (size_t)lens[b] * heads * D;
#pragma omp parallel if (work >= (size_t(1) << 18))
  {
    std::vector<float>& sc = threadScratch(Scratch::DecodeScores);
    std::vector<float> buf(D);
#pragma omp for schedule(static)
    for (int task = 0; task < tasks; task++) {
      const int b = task / kvHeads, kh = task % kvHeads;
      if (!active[b]) continue;
      const int L = lens[b];
      if (sc.size() < (size_t)group * L) sc.resize((size_t)group * L);
      const float* Q = q + (size_t)b * qs + (size_t)kh * group * D;
      const size_t base = ((size_t)b * kvHeads + kh) * maxLen * D;
      for (int j = 0; j < L; j++) {
        const float* kr = row(kCache, base + (size_t)j * D, buf.data());
        for (int g = 0; g < group; g++) {
          const float* qv = Q + (size_t)g * D;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int d = 0; d < D; d++) dot += qv[d] * kr[d];
          sc[(size_t)g * L + j] = dot * scale;
        }
      }
      float* O = out + (size_t)b * qs + (size_t)kh * group * D;
      for (int g = 0; g < group; g++) {
        float* r = sc.data() + (size_t)g * L;
        const float mx = maxOf(r, L);
        const float inv = (float)(1.0 / expShiftSum(r, r, L, mx));
        for (int j = 0; j < L; j++) r[j] *= inv;
        for (int d = 0; d < D; d++) O[(size_t)g * D + d] = 0;
      }
      for (int j = 0; j < L; j++) {
        const float* vr = row(vCache, base + (size_t)j * D, buf.data());
        for (int g = 0; g < group; g++) {
          const float p = sc[(size_t)g * L + j];
          float* o = O + (size_t)g * D;
#pragma omp simd
          for (int d = 0; d < D; d++) o[d] += p * vr[d];
        }
      }
    }
  }
}

}  // namespace

void attentionDecode(float* out, const float* q, const float* kCache, const float* vCache, const int32_t* lens,
                     const uint8_t* active, int batch, int maxLen, int heads, int kvHeads, int D) {
  attentionDecodeOver(out, q, kCache, vCache, lens, active, batch, maxLen, heads, kvHeads, D,
                      [](const float* base, size_t off, float*) { return base + off; });
}

void attentionDecode16(float* out, const float* q, const uint16_t* kCache, const uint16_t* vCache, DType t,
                       const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads, int kvHeads,
                       int D) {
  attentionDecodeOver(out, q, kCache, vCache, lens, active, batch, maxLen, heads, kvHeads, D,
                      [t, D](const uint16_t* base, size_t off, float* buf) -> const float* {
                        widen(buf, base + off, t, D);
                        return buf;
                      });
}

}  // namespace aha::cpu
