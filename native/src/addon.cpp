// N-API surface of the engine. Heavy calls run as AsyncWorkers that hand their work to the engine thread
// (engineThread.h) and resolve promises; buffers
// (parameters, gradients, optimizer moments) are exposed to JavaScript as zero-copy Float32Arrays that keep the
// native memory alive for as long as JavaScript holds them.
#include <napi.h>
#include <omp.h>

#include <cmath>
#include <memory>

#include "engineThread.h"
#include "model.h"
#include "sampler.h"
#if defined(AHA_BACKEND_CPU)
#include "cpu/blas.h"
#include "cpu/halfWeights.h"
#include "cpu/packedGemm.h"
#include "cpu/probe.h"
#include "cpu/smallGemm.h"
#include "cpu/vecmath.h"
#endif

namespace {

using aha::Buffer;
using aha::Model;

// Node 20 refuses external ArrayBuffers over 2^32 bytes (buffer.constants.MAX_LENGTH), and on that path it runs
// the finalizer and node-addon-api frees its wrapper again: a double free. No view may reach that size, so larger
// buffers are viewed per tensor or in chunks (see src/engine/engineBuffer.ts).
constexpr size_t kMaxViewFloats = ((size_t)1 << 32) / sizeof(float) - 1;

// A zero-copy view of buf[offset, offset + length) that keeps the buffer alive while JavaScript holds it.
Napi::Float32Array externalView(Napi::Env env, Buffer buf, size_t offset, size_t length) {
  if (offset > buf->size() || length > buf->size() - offset)
    throw Napi::RangeError::New(env, "view [" + std::to_string(offset) + ", +" + std::to_string(length) +
                                         ") is outside the buffer of " + std::to_string(buf->size()) + " floats");
  if (length > kMaxViewFloats)
    throw Napi::RangeError::New(env, "a view of " + std::to_string(length) + " floats is over the " +
                                         std::to_string(kMaxViewFloats) + " one JavaScript view can hold");
  if (length == 0) return Napi::Float32Array::New(env, 0);
  auto* hold = new Buffer(buf);
  auto ab = Napi::ArrayBuffer::New(
      env, buf->data() + offset, length * sizeof(float), [](Napi::Env, void*, Buffer* h) { delete h; }, hold);
  return Napi::Float32Array::New(env, length, ab, 0);
}

// The same for 16-bit weights (bf16 or f16 bits).
Napi::Uint16Array externalView16(Napi::Env env, aha::Buffer16 buf, size_t offset, size_t length) {
  if (offset > buf->size() || length > buf->size() - offset)
    throw Napi::RangeError::New(env, "view [" + std::to_string(offset) + ", +" + std::to_string(length) +
                                         ") is outside the buffer of " + std::to_string(buf->size()) + " elements");
  if (length > kMaxViewFloats)
    throw Napi::RangeError::New(env, "a view of " + std::to_string(length) + " elements is over the " +
                                         std::to_string(kMaxViewFloats) + " one view may hold");
  if (length == 0) return Napi::Uint16Array::New(env, 0);
  auto* hold = new aha::Buffer16(buf);
  auto ab = Napi::ArrayBuffer::New(
      env, buf->data() + offset, length * sizeof(uint16_t), [](Napi::Env, void*, aha::Buffer16* h) { delete h; }, hold);
  return Napi::Uint16Array::New(env, length, ab, 0, napi_uint16_array);
}

// An integer option within [lo, hi]; absent: def. Non-numbers, fractions, NaN and out-of-range values are errors
// naming the option (a double cast to int past its range is undefined behaviour).
double intValue(const Napi::Value& v, const std::string& name, double def, double lo, double hi) {
  if (v.IsUndefined()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), name + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x == std::floor(x)) || !(x >= lo && x <= hi))
    throw Napi::RangeError::New(v.Env(), name + " must be an integer in [" + std::to_string((long long)lo) + ", " +
                                             std::to_string((long long)hi) + "] (got " + std::to_string(x) + ")");
  return x;
}
double intOption(const Napi::Object& o, const char* key, double def, double lo, double hi) {
  return intValue(o.Get(key), key, def, lo, hi);
}
// A finite number option; absent: def.
double finiteOption(const Napi::Object& o, const char* key, double def) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<int32_t> toIds(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

std::vector<float> toFloats(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

// config.tensors: tensorLayout(config) from src/engine/types.ts, the one definition of where each tensor sits.
std::vector<aha::TensorRef> toTensors(const Napi::Value& v) {
  const char* expected = "config.tensors must be an array of {name, shape, offset, size} (tensorLayout(config))";
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), expected);
  auto arr = v.As<Napi::Array>();
  std::vector<aha::TensorRef> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    const std::string at = "config.tensors[" + std::to_string(i) + "]";
    if (!arr.Get(i).IsObject()) throw Napi::TypeError::New(v.Env(), expected);
    auto t = arr.Get(i).As<Napi::Object>();
    if (!t.Get("name").IsString()) throw Napi::TypeError::New(v.Env(), at + ".name must be a string");
    out[i].name = t.Get("name").As<Napi::String>().Utf8Value();
    if (!t.Get("shape").IsArray()) throw Napi::TypeError::New(v.Env(), at + ".shape must be an array");
    auto shape = t.Get("shape").As<Napi::Array>();
    for (uint32_t d = 0; d < shape.Length(); d++) {
      const std::string dim = at + ".shape[" + std::to_string(d) + "]";
      if (!shape.Get(d).IsNumber()) throw Napi::TypeError::New(v.Env(), dim + " must be a number");
      out[i].shape.push_back((int)intValue(shape.Get(d), dim, 0, 1, INT32_MAX));
    }
    // Offsets and sizes come as JavaScript numbers, exact up to 2^53.
    for (const char* key : {"offset", "size"})
      if (!t.Get(key).IsNumber()) throw Napi::TypeError::New(v.Env(), at + "." + key + " must be a number");
    out[i].offset = (size_t)intValue(t.Get("offset"), at + ".offset", 0, 0, 9007199254740992.0);
    out[i].size = (size_t)intValue(t.Get("size"), at + ".size", 0, 0, 9007199254740992.0);
  }
  return out;
}

