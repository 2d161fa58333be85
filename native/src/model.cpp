#include "model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "layerStrategy.h"

namespace aha {

PackedBatch packSequences(const std::vector<std::vector<int32_t>>& seqs) {
  PackedBatch b;
  b.starts.push_back(0);
  for (const auto& s : seqs) {
    for (size_t t = 0; t < s.size(); t++) {
      b.ids.push_back(s[t]);
      b.pos.push_back((int32_t)t);
      b.targets.push_back(t + 1 < s.size() ? s[t + 1] : -1);
    }
    b.starts.push_back((int32_t)b.ids.size());
  }
  return b;
}

Model::Model(Config cfg, std::vector<TensorRef> tensors, Backend& backend, ModelOptions opts)
    : cfg_(std::move(cfg)), backend_(backend), wdtype_(opts.weights) {
  if (cfg_.heads % cfg_.kvHeads != 0)
    throw std::runtime_error("num_attention_heads must be a multiple of num_key_value_heads");
  if (cfg_.headDim % 2 != 0) throw std::runtime_error("head_dim must be even for rotary embeddings");
  if ((int)cfg_.ropeInvFreq.size() != cfg_.headDim / 2)
    throw std::runtime_error("ropeInvFreq must have head_dim/2 entries");
  layout_ = layoutFromTensors(cfg_, std::move(tensors));
  if (opts.loraRank > 0)
    lora_ = loraLayoutFromTensors(cfg_, opts.loraRank, opts.loraScale, std::move(opts.loraTensors));
  const std::string count = std::to_string(layout_.total);
  if (wdtype_ == DType::F32) {
    params_ = allocFloats(layout_.total, "the weights (" + count + " float32 parameters)");
  } else {
    params16_ = allocHalves(layout_.total, "the weights (" + count + " " + dtypeName(wdtype_) + " parameters)");
    allocVecSlots();
  }
  if (lora_.on()) adapters_ = allocFloats(lora_.total, "the LoRA adapters");
}

// Room for the 1-D tensors (norms, biases) of 16-bit weights, widened on each pass.
void Model::allocVecSlots() {
  if (!vecSlots_.empty()) return;
  size_t n = 0;
  for (const TensorRef& t : layout_.tensors)
    if (t.shape.size() == 1) {
      vecSlots_.push_back({t.offset, n});
      n += t.size;
    }
  vecs_.assign(n, 0.0f);
  std::sort(vecSlots_.begin(), vecSlots_.end());
}

void Model::requireTrainable() const {
  if (!lora_.on() && wdtype_ != DType::F32)
    throw std::runtime_error(std::string("the weights are ") + dtypeName(wdtype_) +
                             " and frozen: training them needs float32 weights, or LoRA adapters");
}

Buffer Model::grads() {
  requireTrainable();
  if (!grads_) grads_ = allocFloats(trainableSize(), "the gradients");
  return grads_;
}
Buffer Model::adamM() {
  requireTrainable();
  if (!m_) m_ = allocFloats(trainableSize(), "AdamW's first moments");
  return m_;
}
Buffer Model::adamV() {
  requireTrainable();
  if (!v_) v_ = allocFloats(trainableSize(), "AdamW's second moments");
  return v_;
}

void Model::setOptimizerSteps(int64_t s) {
  if (s < 0 || s > ((int64_t)1 << 53))
    throw std::runtime_error("optimizer step " + std::to_string(s) + " is outside [0, 2^53]");
  step_ = s;
}

void Model::snapshotReference(DType t) {
  if (lora_.on()) return;  // the base with the adapters off
  requireTrainable();
  dropReference();
  refType_ = t;
  if (t == DType::F32) {
    Buffer ref = allocFloats(layout_.total, "the reference model's weights");
    std::copy(params_->begin(), params_->end(), ref->begin());
    ref_ = ref;
    return;
  }
  Buffer16 ref = allocHalves(layout_.total, std::string("the reference model's weights (") + dtypeName(t) + ")");
  const float* P = params_->data();
  uint16_t* R = ref->data();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < layout_.total; i++) R[i] = fromFloat(P[i], t);
  allocVecSlots();
  ref16_ = ref;
}

void Model::zeroGrad() {
  if (grads_) std::fill(grads_->begin(), grads_->end(), 0.0f);
}

