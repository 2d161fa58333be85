#include "cpu/packedGemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu/threadScratch.h"
#include "cpu/vecmath.h"

namespace aha::cpu {

namespace {
#if AHA_VECTOR
constexpr bool kAvailable = true;
constexpr int kPanel = 2 * vm::kLanes;  // output columns per packed panel: two vectors (16 on AVX2, 32 on AVX-512)
#else
constexpr bool kAvailable = false;
constexpr int kPanel = 16;
#endif
constexpr int kRows = 6;     // rows of X per register tile: 6 x 2 accumulators + 2 panel vectors + 1 broadcast
constexpr int kDepth = 256;  // K block: the panel's slice stays in L1 across all row tiles

#if AHA_VECTOR
// C[6, kPanel] (+)= X[6, depth] Wp[depth, kPanel]: the panel slice is contiguous, rows of X are read with
// broadcasts. The twelve accumulators are named variables: held in an array, GCC spills them to the stack on every
// iteration and the kernel runs at half speed.
void tile6(const float* X, int ldx, const float* Wp, int depth, float* C, bool accumulate) {
  using namespace vm;
  constexpr int L = kLanes;
  V c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    c00 = load(C + 0 * L), c01 = load(C + 1 * L), c10 = load(C + 2 * L), c11 = load(C + 3 * L);
    c20 = load(C + 4 * L), c21 = load(C + 5 * L), c30 = load(C + 6 * L), c31 = load(C + 7 * L);
    c40 = load(C + 8 * L), c41 = load(C + 9 * L), c50 = load(C + 10 * L), c51 = load(C + 11 * L);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = zero();
  }
  const float *x0 = X, *x1 = X + ldx, *x2 = X + 2 * (size_t)ldx, *x3 = X + 3 * (size_t)ldx, *x4 = X + 4 * (size_t)ldx,
              *x5 = X + 5 * (size_t)ldx;
  for (int k = 0; k < depth; k++) {
    const V b0 = load(Wp + (size_t)k * kPanel), b1 = load(Wp + (size_t)k * kPanel + L);
    V a = set1(x0[k]);
    c00 = fma(a, b0, c00), c01 = fma(a, b1, c01);
    a = set1(x1[k]);
    c10 = fma(a, b0, c10), c11 = fma(a, b1, c11);
    a = set1(x2[k]);
    c20 = fma(a, b0, c20), c21 = fma(a, b1, c21);
    a = set1(x3[k]);
    c30 = fma(a, b0, c30), c31 = fma(a, b1, c31);
    a = set1(x4[k]);
    c40 = fma(a, b0, c40), c41 = fma(a, b1, c41);
    a = set1(x5[k]);
    c50 = fma(a, b0, c50), c51 = fma(a, b1, c51);
  }
  store(C + 0 * L, c00), store(C + 1 * L, c01), store(C + 2 * L, c10), store(C + 3 * L, c11);
  store(C + 4 * L, c20), store(C + 5 * L, c21), store(C + 6 * L, c30), store(C + 7 * L, c31);
  store(C + 8 * L, c40), store(C + 9 * L, c41), store(C + 10 * L, c50), store(C + 11 * L, c51);
}
#endif
}  // namespace

bool packedGemmAvailable() { return kAvailable; }

void PackedWeights::pack(const float* W, int n, int k) {
  N = n;
  K = k;
  panels = (N + kPanel - 1) / kPanel;
  data.assign((size_t)panels * K * kPanel, 0.0f);
  float* dst = data.data();
#pragma omp parallel for schedule(static)
  for (int p = 0; p < panels; p++) {
    float* P = dst + (size_t)p * K * kPanel;
    const int cols = std::min(kPanel, N - p * kPanel);
    for (int c = 0; c < cols; c++) {
      const float* row = W + (size_t)(p * kPanel + c) * K;
      for (int kk = 0; kk < K; kk++) P[(size_t)kk * kPanel + c] = row[kk];
    }
  }
}

void packedGemmNT(float* C, const float* X, const PackedWeights& pw, const float* bias, int M) {
  const int N = pw.N, K = pw.K;
  if (M <= 0 || N <= 0) return;
#if AHA_VECTOR
  // Threads own whole panels (disjoint output columns). For each panel the K blocks run in order and each row tile
  // accumulates into a panel-wide scratch of M x kPanel, so every output is summed in one fixed order whatever the
  // thread count.
  // Row tiles are always full: a short last tile reads a zero-padded copy of its rows.
  const int fullRows = M / kRows * kRows, tail = M - fullRows;
  std::vector<float>& padded = threadScratch(Scratch::PackedRows);
  if (tail) {
    padded.assign((size_t)kRows * K, 0.0f);
    std::memcpy(padded.data(), X + (size_t)fullRows * K, sizeof(float) * tail * K);
  }
  const int tiles = (M + kRows - 1) / kRows;
  const float* pad = padded.data();
#pragma omp parallel
  {
    std::vector<float>& acc = threadScratch(Scratch::PackedAcc);
    if (acc.size() < (size_t)tiles * kRows * kPanel) acc.resize((size_t)tiles * kRows * kPanel);
      // Panels go to threads as they come free: on a shared CPU a descheduled worker holds up only its panel.
#pragma omp for schedule(dynamic, 1)
    for (int p = 0; p < pw.panels; p++) {
      const float* Wp = pw.data.data() + (size_t)p * K * kPanel;
      for (int k0 = 0; k0 < K; k0 += kDepth) {
        const int depth = std::min(kDepth, K - k0);
        for (int t = 0; t < tiles; t++) {
          const float* rows = t * kRows < fullRows ? X + (size_t)t * kRows * K : pad;
          tile6(rows + k0, K, Wp + (size_t)k0 * kPanel, depth, acc.data() + (size_t)t * kRows * kPanel, k0 > 0);
        }
      }
      const int n0 = p * kPanel, cols = std::min(kPanel, N - n0);
      for (int m = 0; m < M; m++) {
        float* out = C + (size_t)m * N + n0;
        const float* a = acc.data() + (size_t)m * kPanel;
        if (bias)
          for (int c = 0; c < cols; c++) out[c] = a[c] + bias[n0 + c];
        else
          std::memcpy(out, a, sizeof(float) * cols);
      }
    }
  }
#else
  // Never packed on such CPUs (packedGemmAvailable() is false), so there is nothing to multiply with.
  (void)X;
  (void)bias;
  (void)C;
#endif
}

}  // namespace aha::cpu