std::vector<std::vector<int32_t>> toSeqs(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of Int32Array");
  auto arr = v.As<Napi::Array>();
  std::vector<std::vector<int32_t>> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out[i] = toIds(arr.Get(i), what);
  return out;
}

double num(const Napi::Object& o, const char* key, double def) {
  auto v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
bool flag(const Napi::Object& o, const char* key) {
  auto v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

void checkTokens(const Model& m, const std::vector<std::vector<int32_t>>& seqs, int extra) {
  const auto& c = m.config();
  if (seqs.empty()) throw std::runtime_error("no sequences given");
  size_t total = 0;
  for (const auto& s : seqs) total += s.size();
  // Packed positions are int32 inside the engine.
  if (total > (size_t)INT32_MAX)
    throw std::runtime_error("a batch of " + std::to_string(total) + " tokens is over 2^31-1");
  for (size_t s = 0; s < seqs.size(); s++) {
    if (seqs[s].empty()) throw std::runtime_error("sequence " + std::to_string(s) + " is empty");
    if ((int)seqs[s].size() + extra > c.maxPos)
      throw std::runtime_error("sequence " + std::to_string(s) + " has " + std::to_string(seqs[s].size()) +
                               " tokens, over max_position_embeddings " + std::to_string(c.maxPos));
    for (int32_t t : seqs[s])
      if (t < 0 || t >= c.vocab)
        throw std::runtime_error("token id " + std::to_string(t) + " in sequence " + std::to_string(s) +
                                 " is out of range [0, " + std::to_string(c.vocab) + ")");
  }
}

// A promise-returning worker around one closure run off the main thread (holding the model's lock when there is one).
class Task : public Napi::AsyncWorker {
 public:
  using Run = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  Task(Napi::Env env, std::shared_ptr<Model> model, Run run, Done done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), model_(model), run_(run), done_(done) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      std::unique_lock<std::mutex> lock;
      if (model_) lock = std::unique_lock<std::mutex>(model_->mutex);
      aha::runOnEngineThread(run_);
    } catch (const std::bad_alloc&) {
      SetError("out of memory: an engine allocation failed");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Model> model_;
  Run run_;
  Done done_;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "NativeModel",
        {InstanceMethod("layout", &NativeModel::Layout), InstanceMethod("view", &NativeModel::View),
         InstanceMethod("optimizerSteps", &NativeModel::OptimizerSteps),
         InstanceMethod("setOptimizerSteps", &NativeModel::SetOptimizerSteps),
         InstanceMethod("zeroGrad", &NativeModel::ZeroGrad),
         InstanceMethod("snapshotReference", &NativeModel::SnapshotReference),
         InstanceMethod("dropReference", &NativeModel::DropReference),
         InstanceMethod("hasReference", &NativeModel::HasReference),
         InstanceMethod("referenceDtype", &NativeModel::ReferenceDtype),
         InstanceMethod("forward", &NativeModel::Forward), InstanceMethod("backward", &NativeModel::Backward),
         InstanceMethod("adamwStep", &NativeModel::AdamwStep), InstanceMethod("generate", &NativeModel::Generate),
         InstanceMethod("lastHidden", &NativeModel::LastHidden)});
  }

  NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "NativeModel(config): config must be an object");
    auto o = info[0].As<Napi::Object>();
    aha::Config c;
    auto need = [&](const char* k) {
      auto v = o.Get(k);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("config.") + k + " must be a positive integer");
      return (int)intValue(v, std::string("config.") + k, 0, 1, INT32_MAX);
    };
    c.vocab = need("vocabSize");
    c.hidden = need("hiddenSize");
    c.inter = need("intermediateSize");
    c.layers = need("numLayers");
    c.heads = need("numHeads");
    c.kvHeads = need("numKvHeads");
    c.headDim = need("headDim");
    c.maxPos = need("maxPositionEmbeddings");
    c.rmsEps = (float)num(o, "rmsNormEps", 1e-6);
    c.ropeScale = (float)num(o, "ropeAttentionScale", 1.0);
    c.ropeInvFreq = toFloats(o.Get("ropeInvFreq"), "config.ropeInvFreq");
    c.tied = flag(o, "tieWordEmbeddings");
    c.qkvBias = flag(o, "qkvBias");
    c.oBias = flag(o, "oBias");
    c.qkNorm = flag(o, "qkNorm");
    // Per-token widths are ints inside the kernels.
    for (int64_t w :
         {(int64_t)c.heads * c.headDim, (int64_t)c.kvHeads * c.headDim, (int64_t)c.hidden, (int64_t)c.inter})
      if (w > (1 << 24))
        throw Napi::RangeError::New(env, "config: a layer width of " + std::to_string(w) + " is over 2^24");
    auto tensors = toTensors(o.Get("tensors"));
    aha::ModelOptions mo;
    try {
      if (o.Get("weightsDtype").IsString()) mo.weights = aha::dtypeFromName(o.Get("weightsDtype").As<Napi::String>());
      if (o.Get("lora").IsObject()) {
        auto lo = o.Get("lora").As<Napi::Object>();
        mo.loraRank = (int)intValue(lo.Get("r"), "lora.r", 0, 1, 1 << 20);
        mo.loraScale = (float)finiteOption(lo, "scale", 1.0);
        mo.loraTensors = toTensors(lo.Get("tensors"));
      }
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    try {
      model_ = std::make_shared<Model>(c, std::move(tensors), aha::defaultBackend(), std::move(mo));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  Napi::Value Layout(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const auto& ts = model_->layout().tensors;
    auto arr = Napi::Array::New(env, ts.size());
    for (size_t i = 0; i < ts.size(); i++) {
      auto o = Napi::Object::New(env);
      o.Set("name", ts[i].name);
      auto shape = Napi::Array::New(env, ts[i].shape.size());
      for (size_t d = 0; d < ts[i].shape.size(); d++) shape.Set(d, ts[i].shape[d]);
      o.Set("shape", shape);
      o.Set("offset", (double)ts[i].offset);
      o.Set("size", (double)ts[i].size);
      arr.Set(i, o);
    }
    return arr;
  }
  // view(buffer: 'params'|'grads'|'adamM'|'adamV', offset, length) -> Float32Array, zero-copy. Takes the model's
  // lock: the gradient and moment buffers are allocated on first use, which must not race a step on the worker.
  Napi::Value View(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "view: buffer name must be a string");
    const std::string which = info[0].As<Napi::String>().Utf8Value();
    const double limit = (double)(which == "params"     ? model_->layout().total
                                  : which == "adapters" ? model_->lora().total
                                                        : model_->trainableSize());
    const size_t offset = (size_t)intValue(info[1], "view offset", 0, 0, limit);
    const size_t length = (size_t)intValue(info[2], "view length", limit - (double)offset, 0, limit);
    if (which == "params" && model_->weightsDtype() != aha::DType::F32)
      return externalView16(env, model_->params16(), offset, length);
    Buffer buf;
    try {
      std::lock_guard<std::mutex> lock(model_->mutex);
      if (which == "params")
        buf = model_->params();
      else if (which == "adapters") {
        if (!model_->adapters()) throw std::runtime_error("view: this model has no LoRA adapters");
        buf = model_->adapters();
      } else if (which == "grads")
        buf = model_->grads();
      else if (which == "adamM")
        buf = model_->adamM();
      else if (which == "adamV")
        buf = model_->adamV();
      else
        throw Napi::TypeError::New(env, "view: unknown buffer " + which);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    return externalView(env, buf, offset, length);
  }
  Napi::Value OptimizerSteps(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    return Napi::Number::New(info.Env(), (double)model_->optimizerSteps());
  }
  Napi::Value SetOptimizerSteps(const Napi::CallbackInfo& info) {
    const int64_t s = (int64_t)intValue(info[0], "optimizer step", -1, 0, 9007199254740992.0);
    std::lock_guard<std::mutex> lock(model_->mutex);
    model_->setOptimizerSteps(s);
    return info.Env().Undefined();
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    model_->zeroGrad();
    return info.Env().Undefined();
  }
  Napi::Value SnapshotReference(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    try {
      const aha::DType t =
          info.Length() > 0 && info[0].IsString() ? aha::dtypeFromName(info[0].As<Napi::String>()) : aha::DType::F32;
      // Rounding to 16 bits is a parallel loop: it runs where the engine's other parallel regions do.
      aha::runOnEngineThread([&] { model_->snapshotReference(t); });
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return info.Env().Undefined();
  }
  Napi::Value DropReference(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    model_->dropReference();
    return info.Env().Undefined();
  }
  Napi::Value ReferenceDtype(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    return Napi::String::New(info.Env(), aha::dtypeName(model_->referenceDtype()));
  }
  Napi::Value HasReference(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(model_->mutex);
    return Napi::Boolean::New(info.Env(), model_->hasReference());
  }

  // forward(seqs: Int32Array[], {train, entropy, reference, gradientCheckpointing, headChunkRows})
  //   -> Promise<{logprobs, entropy?}>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto seqs = toSeqs(info[0], "sequences");
    auto o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    bool train = flag(o, "train"), ent = flag(o, "entropy"), ref = flag(o, "reference");
    aha::TrainMemory mem;
    mem.gradientCheckpointing = flag(o, "gradientCheckpointing");
    mem.headChunkRows = (int)intValue(o.Get("headChunkRows"), "headChunkRows", 0, 0, INT32_MAX);
    auto model = model_;
    auto lp = std::make_shared<std::vector<float>>();
    auto en = std::make_shared<std::vector<float>>();
    auto* t = new Task(
        env, model,
        [model, seqs, train, ent, ref, mem, lp, en]() {
          checkTokens(*model, seqs, 0);
          model->setTrainMemory(mem);
          model->forward(aha::packSequences(seqs), train, ent, ref, *lp, *en);
        },
        [lp, en, ent](Napi::Env env) -> Napi::Value {
          auto r = Napi::Object::New(env);
          auto a = Napi::Float32Array::New(env, lp->size());
          std::copy(lp->begin(), lp->end(), a.Data());
          r.Set("logprobs", a);
          if (ent) {
            auto e = Napi::Float32Array::New(env, en->size());
            std::copy(en->begin(), en->end(), e.Data());
            r.Set("entropy", e);
          }
          return r;
        });
    auto p = t->Promise();
    t->Queue();
    return p;
  }

  // lastHidden(seqs: Int32Array[]) -> Promise<Float32Array [numSeqs, hidden]>: the final-norm hidden state at each
  // sequence's last token, no logits.
  Napi::Value LastHidden(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto seqs = toSeqs(info[0], "sequences");
    auto model = model_;
    auto out = std::make_shared<std::vector<float>>();
    auto* t = new Task(
        env, model,
        [model, seqs, out]() {
          checkTokens(*model, seqs, 0);
          model->lastHidden(aha::packSequences(seqs), *out);
        },
        [out](Napi::Env env) -> Napi::Value {
          auto a = Napi::Float32Array::New(env, out->size());
          std::copy(out->begin(), out->end(), a.Data());
          return a;
        });
    auto p = t->Promise();
    t->Queue();
    return p;
  }

  // backward(dlogp: Float32Array, dentropy?: Float32Array) -> Promise<void>
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto dl = toFloats(info[0], "dlogprobs");
    bool hasEnt = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull();
    std::vector<float> de = hasEnt ? toFloats(info[1], "dentropy") : std::vector<float>();
    auto model = model_;
    auto* t = new Task(
        env, model, [model, dl, de, hasEnt]() { model->backward(dl, hasEnt ? &de : nullptr); },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
    auto p = t->Promise();
    t->Queue();
    return p;
  }

  // adamwStep({lr, beta1, beta2, eps, weightDecay, maxGradNorm}) -> Promise<{gradNorm, skipped, step}>
  Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto o = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    aha::AdamWOptions a;
    a.lr = (float)finiteOption(o, "lr", a.lr);
    a.beta1 = (float)finiteOption(o, "beta1", a.beta1);
    a.beta2 = (float)finiteOption(o, "beta2", a.beta2);
    a.eps = (float)finiteOption(o, "eps", a.eps);
    a.weightDecay = (float)finiteOption(o, "weightDecay", a.weightDecay);
    a.maxGradNorm = (float)finiteOption(o, "maxGradNorm", a.maxGradNorm);
    if (!(a.lr >= 0)) throw Napi::RangeError::New(env, "lr must be >= 0");
    if (!(a.beta1 >= 0 && a.beta1 < 1) || !(a.beta2 >= 0 && a.beta2 < 1))
      throw Napi::RangeError::New(env, "beta1 and beta2 must be in [0, 1)");
    if (!(a.eps > 0)) throw Napi::RangeError::New(env, "eps must be > 0");
    if (!(a.weightDecay >= 0)) throw Napi::RangeError::New(env, "weightDecay must be >= 0");
    auto model = model_;
    auto res = std::make_shared<aha::StepResult>();
    auto* t = new Task(
        env, model, [model, a, res]() { *res = model->adamwStep(a); },
        [res](Napi::Env env) -> Napi::Value {
          auto r = Napi::Object::New(env);
          r.Set("gradNorm", res->gradNorm);
          r.Set("skipped", res->skipped);
          r.Set("step", (double)res->step);
          return r;
        });
    auto p = t->Promise();
    t->Queue();
    return p;
  }

  // generate(prompts: Int32Array[], {temperature, topP, topK, maxNewTokens, stopTokenIds, seeds}) -> Promise<[...]>
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto prompts = toSeqs(info[0], "prompts");
    auto o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    aha::SampleOptions so;
    so.temperature = (float)finiteOption(o, "temperature", 1.0);
    so.topP = (float)finiteOption(o, "topP", 1.0);
    // Past the vocabulary top-k keeps every token, so large values mean "off"; past INT_MAX they are clamped first.
    const double topK = intOption(o, "topK", 0, 0, 9007199254740991.0);
    so.topK = topK >= (double)model_->config().vocab ? 0 : (int)topK;
    // The cache never holds more than max_position_embeddings, so a longer budget is the same as that one.
    so.maxNewTokens = (int)std::min<double>(intOption(o, "maxNewTokens", 16, 1, 9007199254740991.0), INT32_MAX);
    if (o.Get("stopTokenIds").IsTypedArray()) so.stopTokenIds = toIds(o.Get("stopTokenIds"), "stopTokenIds");
    if (o.Get("kvCacheDtype").IsString()) {
      try {
        so.kvCacheDtype = aha::dtypeFromName(o.Get("kvCacheDtype").As<Napi::String>().Utf8Value());
      } catch (const std::exception& e) {
        throw Napi::RangeError::New(env, std::string("kvCacheDtype: ") + e.what());
      }
    }
    try {
      aha::validate(so);
    } catch (const std::exception& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    std::vector<aha::SampleRequest> reqs(prompts.size());
    auto seeds = o.Get("seeds");
    if (!seeds.IsUndefined() && (!seeds.IsArray() || seeds.As<Napi::Array>().Length() != prompts.size()))
      throw Napi::TypeError::New(env, "seeds must be an array with one seed per prompt");
    for (size_t i = 0; i < prompts.size(); i++) {
      reqs[i].prompt = prompts[i];
      if (seeds.IsArray()) {
        reqs[i].seed = (uint64_t)intValue(seeds.As<Napi::Array>().Get((uint32_t)i), "seed " + std::to_string(i), 0, 0,
                                          9007199254740991.0);
      } else {
        reqs[i].seed = i;
      }
    }
    auto model = model_;
    auto res = std::make_shared<std::vector<aha::SampleResult>>();
    auto* t = new Task(
        env, model,
        [model, prompts, reqs, so, res]() {
          checkTokens(*model, prompts, 0);
          *res = aha::generate(*model, reqs, so);
        },
        [res](Napi::Env env) -> Napi::Value {
          auto arr = Napi::Array::New(env, res->size());
          for (size_t i = 0; i < res->size(); i++) {
            const auto& r = (*res)[i];
            auto o = Napi::Object::New(env);
            auto tk = Napi::Int32Array::New(env, r.tokens.size());
            std::copy(r.tokens.begin(), r.tokens.end(), tk.Data());
            auto lp = Napi::Float32Array::New(env, r.logprobs.size());
            std::copy(r.logprobs.begin(), r.logprobs.end(), lp.Data());
            o.Set("tokens", tk);
            o.Set("logprobs", lp);
            o.Set("finishReason", r.finishReason);
            arr.Set(i, o);
          }
          return arr;
        });
    auto p = t->Promise();
    t->Queue();
    return p;
  }

  std::shared_ptr<Model> model_;
};

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int n = (int)intValue(info[0], "threads", 1, 1, 4096);
  // The thread count is a per-thread setting: it is set on the thread that runs the engine's parallel regions.
  aha::runOnEngineThread([n] { omp_set_num_threads(n); });
  return info.Env().Undefined();
}

