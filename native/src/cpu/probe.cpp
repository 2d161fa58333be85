#include "cpu/probe.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/blas.h"
#include "cpu/vecmath.h"

namespace aha::cpu {

double sgemmGflops(int M, int N, int K, int reps) {
  std::vector<float> A((size_t)M * K), B((size_t)N * K), C((size_t)M * N);
  for (size_t i = 0; i < A.size(); i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
  for (size_t i = 0; i < B.size(); i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
  sgemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
  // At least reps runs and at least half a second of them: on a shared machine a short probe can land entirely in a
  // busy moment, and the best run is the machine's rate.
  double best = 1e30;
  const double start = omp_get_wtime();
  for (int r = 0; r < std::max(1, reps) || omp_get_wtime() - start < 0.5; r++) {
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
#if AHA_VECTOR
    vm::V a[10];
    const vm::V b = vm::set1(0.999999f), c = vm::set1(1e-7f);
    for (auto& x : a) x = vm::set1(1.0f);
    for (long i = 0; i < iters; i++)
      for (auto& x : a) x = vm::fma(x, b, c);
    vm::V s = a[0];
    for (int k = 1; k < 10; k++) s = vm::add(s, a[k]);
    sink += vm::hsum(s);
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
  return 2.0 * vm::kLanes * 10.0 * iters * threads / seconds / 1e9;
}

}  // namespace aha::cpu
