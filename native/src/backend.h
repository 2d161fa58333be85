// The engine's operations as one interface: model.cpp and sampler.cpp say what to compute and in which order, a
// backend says how and on what hardware. The build compiles exactly one backend (gyp variable aha_backend, see
// binding.gyp) and defaultBackend() hands it out, so a new backend is a folder next to cpu/ plus a build flag.
// Buffers are row-major float32, except weights (WeightRef), which may be 16-bit where they are frozen; N is the number
// of rows (tokens of a packed batch, or decode rows). Backward ops accumulate (+=) into parameter gradients and, where
// the name says so, into input gradients, so that residual branches and micro-batches add up without extra copies.
// Calls may come from several models on several threads at once: a backend keeps no per-call state of its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dtype.h"

namespace aha {

// Causal attention over variable-length sequences packed back to back, with grouped-query heads.
struct AttentionShape {
  int heads, kvHeads, headDim;
  const int32_t* starts;  // numSeqs + 1 row offsets into the packed batch
  int numSeqs;
};

// One weight matrix W[rows, cols] of the parameter buffer (a linear layer's [out, in]).
struct WeightMatrix {
  const float* W;
  int rows, cols;
};

// A backend's own copy of weight matrices, rearranged for decode products; a model holds one for a sampling call.
struct DecodeWeights {
  virtual ~DecodeWeights() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual void embeddingForward(float* out, const int32_t* ids, WeightRef table, int N, int C) = 0;
  virtual void embeddingBackward(float* dtable, const float* dout, const int32_t* ids, int N, int C) = 0;

  // y = x / sqrt(mean(x^2) + eps) * w over rows of length C; rstd[N] is kept for backward.
  virtual void rmsnormForward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) = 0;
  // dinp is overwritten when accumulate is false, added to otherwise; dw may be null (a frozen norm).
  virtual void rmsnormBackward(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                               const float* rstd, int N, int C, bool accumulate) = 0;

  // out[N,OC] = inp[N,IC] W[OC,IC]^T + b, for many rows (training, prefill).
  virtual void linearForward(float* out, const float* inp, WeightRef W, const float* b, int N, int IC, int OC) = 0;
  // out[N,OC] += inp[N,IC] W[OC,IC]^T (a LoRA up-projection added onto its base product).
  virtual void linearAccumulate(float* out, const float* inp, const float* W, int N, int IC, int OC) = 0;
  // dinp[N,IC] (= or +=) dout W; dW += dout^T inp; db += colsum(dout). dinp, dW and db may be null; W may be 16-bit
  // only where dW is null (frozen weights get no gradient).
  virtual void linearBackward(float* dinp, float* dW, float* db, const float* dout, const float* inp, WeightRef W,
                              int N, int IC, int OC, bool accumulateDinp) = 0;

  // Rotate-half RoPE in place on rows [N, heads*D]; pos[N] is each token's position in its sequence; tables are
  // [maxPos, D/2]. inverse=true applies the transpose rotation (the backward pass).
  virtual void rope(float* x, const int32_t* pos, const float* cosT, const float* sinT, int N, int heads, int D,
                    bool inverse) = 0;

  // act = silu(gate) * up
  virtual void swigluForward(float* act, const float* gate, const float* up, size_t n) = 0;
  virtual void swigluBackward(float* dgate, float* dup, const float* dact, const float* gate, const float* up,
                              size_t n) = 0;

  virtual void addInPlace(float* x, const float* y, size_t n) = 0;
  virtual void scaleInPlace(float* x, float a, size_t n) = 0;

  // Per-row log-softmax gathered at targets[i] (rows with target < 0 get 0) and, when entropy != null, the entropy
  // of the row's distribution. logits are left untouched.
  virtual void logprobForward(float* logp, float* entropy, const float* logits, const int32_t* targets, int N,
                              int V) = 0;
  // dlogits (overwritten) from dlogp and dentropy (either may be null).
  virtual void logprobBackward(float* dlogits, const float* logits, const int32_t* targets, const float* dlogp,
                               const float* dentropy, int N, int V) = 0;

  // q,out: [N, heads*D]; k,v: [N, kvHeads*D]; lse: [N, heads], all a backward needs besides the inputs.
  virtual void attentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                                const AttentionShape& s) = 0;
  // Gradients are overwritten.
  virtual void attentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                                 const float* q, const float* k, const float* v, const AttentionShape& s) = 0;
  // One new query per sequence slot against a KV cache laid out [batch, kvHeads, maxLen, D]; lens[b] keys are valid
  // (the new token's own key already written). q,out: [batch, heads*D]. Slots with active[b] == 0 are skipped.
  virtual void attentionDecode(float* out, const float* q, const float* kCache, const float* vCache,
                               const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads,
                               int kvHeads, int D) = 0;
  // The same over a 16-bit cache (bf16 or f16), widened as it is read.
  virtual void attentionDecode16(float* out, const float* q, const uint16_t* kCache, const uint16_t* vCache, DType t,
                                 const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads,
                                 int kvHeads, int D) = 0;

  // The decode product: out[M,OC] = inp[M,IC] W^T + b for few rows (one per live sequence), through pack's copy of
  // W when pack holds one. pack may be null.
  virtual void decodeLinear(float* out, const float* inp, WeightRef W, const float* b, int M, int IC, int OC,
                            const DecodeWeights* pack) = 0;
  // Rearranges mats for decodeLinear, once per sampling call. Null where the backend has no use for it or the copy
  // does not fit; the pack is a snapshot, so the weights must not change while it is held.
  virtual std::unique_ptr<DecodeWeights> packForDecode(const std::vector<WeightMatrix>& mats) = 0;

  // Sampling arithmetic on one row of logits in host memory (the sampler draws tokens on the host, a row per thread).
  virtual float maxOf(const float* x, size_t n) = 0;
  // y = exp(x - shift); returns the sum of y.
  virtual double expShiftSum(float* y, const float* x, size_t n, float shift) = 0;
  // The sum of exp(x - shift), without keeping the terms.
  virtual double expShiftSumOnly(const float* x, size_t n, float shift) = 0;
};

// The backend this build was compiled with, one instance shared by every model (see backendRegistry.cpp).
Backend& defaultBackend();

}  // namespace aha
