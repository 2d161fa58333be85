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

// Checks that tensors inside [0, total) do not overlap and add up to total, so they leave no gap either; returns total.
size_t checkTiling(const std::vector<TensorRef>& tensors, const std::string& what) {
  size_t total = 0;
  for (const TensorRef& t : tensors) {
    if (t.size > SIZE_MAX - total) throw std::runtime_error(what + ": the tensors add up to over 2^64 floats");
    total += t.size;
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 0; k < order.size(); k++) {
    const TensorRef& t = tensors[order[k]];
    if (t.offset > total || t.size > total - t.offset)
      throw std::runtime_error(what + ": " + rangeText(t) + " ends past the " + std::to_string(total) +
                               " floats of all tensors together");
    if (k > 0) {
      const TensorRef& prev = tensors[order[k - 1]];
      if (t.offset < prev.offset + prev.size)
        throw std::runtime_error(what + ": " + rangeText(t) + " overlaps " + rangeText(prev));
    }
  }
  return total;
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

  const size_t total = checkTiling(tensors, "tensor layout");
  L.total = total;
  L.tensors = std::move(tensors);
  return L;
}

}  // namespace aha

namespace aha {

const char* loraModule(int site) {
  static const char* names[kLoraSites] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                          "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                          "mlp.down_proj"};
  return names[site];
}

LoraLayout loraLayoutFromTensors(const Config& c, int r, float scale, std::vector<TensorRef> tensors) {
  if (r <= 0) throw std::runtime_error("LoRA rank r must be a positive integer (got " + std::to_string(r) + ")");
  std::unordered_map<std::string, size_t> byName;
  for (size_t i = 0; i < tensors.size(); i++)
    if (!byName.emplace(tensors[i].name, i).second)
      throw std::runtime_error("adapter layout: " + tensors[i].name + " is listed twice");
  std::vector<bool> used(tensors.size(), false);
  auto find = [&](const std::string& name, const std::vector<int>& shape) {
    auto it = byName.find(name);
    if (it == byName.end()) return kNone;
    const TensorRef& t = tensors[it->second];
    if (t.shape != shape || t.size != (size_t)shape[0] * shape[1])
      throw std::runtime_error("adapter layout: " + name + " has shape " + shapeText(t.shape) + ", expected " +
                               shapeText(shape));
    used[it->second] = true;
    return t.offset;
  };
  const int C = c.hidden, I = c.inter, qd = c.qDim(), kd = c.kvDim();
  const int in[kLoraSites] = {C, C, C, qd, C, C, I}, out[kLoraSites] = {qd, kd, kd, C, I, I, C};
  LoraLayout L;
  L.r = r;
  L.scale = scale;
  for (int l = 0; l < c.layers; l++) {
    LoraLayout::Layer o;
    for (int s = 0; s < kLoraSites; s++) {
      const std::string p = "base_model.model.model.layers." + std::to_string(l) + "." + loraModule(s) + ".";
      o.A[s] = find(p + "lora_A.weight", {r, in[s]});
      o.B[s] = find(p + "lora_B.weight", {out[s], r});
      if ((o.A[s] == kNone) != (o.B[s] == kNone))
        throw std::runtime_error("adapter layout: " + p + (o.A[s] == kNone ? "lora_A" : "lora_B") +
                                 ".weight is missing (each adapted module needs both lora_A and lora_B)");
    }
    L.layers.push_back(o);
  }
  for (size_t i = 0; i < tensors.size(); i++)
    if (!used[i])
      throw std::runtime_error("adapter layout: " + tensors[i].name + " is not a LoRA tensor of this model");
  if (tensors.empty()) throw std::runtime_error("adapter layout: no adapted modules");
  L.total = checkTiling(tensors, "adapter layout");
  L.tensors = std::move(tensors);
  return L;
}

}  // namespace aha
