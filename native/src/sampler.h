// Batched sampling with a KV cache: prefill all prompts packed, then decode one token per live sequence per step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace aha {

struct SampleOptions {
  // 0: greedy. A temperature so small that 1/T overflows float32 (below about 3e-39) is greedy too, its limit.
  float temperature = 1.0f;
  float topP = 1.0f;  // in (0, 1]; 1: off
  int topK = 0;       // 0 (or >= vocabulary): off
  int maxNewTokens = 16;
  std::vector<int32_t> stopTokenIds;
  // The KV cache's element type: float32, or bf16 / f16 (half the memory and the attention's reads; keys and values
  // rounded to nearest even as they are stored, llama.cpp's default is f16).
  DType kvCacheDtype = DType::F32;
};

// Throws std::runtime_error naming the first option out of range.
void validate(const SampleOptions& o);

struct SampleRequest {
  std::vector<int32_t> prompt;
  uint64_t seed = 0;
};

struct SampleResult {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;  // under the model itself, before temperature / top-k / top-p
  std::string finishReason;     // "stop" | "length"
};

// Logits that are NaN or infinite (broken weights) are an error naming the sequence and step: no token is drawn
// from them.
std::vector<SampleResult> generate(Model& model, const std::vector<SampleRequest>& reqs, const SampleOptions& o);

}  // namespace aha
