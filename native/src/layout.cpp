#include "layout.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

namespace aha {

namespace {

std::string shapeText(const std::vector<int>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string rangeText(const TensorRef& t) {
  return t.name + " at [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.size) + ")";
}

}  // namespace

Layout layoutFromTensors(const Config& c, std::vector<TensorRef> tensors) {
  std::unordered_map<std::string, size_t> byName;
  for (size_t i = 0; i < tensors.size(); i++)
    if (!byName.emplace(tensors[i].name, i).second)
      throw std::runtime_error("tensor layout: " + tensors[i].name + " is listed twice");
  std::vector<bool> used(tensors.size(), false);
  // Offset of a tensor the config needs, after checking its shape and size against the config's.
  auto find = [&](const std::string& name, const std::vector<int>& shape) {
    auto it = byName.find(name);
    size_t n = 1;
    for (int d : shape) n *= (size_t)d;
    if (it == byName.end()) throw std::runtime_error("tensor layout: " + name + " " + shapeText(shape) + " is missing");
    const TensorRef& t = tensors[it->second];
    if (t.shape != shape || t.size != n)
      throw std::runtime_error("tensor layout: " + name + " has shape " + shapeText(t.shape) + " and " +
                               std::to_string(t.size) + " floats, the config implies " + shapeText(shape) + " and " +
                               std::to_string(n));
    used[it->second] = true;
    return t.offset;
  };
  auto findIf = [&](bool present, const std::string& name, const std::vector<int>& shape) {
    return present ? find(name, shape) : kNone;
  };

  Layout L;
  const int C = c.hidden, D = c.headDim, I = c.inter, qd = c.qDim(), kd = c.kvDim();
  L.embed = find("model.embed_tokens.weight", {c.vocab, C});
  for (int l = 0; l < c.layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.ln1 = find(p + "input_layernorm.weight", {C});
    o.wq = find(p + "self_attn.q_proj.weight", {qd, C});
    o.bq = findIf(c.qkvBias, p + "self_attn.q_proj.bias", {qd});
    o.wk = find(p + "self_attn.k_proj.weight", {kd, C});
    o.bk = findIf(c.qkvBias, p + "self_attn.k_proj.bias", {kd});
    o.wv = find(p + "self_attn.v_proj.weight", {kd, C});
    o.bv = findIf(c.qkvBias, p + "self_attn.v_proj.bias", {kd});
    o.wo = find(p + "self_attn.o_proj.weight", {C, qd});
    o.bo = findIf(c.oBias, p + "self_attn.o_proj.bias", {C});
    o.qNorm = findIf(c.qkNorm, p + "self_attn.q_norm.weight", {D});
    o.kNorm = findIf(c.qkNorm, p + "self_attn.k_norm.weight", {D});
    o.ln2 = find(p + "post_attention_layernorm.weight", {C});
    o.wGate = find(p + "mlp.gate_proj.weight", {I, C});
    o.wUp = find(p + "mlp.up_proj.weight", {I, C});
    o.wDown = find(p + "mlp.down_proj.weight", {C, I});
    L.layers.push_back(o);
  }
  L.finalNorm = find("model.norm.weight", {C});
  L.lmHead = c.tied ? L.embed : find("lm_head.weight", {c.vocab, C});
  for (size_t i = 0; i < tensors.size(); i++)
    if (!used[i])
      throw std::runtime_error("tensor layout: " + tensors[i].name + " is not part of this model's config" +
                               (c.tied && tensors[i].name == "lm_head.weight" ? " (tied embeddings)" : ""));

  // Tensors inside [0, total) that do not overlap and add up to total leave no gap either.
  size_t total = 0;
  for (const TensorRef& t : tensors) {
    if (t.size > SIZE_MAX - total) throw std::runtime_error("tensor layout: the tensors add up to over 2^64 floats");
    total += t.size;
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 0; k < order.size(); k++) {
    const TensorRef& t = tensors[order[k]];
    if (t.offset > total || t.size > total - t.offset)
      throw std::runtime_error("tensor layout: " + rangeText(t) + " ends past the " + std::to_string(total) +
                               " floats of all tensors together");
    if (k > 0) {
      const TensorRef& prev = tensors[order[k - 1]];
      if (t.offset < prev.offset + prev.size)
        throw std::runtime_error("tensor layout: " + rangeText(t) + " overlaps " + rangeText(prev));
    }
  }
  L.total = total;
  L.tensors = std::move(tensors);
  return L;
}

}  // namespace aha
