// Products with 16-bit weights (bf16 or f16), widened to float32 on the fly: every result equals float32 math on
// the rounded weights (up to the order of float32 sums). Many rows widen a block of weight rows once and hand it to
// OpenBLAS; a few rows (decode) read the 16-bit weights straight into the dot products, which halves the memory
// traffic that bounds a decode step.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtype.h"

namespace aha::cpu {

// dst[i] = src[i] widened, for n elements.
void widen(float* dst, const uint16_t* src, DType t, size_t n);
// out[N,OC] = inp[N,IC] W[OC,IC]^T + b.
void linearForward16(float* out, const float* inp, const uint16_t* W, DType t, const float* b, int N, int IC, int OC);
// dinp[N,IC] (= or +=) dout[N,OC] W[OC,IC].
void linearInputGrad16(float* dinp, const float* dout, const uint16_t* W, DType t, int N, int IC, int OC,
                       bool accumulate);
// Rows of the table, widened: out[i] = table[ids[i]].
void embeddingForward16(float* out, const int32_t* ids, const uint16_t* table, DType t, int N, int C);

}  // namespace aha::cpu
