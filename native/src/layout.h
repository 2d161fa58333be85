// Where each parameter tensor sits in the engine's flat buffers. The order is defined once, by tensorLayout() in
// src/engine/types.ts, and handed over with the config; the engine looks its tensors up by Hugging Face name and
// checks each against the shape the config implies.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "config.h"

namespace aha {

struct TensorRef {
  std::string name;
  std::vector<int> shape;
  size_t offset = 0, size = 0;  // in floats
};

// Offsets (in floats) of one layer's tensors inside the parameter buffer; kNone where the tensor is absent.
constexpr size_t kNone = static_cast<size_t>(-1);
struct LayerOffsets {
  size_t ln1, wq, bq = kNone, wk, bk = kNone, wv, bv = kNone, wo, bo = kNone, qNorm = kNone, kNorm = kNone, ln2, wGate,
                  wUp, wDown;
};

struct Layout {
  size_t embed = 0, finalNorm = 0, lmHead = 0, total = 0;
  std::vector<LayerOffsets> layers;
  std::vector<TensorRef> tensors;  // as handed over, in their order
};

// The layout of tensors for a model of shape c. Throws std::runtime_error naming the tensor when one the config
// needs is missing or has another shape, one is listed twice or is not part of the config, or the tensors do not
// tile [0, total) exactly (total: the sum of their sizes).
Layout layoutFromTensors(const Config& c, std::vector<TensorRef> tensors);

// The linear layers LoRA can adapt, in the order a layer runs them.
enum LoraSite : int { kLoraQ, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown, kLoraSites };
// PEFT's module path of a site inside a layer ("self_attn.q_proj").
const char* loraModule(int site);

// Where the adapters sit in the trainable buffer under LoRA: per layer and site, lora_A [r, in] and lora_B [out, r]
// (kNone where the module is not adapted). Tensors carry PEFT's names
// (base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight), so the buffer saves as an adapter as it is.
struct LoraLayout {
  int r = 0;
  float scale = 0;  // lora_alpha / r, or lora_alpha / sqrt(r) under rsLoRA
  size_t total = 0;
  struct Layer {
    size_t A[kLoraSites], B[kLoraSites];
  };
  std::vector<Layer> layers;
  std::vector<TensorRef> tensors;
  bool on() const { return r > 0; }
};
// Checks names and shapes against the config and r, as layoutFromTensors does.
LoraLayout loraLayoutFromTensors(const Config& c, int r, float scale, std::vector<TensorRef> tensors);

}  // namespace aha
