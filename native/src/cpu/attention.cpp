#include "cpu/attention.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/blas.h"

namespace aha::cpu {

namespace {
constexpr int kQueryBlock = 128;

// Fills P[B, r1] with softmax probabilities of causal rows r0..r0+B-1 from the raw scores in place.
// When lseIn is null the log-sum-exp is computed and stored to lseOut; otherwise lseIn is used (backward).
void causalSoftmax(float* P, int B, int r0, int r1, const float* lseIn, float* lseOut, int lseStride) {
  for (int i = 0; i < B; i++) {
    float* row = P + (size_t)i * r1;
    int valid = r0 + i + 1;
    float lse;
    if (lseIn) {
      lse = lseIn[(size_t)i * lseStride];
    } else {
      float mx = row[0];
      for (int j = 1; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
      double s = 0;
      for (int j = 0; j < valid; j++) s += std::exp(row[j] - mx);
      lse = mx + (float)std::log(s);
      lseOut[(size_t)i * lseStride] = lse;
    }
    for (int j = 0; j < valid; j++) row[j] = std::exp(row[j] - lse);
    for (int j = valid; j < r1; j++) row[j] = 0.0f;
  }
}
}  // namespace

void attentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                      const AttentionShape& s) {
  const int D = s.headDim, qs = s.heads * D, ks = s.kvHeads * D, group = s.heads / s.kvHeads;
  const float scale = 1.0f / std::sqrt((float)D);
  const int tasks = s.numSeqs * s.heads;
#pragma omp parallel
  {
    std::vector<float> scratch;
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < tasks; task++) {
      int sq = task / s.heads, h = task % s.heads, kh = h / group;
      int st = s.starts[sq], T = s.starts[sq + 1] - st;
      for (int r0 = 0; r0 < T; r0 += kQueryBlock) {
        int r1 = r0 + kQueryBlock < T ? r0 + kQueryBlock : T, B = r1 - r0;
        if (scratch.size() < (size_t)B * r1) scratch.resize((size_t)B * r1);
        float* P = scratch.data();
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
    std::vector<float> pbuf, dpbuf, dibuf;
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
          if (pbuf.size() < (size_t)B * r1) {
            pbuf.resize((size_t)B * r1);
            dpbuf.resize((size_t)B * r1);
          }
          dibuf.resize(B);
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

void attentionDecode(float* out, const float* q, const float* kCache, const float* vCache, const int32_t* lens,
                     const uint8_t* active, int batch, int maxLen, int heads, int kvHeads, int D) {
  const int qs = heads * D, ks = kvHeads * D, group = heads / kvHeads;
  const float scale = 1.0f / std::sqrt((float)D);
#pragma omp parallel
  {
    std::vector<float> sc;
#pragma omp for schedule(static) collapse(2)
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < heads; h++) {
        if (!active[b]) continue;
        int L = lens[b], kh = h / group;
        if (sc.size() < (size_t)L) sc.resize(L);
        const float* qv = q + (size_t)b * qs + h * D;
        const float* K = kCache + (size_t)b * maxLen * ks + kh * D;
        const float* V = vCache + (size_t)b * maxLen * ks + kh * D;
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
          const float* kr = K + (size_t)j * ks;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int d = 0; d < D; d++) dot += qv[d] * kr[d];
          sc[j] = dot * scale;
          mx = sc[j] > mx ? sc[j] : mx;
        }
        double sum = 0;
        for (int j = 0; j < L; j++) {
          sc[j] = std::exp(sc[j] - mx);
          sum += sc[j];
        }
        float inv = (float)(1.0 / sum);
        float* o = out + (size_t)b * qs + h * D;
        for (int d = 0; d < D; d++) o[d] = 0;
        for (int j = 0; j < L; j++) {
          const float* vr = V + (size_t)j * ks;
          float p = sc[j] * inv;
#pragma omp simd
          for (int d = 0; d < D; d++) o[d] += p * vr[d];
        }
      }
    }
  }
}

}  // namespace aha::cpu
