// One forward and one backward function per layer type, llm.c style. Buffers are row-major; N is the number of
// tokens in the packed batch. Backward functions accumulate (+=) into parameter gradients and, where the name
// says so, into input gradients, so that residual branches and micro-batches add up without extra copies.
#pragma once
#include <cstddef>
#include <cstdint>

namespace aha::cpu {

void embeddingForward(float* out, const int32_t* ids, const float* table, int N, int C);
void embeddingBackward(float* dtable, const float* dout, const int32_t* ids, int N, int C);

// y = x / sqrt(mean(x^2) + eps) * w over rows of length C; rstd[N] is kept for backward.
void rmsnormForward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps);
// dinp is overwritten when accumulate is false, added to otherwise.
void rmsnormBackward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                     int N, int C, bool accumulate);

// out[N,OC] = inp[N,IC] W[OC,IC]^T + b
void linearForward(float* out, const float* inp, const float* W, const float* b, int N, int IC, int OC);
// dinp[N,IC] (= or +=) dout W; dW += dout^T inp; db += colsum(dout). dinp may be null.
void linearBackward(float* dinp, float* dW, float* db, const float* dout, const float* inp, const float* W, int N,
                    int IC, int OC, bool accumulateDinp);

// Rotate-half RoPE in place on rows [N, heads*D]; pos[N] is each token's position in its sequence; tables are
// [maxPos, D/2]. inverse=true applies the transpose rotation (the backward pass).
void rope(float* x, const int32_t* pos, const float* cosT, const float* sinT, int N, int heads, int D, bool inverse);

// act = silu(gate) * up
void swigluForward(float* act, const float* gate, const float* up, size_t n);
void swigluBackward(float* dgate, float* dup, const float* dact, const float* gate, const float* up, size_t n);

void addInPlace(float* x, const float* y, size_t n);

// Per-row log-softmax gathered at targets[i] (rows with target < 0 get 0) and, when entropy != null, the
// entropy of the row's distribution. logits are left untouched.
void logprobForward(float* logp, float* entropy, const float* logits, const int32_t* targets, int N, int V);
// dlogits (overwritten) from dlogp and dentropy (either may be null).
void logprobBackward(float* dlogits, const float* logits, const int32_t* targets, const float* dlogp,
                     const float* dentropy, int N, int V);

}  // namespace aha::cpu
