// Per-thread float buffers that outlive a call. OpenMP's worker threads persist, so a buffer grown once is reused
// by every later call; a fresh std::vector per call of this size would be mapped (and faulted in) anew each time.
#pragma once
#include <vector>

namespace aha::cpu {

// One slot per use, so that no two users that can be live on one thread share a buffer.
enum class Scratch {
  AttentionScores,
  AttentionGrads,
  DecodeScores,
  LogitRow,
  PackedAcc,
  PackedRows,
  SampleWeights,
  kCount
};

inline std::vector<float>& threadScratch(Scratch which) {
  thread_local std::vector<float> bufs[(int)Scratch::kCount];
  return bufs[(int)which];
}

}  // namespace aha::cpu