void Model::ensureRope(int maxPos) {
  if (maxPos <= ropeLen_) return;
  int len = std::max(maxPos, std::min(cfg_.maxPos, std::max(2 * ropeLen_, 256)));
  const int half = cfg_.headDim / 2;
  cos_.assign((size_t)len * half, 0.0f);
  sin_.assign((size_t)len * half, 0.0f);
  for (int p = 0; p < len; p++)
    for (int j = 0; j < half; j++) {
      // float32 angle, as transformers computes position * inv_freq in float32
      float ang = (float)p * cfg_.ropeInvFreq[j];
      cos_[(size_t)p * half + j] = (float)std::cos((double)ang) * cfg_.ropeScale;
      sin_[(size_t)p * half + j] = (float)std::sin((double)ang) * cfg_.ropeScale;
    }
  ropeLen_ = len;
}

static size_t layerFloats(const Config& c, const LoraLayout& lora, size_t N) {
  size_t C = c.hidden, qd = c.qDim(), kd = c.kvDim(), I = c.inter;
  size_t n = N * C * 4 + N * 2 + N * qd * 3 + N * kd * 4 + N * c.heads * 2 + N * c.kvHeads + N * I * 3;
  if (lora.on()) n += kLoraSites * (N * lora.r + 16);
  return n + 16 * 18;  // slack for alignment of each pointer
}

int Model::headRows(int N) const {
  const int want =
      trainMemory_.headChunkRows > 0
          ? trainMemory_.headChunkRows
          : (int)std::min<size_t>(INT32_MAX, std::max<size_t>(1, kHeadChunkBytes / (4 * (size_t)cfg_.vocab)));
  return std::max(1, std::min(N, want));
}

// The arena: layer slots (every layer's for a train forward without checkpointing, else one), the layer inputs kept
// under checkpointing, then xOut, the final norm's output and rstd, and one chunk of logits. It only grows while
// the mode stays; a train forward sizes the slots and inputs for its own mode, so turning checkpointing on shrinks it.
void Model::ensureArena(int N, bool train, bool checkpoint, int headRows) {
  const int needSlots = train && !checkpoint ? cfg_.layers : 1;
  const int needInputs = train && checkpoint ? cfg_.layers - 1 : 0;
  if (N <= arenaN_ && needSlots <= arenaSlots_ && needInputs <= arenaInputs_ && headRows <= arenaHeadRows_) return;
  const int n = std::max(N, arenaN_);
  const int slots = train ? needSlots : std::max(1, arenaSlots_);
  const int inputs = train ? needInputs : arenaInputs_;
  const int hr = std::max(headRows, train ? 0 : arenaHeadRows_);
  const size_t total = layerFloats(cfg_, lora_, n) * slots + (size_t)inputs * n * cfg_.hidden +
                       (size_t)n * (cfg_.hidden * 2 + 1) + (size_t)hr * cfg_.vocab + 64;
  // The old arena goes first, so that growing it needs the new size only once.
  arena_.clear();
  arena_.shrink_to_fit();
  arenaN_ = arenaSlots_ = arenaInputs_ = arenaHeadRows_ = 0;
  haveTrainActs_ = false;
  const std::string kept = train ? checkpoint ? " (layer inputs kept for backward)" : " (kept for backward)" : "";
  requireMemory(total * sizeof(float), std::string("activations for ") + std::to_string(n) + " tokens" + kept);
  try {
    arena_.assign(total, 0.0f);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory: activations for " + std::to_string(n) + " tokens need " +
                             formatBytes(4.0 * (double)total) + ", allocation failed");
  }
  arenaN_ = n;
  arenaSlots_ = slots;
  arenaInputs_ = inputs;
  arenaHeadRows_ = hr;
  float* p = arena_.data() + layerFloats(cfg_, lora_, n) * slots;
  inputs_ = p;
  p += (size_t)inputs * n * cfg_.hidden;
  xOut_ = p;
  p += (size_t)n * cfg_.hidden;
  lnf_ = p;
  p += (size_t)n * cfg_.hidden;
  rstdf_ = p;
  p += n;
  logits_ = p;
}

