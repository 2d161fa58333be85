#include "cpu/halfWeights.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/blas.h"
#include "cpu/vecmath.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define AHA_HALF_VECTOR 1
#include <immintrin.h>
#endif

namespace aha::cpu {

namespace {

#if AHA_HALF_VECTOR
// Eight 16-bit weights widened to eight floats.
inline __m256 widen8(const uint16_t* p, DType t) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
// Sixteen 16-bit weights widened to sixteen floats.
inline __m512 widen16(const uint16_t* p, DType t) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (t == DType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

// MR rows of X against NR rows of W, both along K: each widened weight vector feeds MR FMAs, and the NR*MR
// independent accumulators keep enough loads and FMAs in flight that one thread streams the weights as fast as memory
// delivers them (with one or two accumulators the FMA latency, not memory, set the pace).
template <int MR, int NR>
void dotTile16(const float* X, int ldx, const uint16_t* W, int ldw, int K, DType t, float* C, int ldc,
               const float* bias) {
  int k = 0;
  float sums[MR][NR];
#if defined(__AVX512F__) && defined(__AVX512BW__)
  __m512 acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
  for (; k + 16 <= K; k += 16) {
    __m512 w[NR];
    for (int c = 0; c < NR; c++) w[c] = widen16(W + (size_t)c * ldw + k, t);
    for (int r = 0; r < MR; r++) {
      const __m512 x = _mm512_loadu_ps(X + (size_t)r * ldx + k);
      for (int c = 0; c < NR; c++) acc[r][c] = _mm512_fmadd_ps(x, w[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) sums[r][c] = _mm512_reduce_add_ps(acc[r][c]);
#else
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] = _mm256_setzero_ps();
  for (; k + 8 <= K; k += 8) {
    __m256 w[NR];
    for (int c = 0; c < NR; c++) w[c] = widen8(W + (size_t)c * ldw + k, t);
    for (int r = 0; r < MR; r++) {
      const __m256 x = _mm256_loadu_ps(X + (size_t)r * ldx + k);
      for (int c = 0; c < NR; c++) acc[r][c] = _mm256_fmadd_ps(x, w[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) sums[r][c] = hsum8(acc[r][c]);
#endif
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) {
      float s = sums[r][c];
      for (int kk = k; kk < K; kk++) s += X[(size_t)r * ldx + kk] * toFloat(W[(size_t)c * ldw + kk], t);
      C[(size_t)r * ldc + c] = bias ? s + bias[c] : s;
    }
}

using Tile16 = void (*)(const float*, int, const uint16_t*, int, int, DType, float*, int, const float*);
template <int MR>
Tile16 tileFor(int nr) {
  switch (nr) {
    case 1:
      return dotTile16<MR, 1>;
    case 2:
      return dotTile16<MR, 2>;
    case 3:
      return dotTile16<MR, 3>;
    default:
      return dotTile16<MR, 4>;
  }
}
Tile16 pickTile(int mr, int nr) {
  switch (mr) {
    case 1:
      return tileFor<1>(nr);
    case 2:
      return tileFor<2>(nr);
    case 3:
      return tileFor<3>(nr);
    default:
      return tileFor<4>(nr);
  }
}
constexpr int kMR = 4, kNR = 4;
// Rows up to which the direct kernel beats widening blocks for OpenBLAS (decode steps and short prompts).
constexpr int kDirectRows = 16;
#endif

// Weight rows widened per block for OpenBLAS: about 1 MiB of floats, so a block stays in L2 while the product runs.
int blockRows(int IC, int OC) { return std::max(16, std::min(OC, (1 << 18) / std::max(1, IC))); }

void widenBlock(float* dst, const uint16_t* src, DType t, size_t rows, size_t cols) {
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < rows; r++) widen(dst + r * cols, src + r * cols, t, cols);
}

}  // namespace

void widen(float* dst, const uint16_t* src, DType t, size_t n) {
  size_t i = 0;
#if AHA_HALF_VECTOR
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen8(src + i, t));
#endif
  for (; i < n; i++) dst[i] = toFloat(src[i], t);
}

void linearForward16(float* out, const float* inp, const uint16_t* W, DType t, const float* b, int N, int IC, int OC) {
#if AHA_HALF_VECTOR
  if (N <= kDirectRows) {
    const int nBlocks = (OC + kNR - 1) / kNR;
    // Chunks of about 64 KiB of weights handed out as threads come free: on a shared CPU a worker the kernel has
    // descheduled holds up only its current chunk, not a fixed half of the matrix.
    const int chunk = std::max(1, (1 << 15) / (kNR * IC));
#pragma omp parallel for schedule(dynamic, chunk)
    for (int nb = 0; nb < nBlocks; nb++) {
      const int n0 = nb * kNR, nr = std::min(kNR, OC - n0);
      for (int m0 = 0; m0 < N; m0 += kMR) {
        const int mr = std::min(kMR, N - m0);
        pickTile(mr, nr)(inp + (size_t)m0 * IC, IC, W + (size_t)n0 * IC, IC, IC, t, out + (size_t)m0 * OC + n0, OC,
                         b ? b + n0 : nullptr);
      }
    }
    return;
  }
#endif
  const int rows = blockRows(IC, OC);
  std::vector<float> block((size_t)rows * IC);
  for (int o0 = 0; o0 < OC; o0 += rows) {
    const int n = std::min(rows, OC - o0);
    widenBlock(block.data(), W + (size_t)o0 * IC, t, n, IC);
    sgemm(false, true, N, n, IC, 1.0f, inp, IC, block.data(), IC, 0.0f, out + o0, OC);
  }
  if (b) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
      for (int j = 0; j < OC; j++) out[(size_t)i * OC + j] += b[j];
  }
}

void linearInputGrad16(float* dinp, const float* dout, const uint16_t* W, DType t, int N, int IC, int OC,
                       bool accumulate) {
  const int rows = blockRows(IC, OC);
  std::vector<float> block((size_t)rows * IC);
  for (int o0 = 0; o0 < OC; o0 += rows) {
    const int n = std::min(rows, OC - o0);
    widenBlock(block.data(), W + (size_t)o0 * IC, t, n, IC);
    sgemm(false, false, N, IC, n, 1.0f, dout + o0, OC, block.data(), IC, accumulate || o0 > 0 ? 1.0f : 0.0f, dinp, IC);
  }
}

void embeddingForward16(float* out, const int32_t* ids, const uint16_t* table, DType t, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= (size_t(1) << 15))
  for (int i = 0; i < N; i++) widen(out + (size_t)i * C, table + (size_t)ids[i] * C, t, C);
}

}  // namespace aha::cpu
