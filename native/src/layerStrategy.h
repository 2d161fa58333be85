// The two ways the one layer body (Model::layerBody) multiplies by its weights and attends: over a packed batch of
// whole sequences (training forward, prefill), or over a decode step's rows, one new token per live sequence,
// against the KV cache.
#pragma once
#include <cstdint>
#include <vector>

#include "backend.h"
#include "model.h"

namespace aha {

// out[rows, OC] = inp[rows, IC] W[OC, IC]^T + b for each weight matrix of a layer.
class LayerProducts {
 public:
  virtual ~LayerProducts() = default;
  virtual void linear(float* out, const float* inp, WeightRef W, const float* b, int rows, int IC, int OC) const = 0;
};

// Many rows: the backend's linearForward (OpenBLAS on the CPU).
class BatchProducts final : public LayerProducts {
 public:
  explicit BatchProducts(Backend& backend) : backend_(backend) {}
  void linear(float* out, const float* inp, WeightRef W, const float* b, int rows, int IC, int OC) const override {
    backend_.linearForward(out, inp, W, b, rows, IC, OC);
  }

 private:
  Backend& backend_;
};

// A decode step's few rows: the backend's decode product, through the sampling call's packed weights when held.
class DecodeProducts final : public LayerProducts {
 public:
  DecodeProducts(Backend& backend, const DecodeWeights* pack) : backend_(backend), pack_(pack) {}
  void linear(float* out, const float* inp, WeightRef W, const float* b, int rows, int IC, int OC) const override {
    backend_.decodeLinear(out, inp, W, b, rows, IC, OC, pack_);
  }

 private:
  Backend& backend_;
  const DecodeWeights* pack_;
};

// From the roped a.q, a.k, a.v of a layer's rows to a.att, keeping keys and values wherever the strategy needs them.
class LayerAttention {
 public:
  virtual ~LayerAttention() = default;
  virtual void attend(int layer, const LayerActs& a) = 0;
};

// Causal attention within each sequence of a packed batch (a.lse kept for backward). With a sink (prefill), every
// token's keys and values are also written to its sequence's cache slot, for the decode steps that follow.
class PackedAttention final : public LayerAttention {
 public:
  PackedAttention(Backend& backend, const Config& c, const PackedBatch& batch, const KvSink* sink)
      : backend_(backend), c_(c), batch_(batch), sink_(sink) {}
  void attend(int layer, const LayerActs& a) override;

 private:
  Backend& backend_;
  const Config& c_;
  const PackedBatch& batch_;
  const KvSink* sink_;
};

// One decode step: row m is the new token of cache slot rowSlot[m] at position pos[m]. Its keys and values join the
// cache, then its query attends to the slot's history (lens[slot] keys, the new one included).
class CachedAttention final : public LayerAttention {
 public:
  CachedAttention(Backend& backend, const Config& c, const KvSink& cache, const std::vector<int32_t>& pos,
                  const std::vector<int32_t>& rowSlot, const std::vector<int32_t>& lens);
  void attend(int layer, const LayerActs& a) override;

 private:
  Backend& backend_;
  const Config& c_;
  const KvSink& cache_;
  const std::vector<int32_t>& pos_;
  const std::vector<int32_t>& rowSlot_;
  const std::vector<int32_t>& lens_;
  // The decode kernel reads one query per cache slot; rows are scattered to their slots and gathered back.
  std::vector<uint8_t> active_;
  std::vector<float> qSlots_, oSlots_;
};

}  // namespace aha