LayerActs Model::layerActs(int l, bool train) {
  size_t N = arenaN_, C = cfg_.hidden, qd = cfg_.qDim(), kd = cfg_.kvDim(), I = cfg_.inter;
  float* p = arena_.data() + layerFloats(cfg_, lora_, N) * (train ? l : 0);
  auto take = [&](size_t n) {
    float* r = p;
    p += (n + 15) & ~size_t(15);
    return r;
  };
  LayerActs a;
  a.xIn = take(N * C);
  a.ln1 = take(N * C);
  a.rstd1 = take(N);
  a.qPre = take(N * qd);
  a.kPre = take(N * kd);
  a.qRstd = take(N * cfg_.heads);
  a.kRstd = take(N * cfg_.kvHeads);
  a.q = take(N * qd);
  a.k = take(N * kd);
  a.v = take(N * kd);
  a.att = take(N * qd);
  a.lse = take(N * cfg_.heads);
  a.xMid = take(N * C);
  a.ln2 = take(N * C);
  a.rstd2 = take(N);
  a.gate = take(N * I);
  a.up = take(N * I);
  a.act = take(N * I);
  for (int s = 0; s < kLoraSites; s++) a.lora[s] = lora_.on() ? take(N * lora_.r) : nullptr;
  return a;
}

float* Model::layerInput(int l) {
  return l == 0 ? layerActs(0, false).xIn : inputs_ + (size_t)(l - 1) * arenaN_ * cfg_.hidden;
}

LayerActs Model::trainActs(int l) {
  if (!lastCheckpointed_) return layerActs(l, true);
  LayerActs a = layerActs(0, false);
  a.xIn = layerInput(l);
  return a;
}

static float* opt(float* base, size_t off) { return base && off != kNone ? base + off : nullptr; }

ModelWeights Model::resolve(bool useReference, bool withGrads) {
  if (useReference && !hasReference()) throw std::runtime_error("no reference model: call snapshotReference() first");
  if (withGrads) requireTrainable();
  const bool full = !lora_.on();
  WeightRef base;
  if (useReference && full)
    base = refType_ == DType::F32 ? WeightRef(ref_->data()) : WeightRef(ref16_->data(), refType_);
  else if (wdtype_ == DType::F32)
    base = WeightRef(params_->data());
  else
    base = WeightRef(params16_->data(), wdtype_);
  // Vectors: float32 in place, or the 16-bit ones widened (a few thousand floats per layer).
  auto vec = [&](size_t off) -> const float* {
    if (off == kNone) return nullptr;
    if (base.isF32()) return base.f32() + off;
    auto slot = std::lower_bound(vecSlots_.begin(), vecSlots_.end(), std::pair<size_t, size_t>{off, 0});
    if (slot == vecSlots_.end() || slot->first != off) throw std::logic_error("weight vector not found");
    return vecs_.data() + slot->second;
  };
  if (!base.isF32()) {
    size_t n = 0;
    for (const TensorRef& t : layout_.tensors)
      if (t.shape.size() == 1) {
        for (size_t i = 0; i < t.size; i++) vecs_[n + i] = toFloat(base.u16()[t.offset + i], base.t);
        n += t.size;
      }
  }
  ModelWeights w;
  float* G = withGrads && full ? grads()->data() : nullptr;
  float* GA = withGrads && !full ? grads()->data() : nullptr;
  const float* A = lora_.on() && !useReference ? adapters_->data() : nullptr;
  w.embed = base.at(layout_.embed);
  w.lmHead = base.at(layout_.lmHead);
  w.layers.resize(cfg_.layers);
  if (G) w.grads.resize(cfg_.layers);
  for (int l = 0; l < cfg_.layers; l++) {
    const LayerOffsets& o = layout_.layers[l];
    LayerWeights& L = w.layers[l];
    L.wq = base.at(o.wq), L.wk = base.at(o.wk), L.wv = base.at(o.wv), L.wo = base.at(o.wo);
    L.gate = base.at(o.wGate), L.up = base.at(o.wUp), L.down = base.at(o.wDown);
    for (auto [ptr, off] : {std::pair<const float**, size_t>{&L.ln1, o.ln1},
                            {&L.bq, o.bq},
                            {&L.bk, o.bk},
                            {&L.bv, o.bv},
                            {&L.bo, o.bo},
                            {&L.qNorm, o.qNorm},
                            {&L.kNorm, o.kNorm},
                            {&L.ln2, o.ln2}})
      *ptr = vec(off);
    if (A)
      for (int s = 0; s < kLoraSites; s++) {
        const size_t a = lora_.layers[l].A[s], b = lora_.layers[l].B[s];
        if (a == kNone) continue;
        L.lora[s] = {A + a, A + b, opt(GA, a), opt(GA, b)};
      }
    if (G) {
      LayerGrads& g = w.grads[l];
      g.wq = G + o.wq, g.wk = G + o.wk, g.wv = G + o.wv, g.wo = G + o.wo;
      g.gate = G + o.wGate, g.up = G + o.wUp, g.down = G + o.wDown;
      g.ln1 = G + o.ln1, g.ln2 = G + o.ln2, g.bq = opt(G, o.bq), g.bk = opt(G, o.bk), g.bv = opt(G, o.bv);
      g.bo = opt(G, o.bo), g.qNorm = opt(G, o.qNorm), g.kNorm = opt(G, o.kNorm);
    }
  }
  w.finalNorm = vec(layout_.finalNorm);
  if (G) {
    w.dEmbed = G + layout_.embed;
    w.dLmHead = G + layout_.lmHead;
    w.dFinalNorm = G + layout_.finalNorm;
  }
  return w;
}

