// Vectorised exp over float arrays, for softmax, SiLU and log-softmax. libm's expf is scalar (about 20 cycles a
// call); these loops run 8 (AVX2) or 16 (AVX-512) lanes at a time with a Cephes-style range reduction and degree-6
// polynomial: relative error under 2e-7 over the float range, exp(-inf) = 0, NaN stays NaN, inputs
// above 88.376 saturate at about 2.4e38 instead of overflowing.
#pragma once
#include <cmath>
#include <cstddef>

// One switch for every vector kernel in the engine: AVX-512, or AVX2 with FMA (-march=native picks what the
// installing machine has); without either, the scalar and BLAS paths are used.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define AHA_VECTOR 1
#include <immintrin.h>
#endif

namespace aha::cpu {

namespace vm {
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kMaxX = 88.3762626647949f, kMinX = -87.3365447505531f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

inline float expScalar(float x) {
  if (!(x > kMinX)) return x != x ? x : 0.0f;  // NaN stays NaN; tiny and -inf underflow to 0
  if (x > kMaxX) x = kMaxX;
  float n = std::nearbyint(x * kLog2e);
  float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = ((((kP0 * r + kP1) * r + kP2) * r + kP3) * r + kP4) * r + kP5;
  p = p * r * r + r + 1.0f;
  return std::ldexp(p, (int)n);
}

#if defined(__AVX512F__)
constexpr int kLanes = 16;
using V = __m512;
inline V load(const float* p) { return _mm512_loadu_ps(p); }
inline V zero() { return _mm512_setzero_ps(); }
inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V set1(float x) { return _mm512_set1_ps(x); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V div(V a, V b) { return _mm512_div_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V max(V a, V b) { return _mm512_max_ps(a, b); }
inline float hsum(V v) { return _mm512_reduce_add_ps(v); }
inline float hmax(V v) { return _mm512_reduce_max_ps(v); }
inline V exp(V x) {
  __mmask16 under = _mm512_cmp_ps_mask(x, set1(kMinX), _CMP_NGT_UQ);  // x <= min or NaN
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const V xin = x;
  x = _mm512_min_ps(x, set1(kMaxX));
  V n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm512_fnmadd_ps(n, set1(kLn2Lo), _mm512_fnmadd_ps(n, set1(kLn2Hi), x));
  V p = fma(fma(fma(fma(fma(set1(kP0), r, set1(kP1)), r, set1(kP2)), r, set1(kP3)), r, set1(kP4)), r, set1(kP5));
  p = fma(mul(p, r), r, add(r, set1(1.0f)));
  V y = _mm512_scalef_ps(p, n);
  y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
  return _mm512_mask_mov_ps(y, nan, xin);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
using V = __m256;
inline V load(const float* p) { return _mm256_loadu_ps(p); }
inline V zero() { return _mm256_setzero_ps(); }
inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V set1(float x) { return _mm256_set1_ps(x); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V div(V a, V b) { return _mm256_div_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V max(V a, V b) { return _mm256_max_ps(a, b); }
inline float hsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(V v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline V exp(V x) {
  V under = _mm256_cmp_ps(x, set1(kMinX), _CMP_NGT_UQ);  // x <= min or NaN
  V nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  V xin = x;
  x = _mm256_min_ps(x, set1(kMaxX));
  V n = _mm256_round_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm256_fnmadd_ps(n, set1(kLn2Lo), _mm256_fnmadd_ps(n, set1(kLn2Hi), x));
  V p = fma(fma(fma(fma(fma(set1(kP0), r, set1(kP1)), r, set1(kP2)), r, set1(kP3)), r, set1(kP4)), r, set1(kP5));
  p = fma(mul(p, r), r, add(r, set1(1.0f)));
  // 2^n by building the exponent bits; n is in [-126, 128] here, 128 is split as 2^127 * 2.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i hi = _mm256_srai_epi32(ni, 1), lo = _mm256_sub_epi32(ni, hi);
  V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(hi, _mm256_set1_epi32(127)), 23));
  V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(lo, _mm256_set1_epi32(127)), 23));
  V y = mul(mul(p, s1), s2);
  y = _mm256_andnot_ps(under, y);
  return _mm256_blendv_ps(y, xin, nan);
}
#else
constexpr int kLanes = 1;
#endif
#if AHA_VECTOR
inline V sigmoid(V z) { return div(set1(1.0f), add(set1(1.0f), exp(sub(set1(0.0f), z)))); }
#endif
}  // namespace vm

// y[i] = exp(x[i] - shift); returns the sum of the y[i], accumulated in double over float blocks. y may equal x.
inline double expShiftSum(float* y, const float* x, size_t n, float shift) {
  double total = 0;
  size_t i = 0;
#if AHA_VECTOR
  const vm::V s = vm::set1(shift);
  while (i + vm::kLanes <= n) {
    // Blocks of at most 64 vectors are summed in float lanes, then added in double, so long rows keep precision.
    vm::V acc = vm::set1(0.0f);
    size_t end = i + 64 * vm::kLanes < n ? i + 64 * vm::kLanes : n;
    for (; i + vm::kLanes <= end; i += vm::kLanes) {
      vm::V e = vm::exp(vm::sub(vm::load(x + i), s));
      vm::store(y + i, e);
      acc = vm::add(acc, e);
    }
    total += vm::hsum(acc);
  }
#endif
  for (; i < n; i++) total += (y[i] = vm::expScalar(x[i] - shift));
  return total;
}

// sum of exp(x[i] - shift), nothing stored.
inline double expShiftSumOnly(const float* x, size_t n, float shift) {
  double total = 0;
  size_t i = 0;
#if AHA_VECTOR
  const vm::V s = vm::set1(shift);
  while (i + vm::kLanes <= n) {
    vm::V acc = vm::set1(0.0f);
    size_t end = i + 64 * vm::kLanes < n ? i + 64 * vm::kLanes : n;
    for (; i + vm::kLanes <= end; i += vm::kLanes) acc = vm::add(acc, vm::exp(vm::sub(vm::load(x + i), s)));
    total += vm::hsum(acc);
  }
#endif
  for (; i < n; i++) total += vm::expScalar(x[i] - shift);
  return total;
}

inline float maxOf(const float* x, size_t n) {
  float m = -INFINITY;
  size_t i = 0;
#if AHA_VECTOR
  if (n >= (size_t)vm::kLanes) {
    vm::V acc = vm::set1(-INFINITY);
    for (; i + vm::kLanes <= n; i += vm::kLanes) acc = vm::max(acc, vm::load(x + i));
    m = vm::hmax(acc);
  }
#endif
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

}  // namespace aha::cpu
