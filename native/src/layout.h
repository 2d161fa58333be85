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

}  // namespace aha
