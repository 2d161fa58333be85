// Matrix products with few rows (decode steps: one row per live sequence). OpenBLAS re-packs the whole weight
// matrix on every call, which at a handful of rows costs as much as the product itself; this kernel reads the
// weights in place, once, in the row-major layout the engine keeps them in.
#pragma once

namespace aha::cpu {

// C[M,N] = X[M,K] W[N,K]^T (+ bias[N]), all row-major and dense: one row of X reads W a row at a time (rowDot in
// dotTile.h), more rows go through register tiles. Falls back to sgemm on CPUs without AVX2/FMA.
void smallGemmNT(float* C, const float* X, const float* W, const float* bias, int M, int K, int N);

// Whether the vector kernel was compiled in (AVX2+FMA or AVX-512); otherwise smallGemmNT is sgemm.
bool smallGemmAvailable();

}  // namespace aha::cpu
