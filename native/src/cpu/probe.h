// Machine probes for `aha bench`: how fast this machine's BLAS multiplies, and the FP32 FMA peak of its cores, so
// that the engine's training throughput can be read as a fraction of each.
#pragma once

namespace aha::cpu {

// GFLOP/s of C[M,N] = A[M,K] B[N,K]^T through the engine's sgemm (the layout of a linear layer's forward), best of
// at least reps runs and at least 0.5 s of them, after one warm-up, on all OpenMP threads.
double sgemmGflops(int M, int N, int K, int reps);

// GFLOP/s of independent fused multiply-adds on every thread (best of three short runs): the arithmetic ceiling of
// the cores for float32.
double fmaPeakGflops();

}  // namespace aha::cpu
