// Model shape and the parameter layout. The layout must match tensorLayout() in src/engine/types.ts, which a
// test checks name by name and offset by offset.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace aha {

struct Config {
  int vocab = 0, hidden = 0, inter = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0, maxPos = 0;
  float rmsEps = 1e-6f;
  float ropeScale = 1.0f;
  std::vector<float> ropeInvFreq;  // headDim / 2
  bool tied = false, qkvBias = false, oBias = false, qkNorm = false;

  int qDim() const { return heads * headDim; }
  int kvDim() const { return kvHeads * headDim; }
};

struct TensorRef {
  std::string name;
  std::vector<int> shape;
  size_t offset = 0, size = 0;
};

// Offsets (in floats) of one layer's tensors inside the parameter buffer; kNone where the tensor is absent.
constexpr size_t kNone = static_cast<size_t>(-1);
struct LayerOffsets {
  size_t ln1, wq, bq = kNone, wk, bk = kNone, wv, bv = kNone, wo, bo = kNone, qNorm = kNone, kNorm = kNone, ln2,
                  wGate, wUp, wDown;
};

struct Layout {
  size_t embed = 0, finalNorm = 0, lmHead = 0, total = 0;
  std::vector<LayerOffsets> layers;
  std::vector<TensorRef> tensors;
};

inline Layout makeLayout(const Config& c) {
  Layout L;
  size_t off = 0;
  auto add = [&](const std::string& name, std::vector<int> shape) {
    size_t n = 1;
    for (int d : shape) n *= static_cast<size_t>(d);
    L.tensors.push_back({name, shape, off, n});
    size_t at = off;
    off += n;
    return at;
  };
  const int C = c.hidden, D = c.headDim, I = c.inter;
  L.embed = add("model.embed_tokens.weight", {c.vocab, C});
  for (int l = 0; l < c.layers; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.bq = o.bk = o.bv = o.bo = o.qNorm = o.kNorm = kNone;
    o.ln1 = add(p + "input_layernorm.weight", {C});
    o.wq = add(p + "self_attn.q_proj.weight", {c.heads * D, C});
    if (c.qkvBias) o.bq = add(p + "self_attn.q_proj.bias", {c.heads * D});
    o.wk = add(p + "self_attn.k_proj.weight", {c.kvHeads * D, C});
    if (c.qkvBias) o.bk = add(p + "self_attn.k_proj.bias", {c.kvHeads * D});
    o.wv = add(p + "self_attn.v_proj.weight", {c.kvHeads * D, C});
    if (c.qkvBias) o.bv = add(p + "self_attn.v_proj.bias", {c.kvHeads * D});
    o.wo = add(p + "self_attn.o_proj.weight", {C, c.heads * D});
    if (c.oBias) o.bo = add(p + "self_attn.o_proj.bias", {C});
    if (c.qkNorm) {
      o.qNorm = add(p + "self_attn.q_norm.weight", {D});
      o.kNorm = add(p + "self_attn.k_norm.weight", {D});
    }
    o.ln2 = add(p + "post_attention_layernorm.weight", {C});
    o.wGate = add(p + "mlp.gate_proj.weight", {I, C});
    o.wUp = add(p + "mlp.up_proj.weight", {I, C});
    o.wDown = add(p + "mlp.down_proj.weight", {C, I});
    L.layers.push_back(o);
  }
  L.finalNorm = add("model.norm.weight", {C});
  L.lmHead = c.tied ? L.embed : add("lm_head.weight", {c.vocab, C});
  L.total = off;
  return L;
}

}  // namespace aha
