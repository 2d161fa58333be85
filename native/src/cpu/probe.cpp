#include "cpu/probe.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include "cpu/blas.h"

namespace aha::cpu {

#if defined(__AVX512F__)
constexpr int kFmaLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kFmaLanes = 8;
#else
constexpr int kFmaLanes = 1;
#endif

double sgemmGflops(int M, int N, int K, int reps) {
  std::vector<float> A((size_t)M * K), B((size_t)N * K), C((size_t)M * N);
  for (size_t i = 0; i < A.size(); i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
  for (size_t i = 0; i < B.size(); i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
  sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
  double best = 1e30;
  for (int r = 0; r < std::max(1, reps); r++) {
    double t0 = omp_get_wtime();
    sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
    best = std::min(best, omp_get_wtime() - t0);
  }
  return 2.0 * M * N * K / best / 1e9;
}

static double fmaPeakOnce();

double fmaPeakGflops() {
  // Best of three: on a shared machine one run can land on a busy moment.
  double best = 0;
  for (int r = 0; r < 3; r++) best = std::max(best, fmaPeakOnce());
  return best;
}

static double fmaPeakOnce() {
  // Ten independent accumulator chains per thread cover the FMA latency of every x86 core we know (4-5 cycles,
  // two pipes); the loop is long enough (~0.1 s) for clocks to settle.
  const long iters = 20000000;
  double seconds = 0;
  int threads = 1;
  double sink = 0;
#pragma omp parallel reduction(+ : sink)
  {
#pragma omp single
    threads = omp_get_num_threads();
    double t0 = omp_get_wtime();
#if defined(__AVX512F__)
    __m512 a[10], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (auto& x : a) x = _mm512_set1_ps(1.0f);
    for (long i = 0; i < iters; i++)
      for (auto& x : a) x = _mm512_fmadd_ps(x, b, c);
    __m512 s = a[0];
    for (int k = 1; k < 10; k++) s = _mm512_add_ps(s, a[k]);
    sink += _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a[10], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (auto& x : a) x = _mm256_set1_ps(1.0f);
    for (long i = 0; i < iters; i++)
      for (auto& x : a) x = _mm256_fmadd_ps(x, b, c);
    __m256 s = a[0];
    for (int k = 1; k < 10; k++) s = _mm256_add_ps(s, a[k]);
    float f[8];
    _mm256_storeu_ps(f, s);
    sink += f[0];
#else
    float a[10], b = 0.999999f, c = 1e-7f;
    for (auto& x : a) x = 1.0f;
    for (long i = 0; i < iters; i++)
      for (auto& x : a) x = std::fma(x, b, c);
    sink += a[0] + a[9];
#endif
    double dt = omp_get_wtime() - t0;
#pragma omp critical
    seconds = std::max(seconds, dt);
  }
  if (!(sink == sink)) return 0;  // keeps the loop alive
  return 2.0 * kFmaLanes * 10.0 * iters * threads / seconds / 1e9;
}

}  // namespace aha::cpu