// Reads a.xIn and keeps every intermediate in a (what backward reads); writes the layer's output to out, which may
// be a.xIn itself outside training (the attention residual is its last reader).
void Model::layerBody(int l, const LayerWeights& w, const LayerActs& a, float* out, int rows, const int32_t* pos,
                      const LayerProducts& products, LayerAttention& attention) {
  const Config& c = cfg_;
  Backend& be = backend_;
  const int C = c.hidden, qd = c.qDim(), kd = c.kvDim(), D = c.headDim, I = c.inter;
  const size_t n = (size_t)rows * C;
  // y = x W^T + b, plus scale * (x A^T) B^T where the module is adapted (the adapters are never merged, so the
  // reference pass is the same body with them off).
  auto project = [&](int site, float* y, const float* x, WeightRef W, const float* b, int IC, int OC) {
    products.linear(y, x, W, b, rows, IC, OC);
    const LoraFactors& f = w.lora[site];
    if (!f.A) return;
    be.linearForward(a.lora[site], x, f.A, nullptr, rows, IC, lora_.r);
    be.scaleInPlace(a.lora[site], lora_.scale, (size_t)rows * lora_.r);
    be.linearAccumulate(y, a.lora[site], f.B, rows, lora_.r, OC);
  };
  be.rmsnormForward(a.ln1, a.rstd1, a.xIn, w.ln1, rows, C, c.rmsEps);
  if (c.qkNorm) {
    project(kLoraQ, a.qPre, a.ln1, w.wq, w.bq, C, qd);
    project(kLoraK, a.kPre, a.ln1, w.wk, w.bk, C, kd);
    be.rmsnormForward(a.q, a.qRstd, a.qPre, w.qNorm, rows * c.heads, D, c.rmsEps);
    be.rmsnormForward(a.k, a.kRstd, a.kPre, w.kNorm, rows * c.kvHeads, D, c.rmsEps);
  } else {
    project(kLoraQ, a.q, a.ln1, w.wq, w.bq, C, qd);
    project(kLoraK, a.k, a.ln1, w.wk, w.bk, C, kd);
  }
  project(kLoraV, a.v, a.ln1, w.wv, w.bv, C, kd);
  be.rope(a.q, pos, cos_.data(), sin_.data(), rows, c.heads, D, false);
  be.rope(a.k, pos, cos_.data(), sin_.data(), rows, c.kvHeads, D, false);
  attention.attend(l, a);
  project(kLoraO, a.xMid, a.att, w.wo, w.bo, qd, C);
  be.addInPlace(a.xMid, a.xIn, n);
  be.rmsnormForward(a.ln2, a.rstd2, a.xMid, w.ln2, rows, C, c.rmsEps);
  project(kLoraGate, a.gate, a.ln2, w.gate, nullptr, C, I);
  project(kLoraUp, a.up, a.ln2, w.up, nullptr, C, I);
  be.swigluForward(a.act, a.gate, a.up, (size_t)rows * I);
  project(kLoraDown, out, a.act, w.down, nullptr, I, C);
  be.addInPlace(out, a.xMid, n);
}

