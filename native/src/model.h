// The transformer: weights, gradients and AdamW state in contiguous buffers (llm.c style), activations in one arena
// sized by the largest packed batch seen, forward/backward over packed variable-length sequences. The model orders
// the operations; a Backend (backend.h) carries them out.
//
// What trains: every weight (full fine-tuning: the weights are float32 and are the trainable buffer), or, under
// LoRA, only the adapters (their own float32 buffer; the weights are frozen and may stay 16-bit). Gradients and
// AdamW moments always have the trainable buffer's layout.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "config.h"
#include "layout.h"
#include "memory.h"

namespace aha {

// Variable-length sequences packed back to back with no padding; every result equals running each alone.
struct PackedBatch {
  std::vector<int32_t> ids;      // N tokens
  std::vector<int32_t> starts;   // numSeqs + 1 offsets
  std::vector<int32_t> pos;      // position of each token within its sequence
  std::vector<int32_t> targets;  // next token within the sequence, -1 at each sequence's last token
  int numSeqs() const { return (int)starts.size() - 1; }
  int numTokens() const { return (int)ids.size(); }
};
PackedBatch packSequences(const std::vector<std::vector<int32_t>>& seqs);

struct AdamWOptions {
  float lr = 1e-5f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weightDecay = 0.0f;
  float maxGradNorm = 0.0f;  // <= 0: no clipping
};
struct StepResult {
  double gradNorm = 0;
  bool skipped = false;  // non-finite gradient: parameters and moments untouched
  int64_t step = 0;
};

using Buffer = std::shared_ptr<LargeVector<float>>;
using Buffer16 = std::shared_ptr<LargeVector<uint16_t>>;

// How a model holds its weights and what it trains.
struct ModelOptions {
  DType weights = DType::F32;  // 16-bit: frozen (inference, or the base under LoRA)
  int loraRank = 0;            // 0: no LoRA
  float loraScale = 0;
  std::vector<TensorRef> loraTensors;  // the adapters' layout (PEFT names), when loraRank > 0
};

// One layer's weights as a forward reads them: matrices in their storage type, vectors (norms, biases) in float32,
// the LoRA factors of adapted modules (null elsewhere), and where each one's gradient goes (null: frozen).
struct LoraFactors {
  const float *A = nullptr, *B = nullptr;
  float *dA = nullptr, *dB = nullptr;
};
struct LayerWeights {
  WeightRef wq, wk, wv, wo, gate, up, down;
  const float *ln1 = nullptr, *ln2 = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr,
              *qNorm = nullptr, *kNorm = nullptr;
  LoraFactors lora[kLoraSites];
};
struct LayerGrads {
  float *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *gate = nullptr, *up = nullptr, *down = nullptr;
  float *ln1 = nullptr, *ln2 = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr, *qNorm = nullptr,
        *kNorm = nullptr;
};
struct ModelWeights {
  WeightRef embed, lmHead;
  const float* finalNorm = nullptr;
  std::vector<LayerWeights> layers;
  // Full fine-tuning: where each weight's gradient goes (empty under LoRA, whose gradients sit in the factors).
  float *dEmbed = nullptr, *dLmHead = nullptr, *dFinalNorm = nullptr;
  std::vector<LayerGrads> grads;
};

// How forward() and backward() trade memory for compute; read by each forward, kept for the backward after it.
struct TrainMemory {
  // A train forward keeps only each layer's input (and the final norm's); backward recomputes each layer's
  // activations through the same layer body just before its backward, so gradients are bit-identical.
  bool gradientCheckpointing = false;
  // Rows of logits alive at once (the head runs chunk by chunk, forward and backward); 0: as many rows as fit
  // kHeadChunkBytes, at least one.
  int headChunkRows = 0;
};
// The logits budget of one head chunk when TrainMemory::headChunkRows is 0 (Qwen's vocabulary: 110 rows).
constexpr size_t kHeadChunkBytes = 64u << 20;

// Pointers into the activation arena for one layer (train mode keeps one per layer; eval mode reuses one).
struct LayerActs {
  float *xIn, *ln1, *rstd1, *qPre, *kPre, *qRstd, *kRstd, *q, *k, *v, *att, *lse, *xMid, *ln2, *rstd2, *gate, *up, *act;
  // LoRA: each adapted module's scale * x A^T [rows, r], what backward needs besides x.
  float* lora[kLoraSites];
};

// The KV cache: k[layer] and v[layer] are [batch, kvHeads, maxLen, headDim], so that a decode step reads each
// (sequence, kv head) history as one contiguous block.
struct KvSink {
  // Per layer: float32 keys and values (k, v) when dtype is F32, else 16-bit ones (k16, v16) rounded to nearest even
  // as they are stored; attention widens them as it reads them.
  std::vector<float*> k, v;
  std::vector<uint16_t*> k16, v16;
  DType dtype = DType::F32;
  int maxLen;
  int kvHeads, headDim;
  // Cache slot of each prefilled sequence (empty: sequence s goes to slot s).
  std::vector<int32_t> slotOf;
  int slot(int seq) const { return slotOf.empty() ? seq : slotOf[seq]; }
  // Writes one token's keys and values (kvHeads*headDim each, as the projections lay them out) at slot, position.
  void store(int layer, int slot, int pos, const float* key, const float* value) const {
    for (int h = 0; h < kvHeads; h++) {
      const size_t dst = (((size_t)slot * kvHeads + h) * maxLen + pos) * headDim, src = (size_t)h * headDim;
      if (dtype == DType::F32) {
        std::copy(key + src, key + src + headDim, k[layer] + dst);
        std::copy(value + src, value + src + headDim, v[layer] + dst);
      } else {
        for (int d = 0; d < headDim; d++) {
          k16[layer][dst + d] = fromFloat(key[src + d], dtype);
          v16[layer][dst + d] = fromFloat(value[src + d], dtype);
        }
      }
    }
  }
  // Copies the first len positions of slot from into slot to, in every layer.
  void copySlot(int from, int to, int len) const {
    for (int l = 0; l < (int)std::max(k.size(), k16.size()); l++)
      for (int h = 0; h < kvHeads; h++) {
        const size_t src = (((size_t)from * kvHeads + h) * maxLen) * headDim;
        const size_t dst = (((size_t)to * kvHeads + h) * maxLen) * headDim, n = (size_t)len * headDim;
        if (dtype == DType::F32) {
          std::copy(k[l] + src, k[l] + src + n, k[l] + dst);
          std::copy(v[l] + src, v[l] + src + n, v[l] + dst);
        } else {
          std::copy(k16[l] + src, k16[l] + src + n, k16[l] + dst);
          std::copy(v16[l] + src, v16[l] + src + n, v16[l] + dst);
        }
      }
  }
};

class LayerProducts;
class LayerAttention;

class Model {
 public:
  // tensors: where each parameter tensor sits (tensorLayout() in src/engine/types.ts), checked against cfg.
  Model(Config cfg, std::vector<TensorRef> tensors, Backend& backend = defaultBackend(), ModelOptions opts = {});

