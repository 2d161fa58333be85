#include "cpu/cpuBackend.h"

#include <stdexcept>
#include <unordered_map>

#include "cpu/attention.h"
#include "cpu/blas.h"
#include "cpu/halfWeights.h"
#include "cpu/ops.h"
#include "cpu/packedGemm.h"
#include "cpu/smallGemm.h"
#include "cpu/vecmath.h"
#include "memory.h"

namespace aha::cpu {

namespace {

// The kernels' own description of a packed batch, field for field the interface's.
cpu::AttentionShape kernelShape(const aha::AttentionShape& s) {
  return {s.heads, s.kvHeads, s.headDim, s.starts, s.numSeqs};
}

// Each packed matrix under the address of the weights it copies.
struct PackedDecodeWeights final : DecodeWeights {
  std::unordered_map<const float*, PackedWeights> byMatrix;
};

// Decode steps multiply a few rows (one per live sequence) by each weight matrix, where OpenBLAS spends as long
// re-packing the matrix as multiplying. With weights packed for the sampling call (see packForDecode), every step
// uses the packed kernel; otherwise up to kSmallRows rows take the packing-free kernel. Measured on this project's
// AVX2 machine: packed 1.2-1.4x OpenBLAS at 24-64 rows, 2-5x at 4-16; packing-free about 2x at 8 rows.
constexpr int kSmallRows = 16;

}  // namespace

void CpuBackend::embeddingForward(float* out, const int32_t* ids, WeightRef table, int N, int C) {
  if (table.isF32())
    cpu::embeddingForward(out, ids, table.f32(), N, C);
  else
    embeddingForward16(out, ids, table.u16(), table.t, N, C);
}
void CpuBackend::embeddingBackward(float* dtable, const float* dout, const int32_t* ids, int N, int C) {
  cpu::embeddingBackward(dtable, dout, ids, N, C);
}
void CpuBackend::rmsnormForward(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) {
  cpu::rmsnormForward(out, rstd, inp, w, N, C, eps);
}
void CpuBackend::rmsnormBackward(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                                 const float* rstd, int N, int C, bool accumulate) {
  cpu::rmsnormBackward(dinp, dw, dout, inp, w, rstd, N, C, accumulate);
}
void CpuBackend::linearForward(float* out, const float* inp, WeightRef W, const float* b, int N, int IC, int OC) {
  if (W.isF32())
    cpu::linearForward(out, inp, W.f32(), b, N, IC, OC);
  else
    linearForward16(out, inp, W.u16(), W.t, b, N, IC, OC);
}
void CpuBackend::linearAccumulate(float* out, const float* inp, const float* W, int N, int IC, int OC) {
  sgemm(false, true, N, OC, IC, 1.0f, inp, IC, W, IC, 1.0f, out, OC);
}
void CpuBackend::linearBackward(float* dinp, float* dW, float* db, const float* dout, const float* inp, WeightRef W,
                                int N, int IC, int OC, bool accumulateDinp) {
  if (W.isF32()) return cpu::linearBackward(dinp, dW, db, dout, inp, W.f32(), N, IC, OC, accumulateDinp);
  if (dW) throw std::runtime_error("16-bit weights are frozen: no weight gradient");
  if (dinp) linearInputGrad16(dinp, dout, W.u16(), W.t, N, IC, OC, accumulateDinp);
  if (db) cpu::linearBackward(nullptr, nullptr, db, dout, inp, nullptr, N, IC, OC, false);
}
void CpuBackend::rope(float* x, const int32_t* pos, const float* cosT, const float* sinT, int N, int heads, int D,
                      bool inverse) {
  cpu::rope(x, pos, cosT, sinT, N, heads, D, inverse);
}
void CpuBackend::swigluForward(float* act, const float* gate, const float* up, size_t n) {
  cpu::swigluForward(act, gate, up, n);
}
void CpuBackend::swigluBackward(float* dgate, float* dup, const float* dact, const float* gate, const float* up,
                                size_t n) {
  cpu::swigluBackward(dgate, dup, dact, gate, up, n);
}
void CpuBackend::addInPlace(float* x, const float* y, size_t n) { cpu::addInPlace(x, y, n); }
void CpuBackend::scaleInPlace(float* x, float a, size_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (size_t i = 0; i < n; i++) x[i] *= a;
}
void CpuBackend::logprobForward(float* logp, float* entropy, const float* logits, const int32_t* targets, int N,
                                int V) {
  cpu::logprobForward(logp, entropy, logits, targets, N, V);
}
void CpuBackend::logprobBackward(float* dlogits, const float* logits, const int32_t* targets, const float* dlogp,
                                 const float* dentropy, int N, int V) {
  cpu::logprobBackward(dlogits, logits, targets, dlogp, dentropy, N, V);
}

void CpuBackend::attentionForward(float* out, float* lse, const float* q, const float* k, const float* v,
                                  const aha::AttentionShape& s) {
  cpu::attentionForward(out, lse, q, k, v, kernelShape(s));
}
void CpuBackend::attentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                                   const float* lse, const float* q, const float* k, const float* v,
                                   const aha::AttentionShape& s) {
  cpu::attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, kernelShape(s));
}
void CpuBackend::attentionDecode(float* out, const float* q, const float* kCache, const float* vCache,
                                 const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads,
                                 int kvHeads, int D) {
  cpu::attentionDecode(out, q, kCache, vCache, lens, active, batch, maxLen, heads, kvHeads, D);
}
void CpuBackend::attentionDecode16(float* out, const float* q, const uint16_t* kCache, const uint16_t* vCache, DType t,
                                   const int32_t* lens, const uint8_t* active, int batch, int maxLen, int heads,
                                   int kvHeads, int D) {
  cpu::attentionDecode16(out, q, kCache, vCache, t, lens, active, batch, maxLen, heads, kvHeads, D);
}