// The CPU backend's machine probes and kernel tests: they measure and check this machine's kernels themselves, not
// the engine through its backend interface.
#if defined(AHA_BACKEND_CPU)
Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  auto r = Napi::Object::New(info.Env());
  r.Set("coreName", std::string(aha::cpu::blasCoreName()));
  r.Set("blasThreads", aha::cpu::blasThreads());
  int omp = 0;
  aha::runOnEngineThread([&] { omp = omp_get_max_threads(); });
  r.Set("ompThreads", omp);
  return r;
}

// probe(kind, M, N, K, reps): "sgemm" -> GFLOP/s of the engine's sgemm at that shape; "fma" -> FMA peak GFLOP/s.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  int dims[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4; i++)
    dims[i] = info.Length() > (size_t)(i + 1) ? info[i + 1].As<Napi::Number>().Int32Value() : 0;
  if (kind != "sgemm" && kind != "fma") throw Napi::Error::New(env, "probe: unknown kind " + kind);
  if (kind == "sgemm" && (dims[0] < 1 || dims[1] < 1 || dims[2] < 1))
    throw Napi::Error::New(env, "probe: sgemm needs M, N, K >= 1");
  auto out = std::make_shared<double>(0);
  auto* t = new Task(
      env, nullptr,
      [kind, dims, out]() {
        *out = kind == "fma" ? aha::cpu::fmaPeakGflops() : aha::cpu::sgemmGflops(dims[0], dims[1], dims[2], dims[3]);
      },
      [out](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *out); });
  auto p = t->Promise();
  t->Queue();
  return p;
}

