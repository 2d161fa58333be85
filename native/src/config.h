// Model shape, as src/engine/types.ts's EngineConfig hands it over.
#pragma once
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

}  // namespace aha