void Model::forward(const PackedBatch& b, bool train, bool wantEntropy, bool useReference, std::vector<float>& logp,
                    std::vector<float>& entropy) {
  if (b.numSeqs() < 1 || b.numTokens() < 1) throw std::runtime_error("forward needs at least one non-empty sequence");
  if (train) requireTrainable();
  const ModelWeights W = resolve(useReference, false);
  const int N = b.numTokens(), C = cfg_.hidden, V = cfg_.vocab;
  int maxLen = 0;
  for (int s = 0; s < b.numSeqs(); s++) maxLen = std::max(maxLen, b.starts[s + 1] - b.starts[s]);
  ensureRope(maxLen);
  const bool ckpt = train && trainMemory_.gradientCheckpointing;
  const int H = headRows(N);
  ensureArena(N, train, ckpt, H);
  haveTrainActs_ = false;
  lastCheckpointed_ = ckpt;
  backend_.embeddingForward(layerActs(0, train && !ckpt).xIn, b.ids.data(), W.embed, N, C);
  BatchProducts products(backend_);
  PackedAttention attention(backend_, cfg_, b, nullptr);
  for (int l = 0; l < cfg_.layers; l++) {
    LayerActs a = train ? trainActs(l) : layerActs(l, false);
    // Training keeps every layer's input for backward, so each layer writes into the next one's input.
    float* out = l + 1 == cfg_.layers ? xOut_ : train ? trainActs(l + 1).xIn : a.xIn;
    layerBody(l, W.layers[l], a, out, N, b.pos.data(), products, attention);
  }
  backend_.rmsnormForward(lnf_, rstdf_, xOut_, W.finalNorm, N, C, cfg_.rmsEps);
  // The head, H rows at a time: each row's logits and log-softmax depend on that row alone.
  std::vector<float> lpAll(N), entAll(wantEntropy ? N : 0);
  for (int r0 = 0; r0 < N; r0 += H) {
    const int rows = std::min(H, N - r0);
    backend_.linearForward(logits_, lnf_ + (size_t)r0 * C, W.lmHead, nullptr, rows, C, V);
    backend_.logprobForward(lpAll.data() + r0, wantEntropy ? entAll.data() + r0 : nullptr, logits_,
                            b.targets.data() + r0, rows, V);
  }
  logp.clear();
  entropy.clear();
  for (int i = 0; i < N; i++)
    if (b.targets[i] >= 0) {
      logp.push_back(lpAll[i]);
      if (wantEntropy) entropy.push_back(entAll[i]);
    }
  if (train) {
    lastBatch_ = b;
    lastUsedReference_ = useReference;
    lastHeadRows_ = H;
    haveTrainActs_ = true;
  }
}