// Kernels exposed for their tests against float64 references; not part of the public API.
struct GemmArgs {
  std::vector<float> X, W, bias;
  bool hasBias;
  int M, K, N;
};

// (X, W, bias | null, M, K, N), checked against each other.
GemmArgs gemmArgs(const Napi::CallbackInfo& info, const char* name) {
  GemmArgs a;
  a.X = toFloats(info[0], "X");
  a.W = toFloats(info[1], "W");
  a.hasBias = info[2].IsTypedArray();
  if (a.hasBias) a.bias = toFloats(info[2], "bias");
  a.M = info[3].As<Napi::Number>().Int32Value();
  a.K = info[4].As<Napi::Number>().Int32Value();
  a.N = info[5].As<Napi::Number>().Int32Value();
  if (a.M < 1 || a.K < 1 || a.N < 1 || (size_t)a.M * a.K != a.X.size() || (size_t)a.N * a.K != a.W.size() ||
      (a.hasBias && a.bias.size() != (size_t)a.N))
    throw Napi::Error::New(info.Env(), std::string(name) + ": sizes do not match M, K, N");
  return a;
}

Napi::Value KernelSmallGemm(const Napi::CallbackInfo& info) {
  GemmArgs a = gemmArgs(info, "smallGemm");
  auto C = Napi::Float32Array::New(info.Env(), (size_t)a.M * a.N);
  aha::cpu::smallGemmNT(C.Data(), a.X.data(), a.W.data(), a.hasBias ? a.bias.data() : nullptr, a.M, a.K, a.N);
  return C;
}

