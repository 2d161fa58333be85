// Causal multi-head attention with grouped-query heads over packed sequences. The forward keeps only the
// per-row log-sum-exp; the backward recomputes the probabilities block by block (as FlashAttention does), so
// memory stays linear in sequence length.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtype.h"

namespace aha::cpu {

struct AttentionShape {
  int heads, kvHeads, headDim;
  const int32_t* starts;  // numSeqs + 1 row offsets into the packed batch
  int numSeqs;
};

// q,out: [N, heads*D]; k,v: [N, kvHeads*D]; lse: [N, heads].
void attentionForward(float* out, float* lse, const float* q, const float* k, const float* v, const AttentionShape& s);

// Gradients are overwritten.
void attentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                       const float* q, const float* k, const float* v, const AttentionShape& s);

// One new query per sequence against a KV cache laid out [batch, kvHeads, maxLen, D]; lens[b] keys are valid
// (the new token's own key already written). q,out: [batch, heads*D]. Rows with active[b] == 0 are skipped.
void attentionDecode(float* out, const float* q, const float* kCache, const float* vCache, const int32_t* lens,
                     const uint8_t* active, int batch, int maxLen, int heads, int kvHeads, int D);
// The same over a 16-bit cache of dtype t (bf16 or f16): each key and value row is widened to float32 as it is read,
// then used exactly as the float32 kernel uses its rows.
void attentionDecode16(float* out, const float* q, const uint16_t* kCache, const uint16_t* vCache, DType t,
                       const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads, int kvHeads,
                       int D);

}  // namespace aha::cpu