void Model::backward(const std::vector<float>& dlogpIn, const std::vector<float>* dentIn) {
  if (!haveTrainActs_) throw std::runtime_error("backward() needs a forward with train=true just before it");
  const PackedBatch& b = lastBatch_;
  const Config& c = cfg_;
  const int N = b.numTokens(), C = c.hidden, qd = c.qDim(), kd = c.kvDim(), I = c.inter, D = c.headDim;
  const size_t expected = (size_t)N - b.numSeqs();
  if (dlogpIn.size() != expected || (dentIn && dentIn->size() != expected))
    throw std::runtime_error("gradient length " + std::to_string(dlogpIn.size()) + " does not match the " +
                             std::to_string(expected) + " log-probs of the last forward");
  Backend& be = backend_;
  if (lastUsedReference_ && !hasReference())
    throw std::runtime_error("the reference model was dropped after its forward");
  const ModelWeights W = resolve(lastUsedReference_, true);
  const int r = lora_.r;
  std::vector<float> dlogp(N, 0.0f), dent(dentIn ? N : 0, 0.0f);
  for (int i = 0, j = 0; i < N; i++)
    if (b.targets[i] >= 0) {
      dlogp[i] = dlogpIn[j];
      if (dentIn) dent[i] = (*dentIn)[j];
      j++;
    }
  size_t need = (size_t)N * (2 * (size_t)C + 3 * (size_t)qd + 3 * (size_t)kd + 3 * (size_t)I + (size_t)r) + 64;
  if (scratch_.size() < need) {
    scratch_.clear();
    scratch_.shrink_to_fit();
    requireMemory(need * sizeof(float), "backward scratch for " + std::to_string(N) + " tokens");
    scratch_.assign(need, 0.0f);
  }
  float* p = scratch_.data();
  auto take = [&](size_t width) {
    float* r = p;
    p += (size_t)N * width;
    return r;
  };
  float *dx = take(C), *dln = take(C), *dAtt = take(qd), *dq = take(qd), *dqPre = take(qd), *dk = take(kd),
        *dkPre = take(kd), *dv = take(kd), *dAct = take(I), *dGate = take(I), *dUp = take(I), *dLora = take(r);

  // Head, chunk by chunk from the last (whose logits the forward left in the buffer): logits are recomputed, then
  // overwritten in place by their gradient. A chunk with no gradient at all (prompt tokens) is skipped.
  const int H = lastHeadRows_, lastChunk = (N - 1) / H * H;
  for (int r0 = lastChunk; r0 >= 0; r0 -= H) {
    const int rows = std::min(H, N - r0);
    bool any = false;
    for (int i = r0; i < r0 + rows && !any; i++) any = dlogp[i] != 0.0f || (dentIn && dent[i] != 0.0f);
    if (!any) {
      std::fill(dln + (size_t)r0 * C, dln + (size_t)(r0 + rows) * C, 0.0f);
      continue;
    }
    if (r0 != lastChunk) be.linearForward(logits_, lnf_ + (size_t)r0 * C, W.lmHead, nullptr, rows, C, c.vocab);
    be.logprobBackward(logits_, logits_, b.targets.data() + r0, dlogp.data() + r0, dentIn ? dent.data() + r0 : nullptr,
                       rows, c.vocab);
    be.linearBackward(dln + (size_t)r0 * C, W.dLmHead, nullptr, logits_, lnf_ + (size_t)r0 * C, W.lmHead, rows, C,
                      c.vocab, false);
  }
  be.rmsnormBackward(dx, W.dFinalNorm, dln, xOut_, W.finalNorm, rstdf_, N, C, false);

  AttentionShape shape{c.heads, c.kvHeads, D, b.starts.data(), b.numSeqs()};
  BatchProducts products(be);
  PackedAttention attention(be, c, b, nullptr);
  static const LayerGrads frozen;
  for (int l = c.layers - 1; l >= 0; l--) {
    LayerActs a = trainActs(l);
    const LayerWeights& w = W.layers[l];
    const LayerGrads& g = W.grads.empty() ? frozen : W.grads[l];
    // Checkpointing: the same layer body on the same input recomputes the same activations; its output (not read
    // by backward) goes to dln, free until the MLP branch's first input gradient.
    if (lastCheckpointed_) layerBody(l, w, a, dln, N, b.pos.data(), products, attention);
    // Through y = x W^T + b (+ s (x A^T) B^T): dx (= or +=) dy W, then the adapter's own path, which forward kept as
    // u = s x A^T: dB += dy^T u, du = s dy B, dA += du^T x, dx += du A.
    auto projectBack = [&](int site, float* dinp, float* dW, float* db, const float* dy, const float* x, WeightRef Wm,
                           int IC, int OC, bool accumulate) {
      be.linearBackward(dinp, dW, db, dy, x, Wm, N, IC, OC, accumulate);
      const LoraFactors& f = w.lora[site];
      if (!f.A) return;
      be.linearBackward(dLora, f.dB, nullptr, dy, a.lora[site], f.B, N, r, OC, false);
      be.scaleInPlace(dLora, lora_.scale, (size_t)N * r);
      be.linearBackward(dinp, f.dA, nullptr, dLora, x, f.A, N, IC, r, true);
    };
    // MLP branch: x_out = x_mid + down(silu(gate) * up)
    projectBack(kLoraDown, dAct, g.down, nullptr, dx, a.act, w.down, I, C, false);
    be.swigluBackward(dGate, dUp, dAct, a.gate, a.up, (size_t)N * I);
    projectBack(kLoraGate, dln, g.gate, nullptr, dGate, a.ln2, w.gate, C, I, false);
    projectBack(kLoraUp, dln, g.up, nullptr, dUp, a.ln2, w.up, C, I, true);
    be.rmsnormBackward(dx, g.ln2, dln, a.xMid, w.ln2, a.rstd2, N, C, true);
    // Attention branch: x_mid = x_in + o_proj(attention(q, k, v))
    projectBack(kLoraO, dAtt, g.wo, g.bo, dx, a.att, w.wo, qd, C, false);
    be.attentionBackward(dq, dk, dv, dAtt, a.att, a.lse, a.q, a.k, a.v, shape);
    be.rope(dq, b.pos.data(), cos_.data(), sin_.data(), N, c.heads, D, true);
    be.rope(dk, b.pos.data(), cos_.data(), sin_.data(), N, c.kvHeads, D, true);
    if (c.qkNorm) {
      be.rmsnormBackward(dqPre, g.qNorm, dq, a.qPre, w.qNorm, a.qRstd, N * c.heads, D, false);
      be.rmsnormBackward(dkPre, g.kNorm, dk, a.kPre, w.kNorm, a.kRstd, N * c.kvHeads, D, false);
    }
    projectBack(kLoraQ, dln, g.wq, g.bq, c.qkNorm ? dqPre : dq, a.ln1, w.wq, C, qd, false);
    projectBack(kLoraK, dln, g.wk, g.bk, c.qkNorm ? dkPre : dk, a.ln1, w.wk, C, kd, true);
    projectBack(kLoraV, dln, g.wv, g.bv, dv, a.ln1, w.wv, C, kd, true);
    // Layer 0's input gradient feeds only the embedding's, which LoRA freezes.
    if (l > 0 || W.dEmbed) be.rmsnormBackward(dx, g.ln1, dln, a.xIn, w.ln1, a.rstd1, N, C, true);
  }
  if (W.dEmbed) be.embeddingBackward(W.dEmbed, dx, b.ids.data(), N, C);
  haveTrainActs_ = false;  // the logits were consumed
}

