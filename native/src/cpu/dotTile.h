// The register tile behind the engine's few-row products (decode steps): MR rows of x against NR weight rows, both
// read along K, MR*NR dot products at once. Each loaded weight vector feeds MR FMAs and no packing copy of W is made;
// the MR*NR independent accumulators keep enough loads and FMAs in flight that one thread streams the weights as fast
// as memory delivers them. The weights' element type is a policy: float32 as stored, or 16-bit widened on load.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/vecmath.h"
#include "dtype.h"

#if AHA_VECTOR
namespace aha::cpu {

// Loads kLanes float32 weights, or widens kLanes f16 weights (F16C).
struct F32Weights {
  using T = float;
  static vm::V load(const float* p) { return vm::load(p); }
  static float scalar(float w) { return w; }
};
#if defined(__F16C__)
struct F16Weights {
  using T = uint16_t;
  static vm::V load(const uint16_t* p) {
#if defined(__AVX512F__)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#else
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
  }
  static float scalar(uint16_t w) { return f16ToFloat(w); }
};
#endif

// Asks for the weights the next tile along N will read at this k (rows NR..2NR-1 of W, which follow this tile's rows
// in memory), into L2. A tile reads NR rows at once, and NR interleaved streams of a row's length each are more than
// the hardware prefetchers keep ahead of; decode is bound by that stream. Measured on decode steps (tokens/s, Zen 4
// EPYC, 2 threads): 0.5B's shapes at 8 rows in bf16 83 -> 95 with the prefetch into L1 and -> 109 into L2; the 27M
// shape at 4 rows 629 -> 866 (f32) and 933 -> 1396 (bf16) from L1 to L2. Into L1 the prefetches take the line-fill
// buffers the tile's own loads need. Past the matrix's end this reads nothing: prefetches do not fault.
template <int NR, class T>
inline void prefetchNextTile(const T* W, int ldw, int k) {
  for (int c = 0; c < NR; c++) _mm_prefetch(reinterpret_cast<const char*>(W + (size_t)(NR + c) * ldw + k), _MM_HINT_T1);
}

// Accumulates the tile over K's whole vectors; returns where K's scalar tail starts.
template <class Weights, int MR, int NR>
inline int accumulateTile(const float* X, int ldx, const typename Weights::T* W, int ldw, int K, vm::V (&acc)[MR][NR]) {
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] = vm::zero();
  int k = 0;
  for (; k + vm::kLanes <= K; k += vm::kLanes) {
    vm::V w[NR];
    for (int c = 0; c < NR; c++) w[c] = Weights::load(W + (size_t)c * ldw + k);
    prefetchNextTile<NR>(W, ldw, k);
    for (int r = 0; r < MR; r++) {
      const vm::V x = vm::load(X + (size_t)r * ldx + k);
      for (int c = 0; c < NR; c++) acc[r][c] = vm::fma(x, w[c], acc[r][c]);
    }
  }
  return k;
}

// C[r, c] = sum of acc[r][c]'s lanes + K's tail from k on (in scalars) + bias[c].
template <class Weights, int MR, int NR>
inline void finishTile(vm::V (&acc)[MR][NR], const float* X, int ldx, const typename Weights::T* W, int ldw, int k,
                       int K, float* C, int ldc, const float* bias) {
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) {
      float s = vm::hsum(acc[r][c]);
      for (int kk = k; kk < K; kk++) s += X[(size_t)r * ldx + kk] * Weights::scalar(W[(size_t)c * ldw + kk]);
      C[(size_t)r * ldc + c] = bias ? s + bias[c] : s;
    }
}

// One row of x against one row of W along K, for products with a single row of x (a decode step at batch 1). With
// no second row of x to share a weight vector with, a tile's only gain is independent accumulators, and those cost it
// NR interleaved weight streams; here four accumulators split K instead, so each thread reads one stream front to
// back, which the hardware prefetchers follow best (measured in a harness on 52 MB of bf16 rows of 512: 19-29 GB/s
// against 13-18 GB/s for the 1 x 4 tile, on 2 threads of a Zen 4 EPYC).
template <class Weights>
inline float rowDot(const float* x, const typename Weights::T* w, int K) {
  vm::V a0 = vm::zero(), a1 = vm::zero(), a2 = vm::zero(), a3 = vm::zero();
  int k = 0;
  for (; k + 4 * vm::kLanes <= K; k += 4 * vm::kLanes) {
    a0 = vm::fma(vm::load(x + k), Weights::load(w + k), a0);
    a1 = vm::fma(vm::load(x + k + vm::kLanes), Weights::load(w + k + vm::kLanes), a1);
    a2 = vm::fma(vm::load(x + k + 2 * vm::kLanes), Weights::load(w + k + 2 * vm::kLanes), a2);
    a3 = vm::fma(vm::load(x + k + 3 * vm::kLanes), Weights::load(w + k + 3 * vm::kLanes), a3);
  }
  for (; k + vm::kLanes <= K; k += vm::kLanes) a0 = vm::fma(vm::load(x + k), Weights::load(w + k), a0);
  float s = vm::hsum(vm::add(vm::add(a0, a1), vm::add(a2, a3)));
  for (; k < K; k++) s += x[k] * Weights::scalar(w[k]);
  return s;
}

}  // namespace aha::cpu
#endif
