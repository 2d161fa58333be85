// The few OpenBLAS entry points the engine uses, declared here so that the build does not depend on which
// Debian variant (pthread or OpenMP) provides the headers.
#pragma once

namespace aha::cpu {

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, with explicit leading dimensions.
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);

// Name of the OpenBLAS kernel in use (e.g. "SkylakeX"), for `aha bench`.
const char* blasCoreName();
int blasThreads();

}  // namespace aha::cpu