StepResult Model::adamwStep(const AdamWOptions& o) {
  StepResult r;
  float* G = grads()->data();
  const size_t n = trainableSize();
  // Fixed chunks summed in order, so the norm (and the clip factor) is the same on every run.
  const size_t chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
  std::vector<double> part(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t k = 0; k < chunks; k++) {
    double s = 0;
    for (size_t i = k * chunk; i < std::min(n, (k + 1) * chunk); i++) s += (double)G[i] * G[i];
    part[k] = s;
  }
  double ss = 0;
  for (double s : part) ss += s;
  r.gradNorm = std::sqrt(ss);
  if (!std::isfinite(r.gradNorm)) {
    r.skipped = true;
    r.step = step_;
    return r;
  }
  float clip = 1.0f;
  if (o.maxGradNorm > 0 && r.gradNorm > o.maxGradNorm) clip = (float)(o.maxGradNorm / (r.gradNorm + 1e-6));
  float* Pm = lora_.on() ? adapters_->data() : params_->data();
  float* M = adamM()->data();
  float* V = adamV()->data();
  step_++;
  const double bc1 = 1.0 - std::pow((double)o.beta1, (double)step_),
               bc2 = 1.0 - std::pow((double)o.beta2, (double)step_);
  const float stepSize = (float)(o.lr / bc1), bc2Sqrt = (float)std::sqrt(bc2);
  // Weight decay on matrices only (embeddings and projections), not on norm weights or biases.
  for (const TensorRef& t : lora_.on() ? lora_.tensors : layout_.tensors) {
    const float decay = t.shape.size() >= 2 ? 1.0f - o.lr * o.weightDecay : 1.0f;
    const size_t a = t.offset, e = t.offset + t.size;
#pragma omp parallel for schedule(static)
    for (size_t i = a; i < e; i++) {
      float g = G[i] * clip;
      M[i] = o.beta1 * M[i] + (1.0f - o.beta1) * g;
      V[i] = o.beta2 * V[i] + (1.0f - o.beta2) * g * g;
      Pm[i] = Pm[i] * decay - stepSize * M[i] / (std::sqrt(V[i]) / bc2Sqrt + o.eps);
    }
  }
  r.step = step_;
  return r;
}

bool Model::packForDecode() {
  if (wdtype_ != DType::F32) return false;  // 16-bit weights are read as they are
  const Config& c = cfg_;
  const float* P = params_->data();
  std::vector<WeightMatrix> mats;
  for (const LayerOffsets& o : layout_.layers) {
    mats.push_back({P + o.wq, c.qDim(), c.hidden});
    mats.push_back({P + o.wk, c.kvDim(), c.hidden});
    mats.push_back({P + o.wv, c.kvDim(), c.hidden});
    mats.push_back({P + o.wo, c.hidden, c.qDim()});
    mats.push_back({P + o.wGate, c.inter, c.hidden});
    mats.push_back({P + o.wUp, c.inter, c.hidden});
    mats.push_back({P + o.wDown, c.hidden, c.inter});
  }
  mats.push_back({P + layout_.lmHead, c.vocab, c.hidden});
  decodePack_.reset();  // before packing anew: the old pack and the new one need not fit together
  decodePack_ = backend_.packForDecode(mats);
  return (bool)decodePack_;
}