  const Config& config() const { return cfg_; }
  const Layout& layout() const { return layout_; }
  const LoraLayout& lora() const { return lora_; }
  Backend& backend() const { return backend_; }
  DType weightsDtype() const { return wdtype_; }
  // The float32 weights (null when they are 16-bit: see params16()).
  Buffer params() const { return params_; }
  Buffer16 params16() const { return params16_; }
  // The adapters under LoRA (null without).
  Buffer adapters() const { return adapters_; }
  // Elements of the trainable buffer (the weights, or the adapters under LoRA): the length of grads and moments.
  size_t trainableSize() const { return lora_.on() ? lora_.total : layout_.total; }
  Buffer grads();  // allocated on first use
  // Under LoRA the reference policy is the base with the adapters off: always there, never copied.
  bool hasReference() const { return lora_.on() || (bool)ref_ || (bool)ref16_; }
  // Freezes the current weights as the reference policy, in float32 or rounded to a 16-bit type (half the memory;
  // exact when the weights came from a checkpoint of that type and have not been trained yet).
  void snapshotReference(DType t = DType::F32);
  void dropReference() { ref_.reset(), ref16_.reset(); }
  DType referenceDtype() const { return refType_; }
  void zeroGrad();
  int64_t optimizerSteps() const { return step_; }
  void setTrainMemory(const TrainMemory& t) { trainMemory_ = t; }
  const TrainMemory& trainMemory() const { return trainMemory_; }

  // Log-probs of each sequence's tokens 1..n-1 (flattened over sequences, n-1 per sequence), entropies at the same
  // positions when wanted. train=true keeps activations for backward() (all of them, or each layer's input under
  // gradient checkpointing). useReference=true runs the frozen copy. The head never holds more than one chunk of
  // logits (TrainMemory::headChunkRows); backward recomputes them chunk by chunk.
  void forward(const PackedBatch& batch, bool train, bool wantEntropy, bool useReference, std::vector<float>& logp,
               std::vector<float>& entropy);
  // Accumulates parameter gradients of sum_t dlogp[t]*logp[t] + dent[t]*entropy[t] for the last train forward.
  // The lm_head gradient adds up chunk by chunk (last chunk first), so it depends on the chunk size in float rounding.
  void backward(const std::vector<float>& dlogp, const std::vector<float>* dentropy);
  StepResult adamwStep(const AdamWOptions& o);
  // Optimizer moments, exposed so that checkpoints can resume training exactly.
  Buffer adamM();
  Buffer adamV();
  // Steps taken so far (restored from a checkpoint); at most 2^53, where the bias correction is exactly 1.
  void setOptimizerSteps(int64_t s);