void CpuBackend::decodeLinear(float* out, const float* inp, WeightRef Wr, const float* b, int M, int IC, int OC,
                              const DecodeWeights* pack) {
  // 16-bit weights are read as they are: the direct kernel for few rows, widened blocks for many.
  if (!Wr.isF32()) return linearForward16(out, inp, Wr.u16(), Wr.t, b, M, IC, OC);
  const float* W = Wr.f32();
  if (pack) {
    const auto& packed = static_cast<const PackedDecodeWeights*>(pack)->byMatrix;
    auto it = packed.find(W);
    if (it != packed.end()) return packedGemmNT(out, inp, it->second, b, M);
  }
  if (M <= kSmallRows && smallGemmAvailable())
    smallGemmNT(out, inp, W, b, M, IC, OC);
  else
    cpu::linearForward(out, inp, W, b, M, IC, OC);
}

std::unique_ptr<DecodeWeights> CpuBackend::packForDecode(const std::vector<WeightMatrix>& mats) {
  if (!packedGemmAvailable()) return nullptr;
  // The pack is a second copy of these matrices; without room for it twice over, decode keeps the unpacked kernels
  // rather than pushing the machine into swap or the OOM killer.
  double packBytes = 0;
  for (const WeightMatrix& m : mats) packBytes += 4.0 * m.rows * m.cols;
  const double available = (double)availableMemoryBytes();
  if (available > 0 && packBytes * 2 > available) return nullptr;
  auto pack = std::make_unique<PackedDecodeWeights>();
  for (const WeightMatrix& m : mats) pack->byMatrix[m.W].pack(m.W, m.rows, m.cols);
  return pack;
}

float CpuBackend::maxOf(const float* x, size_t n) { return cpu::maxOf(x, n); }
double CpuBackend::expShiftSum(float* y, const float* x, size_t n, float shift) {
  return cpu::expShiftSum(y, x, n, shift);
}
double CpuBackend::expShiftSumOnly(const float* x, size_t n, float shift) { return cpu::expShiftSumOnly(x, n, shift); }

}  // namespace aha::cpu