void Model::prefill(const PackedBatch& b, const KvSink& sink, std::vector<float>& lastLogits) {
  const ModelWeights W = resolve(false, false);
  const int N = b.numTokens(), C = cfg_.hidden, S = b.numSeqs();
  ensureRope(sink.maxLen);
  ensureArena(N, false, false, 0);
  haveTrainActs_ = false;
  LayerActs a = layerActs(0, false);
  backend_.embeddingForward(a.xIn, b.ids.data(), W.embed, N, C);
  BatchProducts products(backend_);
  PackedAttention attention(backend_, cfg_, b, &sink);
  for (int l = 0; l < cfg_.layers; l++)
    layerBody(l, W.layers[l], a, l + 1 < cfg_.layers ? a.xIn : xOut_, N, b.pos.data(), products, attention);
  // Only each prompt's last position is needed.
  std::vector<float> last((size_t)S * C), rs(S);
  for (int s = 0; s < S; s++)
    std::memcpy(last.data() + (size_t)s * C, xOut_ + (size_t)(b.starts[s + 1] - 1) * C, sizeof(float) * C);
  backend_.rmsnormForward(last.data(), rs.data(), last.data(), W.finalNorm, S, C, cfg_.rmsEps);
  lastLogits.resize((size_t)S * cfg_.vocab);
  backend_.decodeLinear(lastLogits.data(), last.data(), W.lmHead, nullptr, S, C, cfg_.vocab, decodePack_.get());
}

void Model::lastHidden(const PackedBatch& b, std::vector<float>& out) {
  if (b.numSeqs() < 1 || b.numTokens() < 1)
    throw std::runtime_error("lastHidden needs at least one non-empty sequence");
  const ModelWeights W = resolve(false, false);
  const int N = b.numTokens(), C = cfg_.hidden, S = b.numSeqs();
  int maxLen = 0;
  for (int s = 0; s < S; s++) maxLen = std::max(maxLen, b.starts[s + 1] - b.starts[s]);
  ensureRope(maxLen);
  ensureArena(N, false, false, 0);
  haveTrainActs_ = false;
  LayerActs a = layerActs(0, false);
  backend_.embeddingForward(a.xIn, b.ids.data(), W.embed, N, C);
  BatchProducts products(backend_);
  PackedAttention attention(backend_, cfg_, b, nullptr);
  for (int l = 0; l < cfg_.layers; l++)
    layerBody(l, W.layers[l], a, l + 1 < cfg_.layers ? a.xIn : xOut_, N, b.pos.data(), products, attention);
  out.resize((size_t)S * C);
  std::vector<float> rs(S);
  for (int s = 0; s < S; s++)
    std::memcpy(out.data() + (size_t)s * C, xOut_ + (size_t)(b.starts[s + 1] - 1) * C, sizeof(float) * C);
  backend_.rmsnormForward(out.data(), rs.data(), out.data(), W.finalNorm, S, C, cfg_.rmsEps);
}

void Model::decodeStep(const std::vector<int32_t>& ids, const std::vector<int32_t>& pos,
                       const std::vector<int32_t>& rowSeq, const std::vector<int32_t>& lens, const KvSink& cache,
                       std::vector<float>& logits) {
  const Config& c = cfg_;
  const ModelWeights W = resolve(false, false);
  const int M = (int)ids.size(), C = c.hidden;
  int maxPos = 0;
  for (int p : pos) maxPos = std::max(maxPos, p + 1);
  ensureRope(maxPos);
  ensureArena(M, false, false, 0);
  LayerActs a = layerActs(0, false);
  backend_.embeddingForward(a.xIn, ids.data(), W.embed, M, C);
  DecodeProducts products(backend_, decodePack_.get());
  CachedAttention attention(backend_, c, cache, pos, rowSeq, lens);
  for (int l = 0; l < c.layers; l++) layerBody(l, W.layers[l], a, a.xIn, M, pos.data(), products, attention);
  backend_.rmsnormForward(lnf_, rstdf_, a.xIn, W.finalNorm, M, C, c.rmsEps);
  logits.resize((size_t)M * c.vocab);
  backend_.decodeLinear(logits.data(), lnf_, W.lmHead, nullptr, M, C, c.vocab, decodePack_.get());
}

}  // namespace aha
