// Matrix products against weights packed once into column panels, for decode steps with more rows than the
// packing-free kernel suits: OpenBLAS packs the weight matrix again on every call, once per layer per token, while a
// sampling call packs each matrix once and reuses it for every step.
#pragma once
#include <vector>

namespace aha::cpu {

// W[N,K] (row-major, a linear layer's weight) rearranged as ceil(N/w) panels of [K][w], zero-padded, where w is two
// vector widths (16 floats on AVX2, 32 on AVX-512).
struct PackedWeights {
  std::vector<float> data;
  int N = 0, K = 0, panels = 0;
  void pack(const float* W, int N, int K);
};

// C[M,N] = X[M,K] W^T (+ bias[N]) with W packed. Needs AVX2+FMA or AVX-512 (see packedGemmAvailable).
void packedGemmNT(float* C, const float* X, const PackedWeights& w, const float* bias, int M);

bool packedGemmAvailable();

}  // namespace aha::cpu