Napi::Value KernelPackedGemm(const Napi::CallbackInfo& info) {
  GemmArgs a = gemmArgs(info, "packedGemm");
  if (!aha::cpu::packedGemmAvailable()) throw Napi::Error::New(info.Env(), "packedGemm: not compiled for this CPU");
  aha::cpu::PackedWeights pw;
  pw.pack(a.W.data(), a.N, a.K);
  auto C = Napi::Float32Array::New(info.Env(), (size_t)a.M * a.N);
  aha::cpu::packedGemmNT(C.Data(), a.X.data(), pw, a.hasBias ? a.bias.data() : nullptr, a.M);
  return C;
}

// (X, W, bias | null, M, K, N, dtype): W rounded to the 16-bit dtype, then the product through linearForward16.
Napi::Value KernelLinear16(const Napi::CallbackInfo& info) {
  GemmArgs a = gemmArgs(info, "linear16");
  const aha::DType t = aha::dtypeFromName(info[6].As<Napi::String>().Utf8Value());
  if (t == aha::DType::F32) throw Napi::Error::New(info.Env(), "linear16: dtype must be bf16 or f16");
  std::vector<uint16_t> W16(a.W.size());
  for (size_t i = 0; i < W16.size(); i++) W16[i] = aha::fromFloat(a.W[i], t);
  auto C = Napi::Float32Array::New(info.Env(), (size_t)a.M * a.N);
  aha::cpu::linearForward16(C.Data(), a.X.data(), W16.data(), t, a.hasBias ? a.bias.data() : nullptr, a.M, a.K, a.N);
  return C;
}

