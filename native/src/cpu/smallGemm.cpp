#include "cpu/smallGemm.h"

#include <omp.h>

#include <algorithm>

#include "cpu/blas.h"
#include "cpu/dotTile.h"
#include "cpu/tileDispatch.h"
#include "cpu/vecmath.h"

namespace aha::cpu {

namespace {

#if AHA_VECTOR
constexpr bool kVectorKernel = true;
using vm::kLanes;
using Vec = vm::V;
using vm::fma;
using vm::hsum;
using vm::load;
using vm::zero;

struct DotTile {
  using Fn = void (*)(const float*, int, const float*, int, int, float*, int, const float*);

  // The edge tiles (and any tile but the full one): accumulateTile's loop, the weights read as stored.
  template <int MR, int NR>
  static void run(const float* X, int ldx, const float* W, int ldw, int K, float* C, int ldc, const float* bias) {
    Vec acc[MR][NR];
    const int k = accumulateTile<F32Weights, MR, NR>(X, ldx, W, ldw, K, acc);
    finishTile<F32Weights, MR, NR>(acc, X, ldx, W, ldw, k, K, C, ldc, bias);
  }
};

// The full 4 x 3 tile with its twelve accumulators as named variables: held in an array (as the edge tiles are),
// GCC spills them to the stack on every iteration and the kernel runs at half speed.
template <>
void DotTile::run<4, 3>(const float* X, int ldx, const float* W, int ldw, int K, float* C, int ldc, const float* bias) {
  Vec a00 = zero(), a01 = zero(), a02 = zero(), a10 = zero(), a11 = zero(), a12 = zero();
  Vec a20 = zero(), a21 = zero(), a22 = zero(), a30 = zero(), a31 = zero(), a32 = zero();
  const float *x0 = X, *x1 = X + ldx, *x2 = X + 2 * (size_t)ldx, *x3 = X + 3 * (size_t)ldx;
  const float *w0 = W, *w1 = W + ldw, *w2 = W + 2 * (size_t)ldw;
  int k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    const Vec b0 = load(w0 + k), b1 = load(w1 + k), b2 = load(w2 + k);
    prefetchNextTile<3>(W, ldw, k);
    Vec x = load(x0 + k);
    a00 = fma(x, b0, a00), a01 = fma(x, b1, a01), a02 = fma(x, b2, a02);
    x = load(x1 + k);
    a10 = fma(x, b0, a10), a11 = fma(x, b1, a11), a12 = fma(x, b2, a12);
    x = load(x2 + k);
    a20 = fma(x, b0, a20), a21 = fma(x, b1, a21), a22 = fma(x, b2, a22);
    x = load(x3 + k);
    a30 = fma(x, b0, a30), a31 = fma(x, b1, a31), a32 = fma(x, b2, a32);
  }
  const float sums[4][3] = {{hsum(a00), hsum(a01), hsum(a02)},
                            {hsum(a10), hsum(a11), hsum(a12)},
                            {hsum(a20), hsum(a21), hsum(a22)},
                            {hsum(a30), hsum(a31), hsum(a32)}};
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 3; c++) {
      float v = sums[r][c];
      for (int kk = k; kk < K; kk++) v += X[(size_t)r * ldx + kk] * W[(size_t)c * ldw + kk];
      C[(size_t)r * ldc + c] = bias ? v + bias[c] : v;
    }
}

constexpr int kMR = 4, kNR = 3;
#else
constexpr bool kVectorKernel = false;
#endif

}  // namespace

bool smallGemmAvailable() { return kVectorKernel; }

void smallGemmNT(float* C, const float* X, const float* W, const float* bias, int M, int K, int N) {
#if AHA_VECTOR
  if (M <= 0 || N <= 0) return;
  if (M == 1) {
    const int rowChunk = std::max(1, (1 << 14) / K);
#pragma omp parallel for schedule(dynamic, rowChunk)
    for (int n = 0; n < N; n++) {
      const float s = rowDot<F32Weights>(X, W + (size_t)n * K, K);
      C[n] = bias ? s + bias[n] : s;
    }
    return;
  }
  const int nBlocks = (N + kNR - 1) / kNR;
  // Threads own disjoint column blocks; a block of W rows stays in L1 while every row of X passes over it. Each
  // output is one dot product in a fixed order, so results do not depend on the thread count. Chunks of about
  // 64 KiB of W go to threads as they come free: on a shared CPU a descheduled worker holds up only its chunk.
  const int chunk = std::max(1, (1 << 14) / (kNR * K));
#pragma omp parallel for schedule(dynamic, chunk)
  for (int nb = 0; nb < nBlocks; nb++) {
    const int n0 = nb * kNR, nr = std::min(kNR, N - n0);
    for (int m0 = 0; m0 < M; m0 += kMR) {
      const int mr = std::min(kMR, M - m0);
      pickTile<DotTile, kMR, kNR>(mr, nr)(X + (size_t)m0 * K, K, W + (size_t)n0 * K, K, K, C + (size_t)m0 * N + n0, N,
                                          bias ? bias + n0 : nullptr);
    }
  }
#else
  sgemm(false, true, M, N, K, 1.0f, X, K, W, K, 0.0f, C, N);
  if (bias)
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * N + j] += bias[j];
#endif
}

}  // namespace aha::cpu