  // Prefill for sampling: runs the packed prompts, writes keys/values into sink, returns last-position logits
  // [numSeqs, vocab].
  void prefill(const PackedBatch& batch, const KvSink& sink, std::vector<float>& lastLogits);
  // Final-norm hidden state at each sequence's last token [numSeqs, hidden], with no head over the vocabulary (a
  // sequence-classification model scores this in TypeScript). Sequences are packed without padding, so each one's
  // last token is its last non-pad token.
  void lastHidden(const PackedBatch& batch, std::vector<float>& out);
  // One decode step for M rows: ids[M] tokens at positions pos[M]; rowSeq[M] is the cache slot of each row.
  // lens[slot] must already count the new token. Writes logits [M, vocab].
  void decodeStep(const std::vector<int32_t>& ids, const std::vector<int32_t>& pos, const std::vector<int32_t>& rowSeq,
                  const std::vector<int32_t>& lens, const KvSink& cache, std::vector<float>& logits);

  // Packs every weight matrix for the decode product (a copy the size of the weights), for one sampling call with
  // many rows; dropDecodePack frees it. The pack is a snapshot: weights must not change while it is held. Returns
  // false (and packs nothing) where the backend has no packed kernel or the copy does not fit.
  bool packForDecode();
  void dropDecodePack() { decodePack_.reset(); }

  std::mutex mutex;  // one heavy call at a time per model

 private:
  void ensureRope(int maxPos);
  void ensureArena(int N, bool train, bool checkpoint, int headRows);
  int headRows(int N) const;
  LayerActs layerActs(int l, bool train);
  // Layer l's activations for a train forward and its backward: its own slot, or under checkpointing the one
  // working slot reading the layer's kept input.
  LayerActs trainActs(int l);
  float* layerInput(int l);  // checkpointing: the kept input of layer l
  // One transformer layer, the same for training, prefill and decode; products and attention say which.
  void layerBody(int l, const LayerWeights& w, const LayerActs& a, float* out, int rows, const int32_t* pos,
                 const LayerProducts& products, LayerAttention& attention);
  // The weights a pass reads: the live ones or the reference (full fine-tuning's copy, or LoRA's base with the
  // adapters off), with gradient targets when training. 16-bit vectors are widened into vecs_ on each call.
  ModelWeights resolve(bool useReference, bool withGrads);
  void requireTrainable() const;

  Config cfg_;
  Layout layout_;
  LoraLayout lora_;
  Backend& backend_;
  DType wdtype_ = DType::F32;
  Buffer params_, grads_, ref_, m_, v_, adapters_;
  Buffer16 params16_, ref16_;
  DType refType_ = DType::F32;
  std::vector<float> vecs_;                          // 16-bit weights: norms and biases widened
  std::vector<std::pair<size_t, size_t>> vecSlots_;  // (weight offset, offset in vecs_) of each 1-D tensor
  void allocVecSlots();
  int64_t step_ = 0;

  std::vector<float> cos_, sin_;
  int ropeLen_ = 0;

  // activation arena
  std::vector<float> arena_;
  int arenaN_ = 0;
  int arenaSlots_ = 0;     // layer slots: all layers' (train without checkpointing) or one
  int arenaInputs_ = 0;    // layer inputs kept beside the slot (checkpointing: layers 1..L-1; layer 0's is the slot's)
  int arenaHeadRows_ = 0;  // rows of the logits chunk
  float *xOut_ = nullptr, *lnf_ = nullptr, *rstdf_ = nullptr, *logits_ = nullptr, *inputs_ = nullptr;
  TrainMemory trainMemory_;
  PackedBatch lastBatch_;
  bool haveTrainActs_ = false;
  bool lastCheckpointed_ = false, lastUsedReference_ = false;
  int lastHeadRows_ = 0;
  // backward scratch
  std::vector<float> scratch_;
  // the weights packed for decode, while a sampling call holds them
  std::unique_ptr<DecodeWeights> decodePack_;
};

}  // namespace aha
