#include "cpu/halfWeights.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/blas.h"
#include "cpu/dotTile.h"
#include "cpu/tileDispatch.h"
#include "cpu/vecmath.h"

#if AHA_VECTOR && defined(__F16C__)
#define AHA_HALF_VECTOR 1
#include <immintrin.h>
#endif

namespace aha::cpu {

namespace {

#if AHA_HALF_VECTOR
using vm::fma;
using vm::hsum;
using vm::kLanes;
using vm::load;
using vm::zero;
using Vec = vm::V;

#if defined(__AVX512F__)
inline Vec widenBf16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// 2*kLanes bf16 weights as two float vectors: each 32-bit lane holds a pair, w[2j] low and w[2j+1] high. Shifted up,
// the low half is w[2j] as a float; masked, the high half is w[2j+1]. Two single-cycle integer ops widen 2*kLanes
// weights (a zero-extend and a shift per kLanes otherwise), and the FMAs take x split the same way.
inline void splitBf16(const uint16_t* p, Vec& even, Vec& odd) {
  const __m512i v = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
// Tiles sized to the 32 vector registers: 16 accumulators, 8 weight vectors, an x.
constexpr int kMR = 4, kNR = 4;
#else
inline Vec widenBf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline void splitBf16(const uint16_t* p, Vec& even, Vec& odd) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
// Tiles sized to the 16 vector registers: 9 accumulators, 6 weight vectors, an x (a 4 x 4 tile spills).
constexpr int kMR = 3, kNR = 3;
#endif
// The scalar tail of the bf16 tile (its vector loop is its own: splitBf16 and x split to match).
struct Bf16Weights {
  using T = uint16_t;
  static float scalar(uint16_t w) { return bf16ToFloat(w); }
};
// Weights per step along K of the bf16 kernel (one split).
constexpr int kPair = 2 * kLanes;

// Keeps v in a register. Left alone, GCC folds the load of x into each of the NR FMAs that use it (a memory operand
// per FMA): four loads where one would do, and at batch 8 the loads, not the FMAs, set the pace (measured: 15-50%
// faster products with this barrier, which emits no instruction).
inline void inRegister(Vec& v) { asm("" : "+v"(v)); }

// x rows reordered per step of kPair into [x even lanes][x odd lanes], matching splitBf16. K's tail (under kPair)
// stays as it is: the tiles do it in scalars from the original rows.
void splitRows(float* dst, const float* X, int M, int K) {
  const int steps = K / kPair;
  for (int r = 0; r < M; r++) {
    const float* x = X + (size_t)r * K;
    float* d = dst + (size_t)r * K;
    for (int s = 0; s < steps; s++)
      for (int j = 0; j < kLanes; j++) {
        d[s * kPair + j] = x[s * kPair + 2 * j];
        d[s * kPair + kLanes + j] = x[s * kPair + 2 * j + 1];
      }
  }
}

// MR rows of x against NR rows of 16-bit W, both along K: each widened weight vector feeds MR FMAs, and the MR*NR
// independent accumulators keep enough loads and FMAs in flight that one thread streams the weights as fast as memory
// delivers them (with one or two accumulators the FMA latency, not memory, set the pace). Xs is x split as
// splitRows does (read by the bf16 tile only), X the original rows (for K's tail, and the f16 tile).
struct Bf16Tile {
  using Fn = void (*)(const float*, const float*, int, const uint16_t*, int, int, float*, int, const float*);
  template <int MR, int NR>
  static void run(const float* Xs, const float* X, int ldx, const uint16_t* W, int ldw, int K, float* C, int ldc,
                  const float* bias) {
    Vec acc[MR][NR];
    for (int r = 0; r < MR; r++)
      for (int c = 0; c < NR; c++) acc[r][c] = zero();
    int k = 0;
    for (; k + kPair <= K; k += kPair) {
      Vec even[NR], odd[NR];
      for (int c = 0; c < NR; c++) splitBf16(W + (size_t)c * ldw + k, even[c], odd[c]);
      prefetchNextTile<NR>(W, ldw, k);
      for (int r = 0; r < MR; r++) {
        Vec xe = load(Xs + (size_t)r * ldx + k);
        inRegister(xe);
        for (int c = 0; c < NR; c++) acc[r][c] = fma(xe, even[c], acc[r][c]);
        Vec xo = load(Xs + (size_t)r * ldx + k + kLanes);
        inRegister(xo);
        for (int c = 0; c < NR; c++) acc[r][c] = fma(xo, odd[c], acc[r][c]);
      }
    }
    finishTile<Bf16Weights, MR, NR>(acc, X, ldx, W, ldw, k, K, C, ldc, bias);
  }
};

// f16 has no cheaper widening than F16C's conversion: the shared tile with widened loads (Xs unused).
struct F16Tile {
  using Fn = Bf16Tile::Fn;
  template <int MR, int NR>
  static void run(const float*, const float* X, int ldx, const uint16_t* W, int ldw, int K, float* C, int ldc,
                  const float* bias) {
    Vec acc[MR][NR];
    const int k = accumulateTile<F16Weights, MR, NR>(X, ldx, W, ldw, K, acc);
    finishTile<F16Weights, MR, NR>(acc, X, ldx, W, ldw, k, K, C, ldc, bias);
  }
};

// rowDot (dotTile.h) for bf16: four accumulators over K, the weights split into even and odd lanes as the tile does.
float bf16RowDot(const float* xs, const float* x, const uint16_t* w, int K) {
  Vec a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
  int k = 0;
  for (; k + 2 * kPair <= K; k += 2 * kPair) {
    Vec e0, o0, e1, o1;
    splitBf16(w + k, e0, o0);
    splitBf16(w + k + kPair, e1, o1);
    a0 = fma(load(xs + k), e0, a0);
    a1 = fma(load(xs + k + kLanes), o0, a1);
    a2 = fma(load(xs + k + kPair), e1, a2);
    a3 = fma(load(xs + k + kPair + kLanes), o1, a3);
  }
  for (; k + kPair <= K; k += kPair) {
    Vec e0, o0;
    splitBf16(w + k, e0, o0);
    a0 = fma(load(xs + k), e0, a0);
    a1 = fma(load(xs + k + kLanes), o0, a1);
  }
  float s = hsum(vm::add(vm::add(a0, a1), vm::add(a2, a3)));
  for (; k < K; k++) s += x[k] * bf16ToFloat(w[k]);
  return s;
}
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
  if (t == DType::F16)
    for (; i + kLanes <= n; i += kLanes) vm::store(dst + i, F16Weights::load(src + i));
  else
    for (; i + kLanes <= n; i += kLanes) vm::store(dst + i, widenBf16(src + i));
#endif
  for (; i < n; i++) dst[i] = toFloat(src[i], t);
}

void linearForward16(float* out, const float* inp, const uint16_t* W, DType t, const float* b, int N, int IC, int OC) {
#if AHA_HALF_VECTOR
  if (N <= kDirectRows) {
    // The split copy of x: N * IC floats, made once here for every thread's tiles.
    static thread_local std::vector<float> split;
    const float* xs = nullptr;
    if (t == DType::BF16) {
      split.resize((size_t)N * IC);
      splitRows(split.data(), inp, N, IC);
      xs = split.data();
    }
    if (N == 1) {
      const int rowChunk = std::max(1, (1 << 15) / IC);
#pragma omp parallel for schedule(dynamic, rowChunk)
      for (int o = 0; o < OC; o++) {
        const uint16_t* w = W + (size_t)o * IC;
        const float s = xs ? bf16RowDot(xs, inp, w, IC) : rowDot<F16Weights>(inp, w, IC);
        out[o] = b ? s + b[o] : s;
      }
      return;
    }
    const int nBlocks = (OC + kNR - 1) / kNR;
    // Chunks of about 64 KiB of weights handed out as threads come free: on a shared CPU a worker the kernel has
    // descheduled holds up only its current chunk, not a fixed half of the matrix.
    const int chunk = std::max(1, (1 << 15) / (kNR * IC));
#pragma omp parallel for schedule(dynamic, chunk)
    for (int nb = 0; nb < nBlocks; nb++) {
      const int n0 = nb * kNR, nr = std::min(kNR, OC - n0);
      for (int m0 = 0; m0 < N; m0 += kMR) {
        const int mr = std::min(kMR, N - m0);
        const Bf16Tile::Fn tile =
            t == DType::BF16 ? pickTile<Bf16Tile, kMR, kNR>(mr, nr) : pickTile<F16Tile, kMR, kNR>(mr, nr);
        tile(xs ? xs + (size_t)m0 * IC : nullptr, inp + (size_t)m0 * IC, IC, W + (size_t)n0 * IC, IC, IC,
             out + (size_t)m0 * OC + n0, OC, b ? b + n0 : nullptr);
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
