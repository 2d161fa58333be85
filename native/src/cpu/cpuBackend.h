// The CPU backend: the engine's operations on this machine's cores, through the kernels of this folder (OpenBLAS for
// products over many rows, the packing-free and packed kernels for decode, vector exp for softmax and sampling).
#pragma once
#include "backend.h"

namespace aha::cpu {

class CpuBackend final : public Backend {
 public:
  void embeddingForward(float* out, const int32_t* ids, WeightRef table, int N, int C) override;
  void embeddingBackward(float* dtable, const float* dout, const int32_t* ids, int N, int C) override;
  void rmsnormForward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) override;
  void rmsnormBackward(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                       int N, int C, bool accumulate) override;
  void linearForward(float* out, const float* inp, WeightRef W, const float* b, int N, int IC, int OC) override;
  void linearAccumulate(float* out, const float* inp, const float* W, int N, int IC, int OC) override;
  void linearBackward(float* dinp, float* dW, float* db, const float* dout, const float* inp, WeightRef W, int N,
                      int IC, int OC, bool accumulateDinp) override;
  void rope(float* x, const int32_t* pos, const float* cosT, const float* sinT, int N, int heads, int D,
            bool inverse) override;
  void swigluForward(float* act, const float* gate, const float* up, size_t n) override;
  void swigluBackward(float* dgate, float* dup, const float* dact, const float* gate, const float* up,
                      size_t n) override;
  void addInPlace(float* x, const float* y, size_t n) override;
  void scaleInPlace(float* x, float a, size_t n) override;
  void logprobForward(float* logp, float* entropy, const float* logits, const int32_t* targets, int N, int V) override;
  void logprobBackward(float* dlogits, const float* logits, const int32_t* targets, const float* dlogp,
                       const float* dentropy, int N, int V) override;
  void attentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                        const aha::AttentionShape& s) override;
  void attentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                         const float* q, const float* k, const float* v, const aha::AttentionShape& s) override;
  void attentionDecode(float* out, const float* q, const float* kCache, const float* vCache, const int32_t* lens,
                       const uint8_t* active, int batch, int maxLen, int heads, int kvHeads, int D) override;
  void attentionDecode16(float* out, const float* q, const uint16_t* kCache, const uint16_t* vCache, DType t,
                         const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads, int kvHeads,
                         int D) override;
  void decodeLinear(float* out, const float* inp, WeightRef W, const float* b, int M, int IC, int OC,
                    const DecodeWeights* pack) override;
  std::unique_ptr<DecodeWeights> packForDecode(const std::vector<WeightMatrix>& mats) override;
  float maxOf(const float* x, size_t n) override;
  double expShiftSum(float* y, const float* x, size_t n, float shift) override;
  double expShiftSumOnly(const float* x, size_t n, float shift) override;
};

}  // namespace aha::cpu
