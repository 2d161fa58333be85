#include "layerStrategy.h"

#include <cstring>

namespace aha {

void PackedAttention::attend(int layer, const LayerActs& a) {
  const PackedBatch& b = batch_;
  const int kd = c_.kvDim();
  if (sink_) {
    // With a 16-bit cache the prompt attends to its keys and values rounded as the cache holds them (as llama.cpp
    // does), so every attention read of a sampling call sees the same rounded values.
    if (sink_->dtype != DType::F32) {
      const size_t n = (size_t)b.numTokens() * kd;
      for (size_t i = 0; i < n; i++) {
        a.k[i] = toFloat(fromFloat(a.k[i], sink_->dtype), sink_->dtype);
        a.v[i] = toFloat(fromFloat(a.v[i], sink_->dtype), sink_->dtype);
      }
    }
    for (int s = 0; s < b.numSeqs(); s++)
      for (int i = b.starts[s]; i < b.starts[s + 1]; i++)
        sink_->store(layer, sink_->slot(s), b.pos[i], a.k + (size_t)i * kd, a.v + (size_t)i * kd);
  }
  AttentionShape shape{c_.heads, c_.kvHeads, c_.headDim, b.starts.data(), b.numSeqs()};
  backend_.attentionForward(a.att, a.lse, a.q, a.k, a.v, shape);
}

CachedAttention::CachedAttention(Backend& backend, const Config& c, const KvSink& cache,
                                 const std::vector<int32_t>& pos, const std::vector<int32_t>& rowSlot,
                                 const std::vector<int32_t>& lens)
    : backend_(backend), c_(c), cache_(cache), pos_(pos), rowSlot_(rowSlot), lens_(lens) {
  const size_t slots = lens.size();
  active_.assign(slots, 0);
  qSlots_.resize(slots * c.qDim());
  oSlots_.resize(slots * c.qDim());
  for (int32_t s : rowSlot) active_[s] = 1;
}

void CachedAttention::attend(int layer, const LayerActs& a) {
  const int M = (int)rowSlot_.size(), qd = c_.qDim(), kd = c_.kvDim();
  for (int m = 0; m < M; m++) {
    cache_.store(layer, rowSlot_[m], pos_[m], a.k + (size_t)m * kd, a.v + (size_t)m * kd);
    std::memcpy(qSlots_.data() + (size_t)rowSlot_[m] * qd, a.q + (size_t)m * qd, sizeof(float) * qd);
  }
  if (cache_.dtype == DType::F32)
    backend_.attentionDecode(oSlots_.data(), qSlots_.data(), cache_.k[layer], cache_.v[layer], lens_.data(),
                             active_.data(), (int)lens_.size(), cache_.maxLen, c_.heads, c_.kvHeads, c_.headDim);
  else
    backend_.attentionDecode16(oSlots_.data(), qSlots_.data(), cache_.k16[layer], cache_.v16[layer], cache_.dtype,
                               lens_.data(), active_.data(), (int)lens_.size(), cache_.maxLen, c_.heads, c_.kvHeads,
                               c_.headDim);
  for (int m = 0; m < M; m++)
    std::memcpy(a.att + (size_t)m * qd, oSlots_.data() + (size_t)rowSlot_[m] * qd, sizeof(float) * qd);
}

}  // namespace aha
