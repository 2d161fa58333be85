// Batched sampling with a KV cache: prefill all prompts packed, then decode one token per live sequence per step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace aha {

struct SampleOptions {
  float temperature = 1.0f;  // <= 0: greedy
  float topP = 1.0f;
  int topK = 0;  // 0: off
  int maxNewTokens = 16;
  std::vector<int32_t> stopTokenIds;
};

struct SampleRequest {
  std::vector<int32_t> prompt;
  uint64_t seed = 0;
};

struct SampleResult {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;  // under the model itself, before temperature / top-k / top-p
  std::string finishReason;     // "stop" | "length"
};

std::vector<SampleResult> generate(Model& model, const std::vector<SampleRequest>& reqs, const SampleOptions& o);

}  // namespace aha