Napi::Value KernelExpShift(const Napi::CallbackInfo& info) {
  auto x = toFloats(info[0], "x");
  const float shift = info[1].As<Napi::Number>().FloatValue();
  auto y = Napi::Float32Array::New(info.Env(), x.size());
  const double sum = aha::cpu::expShiftSum(y.Data(), x.data(), x.size(), shift);
  auto r = Napi::Object::New(info.Env());
  r.Set("y", y);
  r.Set("sum", sum);
  r.Set("max", aha::cpu::maxOf(x.data(), x.size()));
  return r;
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeModel", NativeModel::Init(env));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
#if defined(AHA_BACKEND_CPU)
  exports.Set("blasInfo", Napi::Function::New(env, BlasInfo));
  exports.Set("probe", Napi::Function::New(env, Probe));
  auto kernels = Napi::Object::New(env);
  kernels.Set("smallGemmNT", Napi::Function::New(env, KernelSmallGemm));
  kernels.Set("expShiftSum", Napi::Function::New(env, KernelExpShift));
  kernels.Set("packedGemmNT", Napi::Function::New(env, KernelPackedGemm));
  kernels.Set("linear16", Napi::Function::New(env, KernelLinear16));
  kernels.Set("packedAvailable", aha::cpu::packedGemmAvailable());
  exports.Set("kernels", kernels);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(aha_engine, Init)
