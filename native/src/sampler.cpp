#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include "cpu/threadScratch.h"

namespace aha {

namespace {

// Above this many sequences a sampling call packs the weights for its decode steps (at 8 rows or fewer the
// packing-free kernel is as fast and needs no copy of the weights).
constexpr int kPackRows = 8;

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  double uniform() { return (double)(g() >> 11) * (1.0 / 9007199254740992.0); }
};

bool allFinite(const float* z, int V) {
  float acc = 0;
  // z*0 is 0 for finite z and NaN for NaN or +-inf; one NaN makes the sum NaN.
  for (int v = 0; v < V; v++) acc += z[v] * 0.0f;
  return acc == 0.0f;
}

// Draws a token from one row of finite logits; returns the token and its log-prob under the untempered
// distribution.
int32_t sampleRow(Backend& be, const float* z, int V, const SampleOptions& o, Rng& rng, std::vector<float>& w,
                  std::vector<int32_t>& cand, float* logprob) {
  const float mx = be.maxOf(z, V);
  int arg = 0;
  double lse;
  double total = 0;
  const float invT = o.temperature > 0 ? 1.0f / o.temperature : 0.0f;
  const bool sample = o.temperature > 0 && std::isfinite(invT);
  if (sample) {
    w.resize(V);
    if (invT == 1.0f) {
      total = be.expShiftSum(w.data(), z, V, mx);
      lse = mx + std::log(total);
    } else {
      lse = mx + std::log(be.expShiftSumOnly(z, V, mx));
      // Shifted before scaling: z*invT alone overflows for small temperatures, (z-mx)*invT <= 0 cannot.
      for (int v = 0; v < V; v++) w[v] = (z[v] - mx) * invT;
      total = be.expShiftSum(w.data(), w.data(), V, 0.0f);
    }
  } else {
    for (int v = 0; v < V; v++)
      if (z[v] == mx) {
        arg = v;
        break;
      }
    lse = mx + std::log(be.expShiftSumOnly(z, V, mx));
  }
  int32_t tok = arg;
  if (sample) {
    const bool useK = o.topK > 0 && o.topK<V, useP = o.topP> 0 && o.topP < 1;
    if (!useK && !useP) {
      double u = rng.uniform() * total, acc = 0;
      tok = V - 1;
      for (int v = 0; v < V; v++) {
        acc += w[v];
        if (acc > u) {
          tok = v;
          break;
        }
      }
    } else {
      auto desc = [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
      cand.clear();
      if (useK) {
        cand.resize(V);
        std::iota(cand.begin(), cand.end(), 0);
        std::partial_sort(cand.begin(), cand.begin() + o.topK, cand.end(), desc);
        cand.resize(o.topK);
      } else {
        // The nucleus is a prefix of the sorted list, so only tokens above a threshold whose set already holds
        // topP of the mass need sorting; lower the threshold until it does.
        for (double rel : {1e-4, 1e-7, 0.0}) {
          cand.clear();
          double mass = 0, th = rel * total;
          for (int v = 0; v < V; v++)
            if (w[v] >= th) cand.push_back(v), mass += w[v];
          if (mass >= o.topP * total || rel == 0.0) break;
        }
        std::sort(cand.begin(), cand.end(), desc);
      }
      double kept = 0;
      for (int32_t c : cand) kept += w[c];
      size_t n = cand.size();
      if (useP) {
        // Keep the smallest prefix whose probability (renormalised over the top-k set) reaches topP.
        double acc = 0;
        for (size_t i = 0; i < cand.size(); i++) {
          acc += w[cand[i]];
          if (acc >= o.topP * kept) {
            n = i + 1;
            break;
          }
        }
      }
      double mass = 0;
      for (size_t i = 0; i < n; i++) mass += w[cand[i]];
      double u = rng.uniform() * mass, acc = 0;
      tok = cand[n - 1];
      for (size_t i = 0; i < n; i++) {
        acc += w[cand[i]];
        if (acc > u) {
          tok = cand[i];
          break;
        }
      }
    }
  }
  *logprob = (float)(z[tok] - lse);
  return tok;
}

}  // namespace

void validate(const SampleOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw std::runtime_error("temperature must be a finite number >= 0 (got " + std::to_string(o.temperature) + ")");
  if (!(o.topP > 0 && o.topP <= 1))
    throw std::runtime_error("topP must be in (0, 1] (got " + std::to_string(o.topP) + ")");
  if (o.topK < 0) throw std::runtime_error("topK must be >= 0 (got " + std::to_string(o.topK) + ")");
  if (o.maxNewTokens < 1)
    throw std::runtime_error("maxNewTokens must be >= 1 (got " + std::to_string(o.maxNewTokens) + ")");
}

std::vector<SampleResult> generate(Model& model, const std::vector<SampleRequest>& reqs, const SampleOptions& o) {
  validate(o);
  const Config& c = model.config();
  Backend& be = model.backend();
  const int B = (int)reqs.size();
  std::vector<SampleResult> out(B);
  if (B == 0) return out;
  int64_t longest = 0;
  std::vector<std::vector<int32_t>> prompts(B);
  for (int b = 0; b < B; b++) {
    if (reqs[b].prompt.empty()) throw std::runtime_error("prompt " + std::to_string(b) + " is empty");
    if ((int64_t)reqs[b].prompt.size() > c.maxPos)
      throw std::runtime_error("prompt " + std::to_string(b) + " has " + std::to_string(reqs[b].prompt.size()) +
                               " tokens, over max_position_embeddings " + std::to_string(c.maxPos));
    prompts[b] = reqs[b].prompt;
    longest = std::max(longest, (int64_t)reqs[b].prompt.size() + (int64_t)o.maxNewTokens);
  }
  // In 64 bits: prompt length + maxNewTokens may exceed INT_MAX; the cache never exceeds the model's positions.
  const int maxLen = (int)std::min<int64_t>(longest, c.maxPos);
  const int kd = c.kvDim();
  const size_t cacheElems = (size_t)B * maxLen * kd;
  requireMemory(2 * dtypeBytes(o.kvCacheDtype) * (size_t)c.layers * cacheElems,
                "the KV cache for " + std::to_string(B) + " sequences of " + std::to_string(maxLen) + " positions");
  std::vector<std::vector<float>> kc(c.layers), vc(c.layers);
  std::vector<std::vector<uint16_t>> kc16(c.layers), vc16(c.layers);
  KvSink cache;
  cache.dtype = o.kvCacheDtype;
  cache.maxLen = maxLen;
  cache.kvHeads = c.kvHeads;
  cache.headDim = c.headDim;
  for (int l = 0; l < c.layers; l++) {
    if (cache.dtype == DType::F32) {
      kc[l].assign(cacheElems, 0.0f);
      vc[l].assign(cacheElems, 0.0f);
      cache.k.push_back(kc[l].data());
      cache.v.push_back(vc[l].data());
    } else {
      kc16[l].assign(cacheElems, 0);
      vc16[l].assign(cacheElems, 0);
      cache.k16.push_back(kc16[l].data());
      cache.v16.push_back(vc16[l].data());
    }
  }
  std::unordered_set<int32_t> stop(o.stopTokenIds.begin(), o.stopTokenIds.end());
  std::vector<Rng> rngs;
  for (int b = 0; b < B; b++) rngs.emplace_back(reqs[b].seed);
  std::vector<int32_t> lens(B);
  for (int b = 0; b < B; b++) lens[b] = (int)prompts[b].size();

  // GRPO asks for G completions of each prompt in one call: each distinct prompt is prefilled once, into the slot of
  // its first request, and its cache rows and last logits are copied to the others.
  std::map<std::vector<int32_t>, int> firstOf;
  std::vector<int> uniqueOf(B);
  std::vector<std::vector<int32_t>> unique;
  for (int b = 0; b < B; b++) {
    auto it = firstOf.find(prompts[b]);
    if (it == firstOf.end()) {
      uniqueOf[b] = (int)unique.size();
      firstOf.emplace(prompts[b], (int)unique.size());
      unique.push_back(prompts[b]);
      cache.slotOf.push_back(b);
    } else {
      uniqueOf[b] = it->second;
    }
  }
  // Many rows: pack the weights once for all the steps of this call (see Model::packForDecode); freed on every exit.
  struct PackGuard {
    Model& m;
    bool on;
    ~PackGuard() {
      if (on) m.dropDecodePack();
    }
  } guard{model, B > kPackRows};
  if (guard.on) model.packForDecode();
  std::vector<float> uniqueLogits, logits((size_t)B * c.vocab);
  model.prefill(packSequences(unique), cache, uniqueLogits);
  for (int b = 0; b < B; b++) {
    const int u = uniqueOf[b], from = cache.slotOf[u];
    if (from != b) cache.copySlot(from, b, (int)prompts[b].size());
    std::copy(uniqueLogits.begin() + (size_t)u * c.vocab, uniqueLogits.begin() + (size_t)(u + 1) * c.vocab,
              logits.begin() + (size_t)b * c.vocab);
  }
  cache.slotOf.clear();
  std::vector<int32_t> rows(B);
  std::iota(rows.begin(), rows.end(), 0);
  for (int step = 0;; step++) {
    std::vector<int32_t> nextIds, nextPos, nextRows;
    // Rows are independent (each has its own generator), so they are sampled in parallel (one row: on this
    // thread, without waking the others for it).
    std::vector<int32_t> toks(rows.size());
    std::vector<float> lps(rows.size());
    std::vector<uint8_t> bad(rows.size(), 0);
#pragma omp parallel if (rows.size() > 1)
    {
      // Kept across steps: a fresh vocabulary-sized buffer per step would be mapped (and faulted in) anew.
      std::vector<float>& wl = cpu::threadScratch(cpu::Scratch::SampleWeights);
      thread_local std::vector<int32_t> cl;
#pragma omp for schedule(static)
      for (size_t m = 0; m < rows.size(); m++) {
        const float* z = logits.data() + m * (size_t)c.vocab;
        if (!allFinite(z, c.vocab)) {
          bad[m] = 1;
          continue;
        }
        toks[m] = sampleRow(be, z, c.vocab, o, rngs[rows[m]], wl, cl, &lps[m]);
      }
    }
    // Exceptions cannot leave an OpenMP region; the first bad row is reported here.
    for (size_t m = 0; m < rows.size(); m++)
      if (bad[m])
        throw std::runtime_error("non-finite logits (NaN or inf) for sequence " + std::to_string(rows[m]) +
                                 " at generation step " + std::to_string(step) + ": the weights are broken");
    for (size_t m = 0; m < rows.size(); m++) {
      int b = rows[m];
      float lp = lps[m];
      int32_t tok = toks[m];
      out[b].tokens.push_back(tok);
      out[b].logprobs.push_back(lp);
      if (stop.count(tok)) {
        out[b].finishReason = "stop";
      } else if ((int)out[b].tokens.size() >= o.maxNewTokens || lens[b] >= maxLen) {
        out[b].finishReason = "length";
      } else {
        nextIds.push_back(tok);
        nextPos.push_back(lens[b]);
        nextRows.push_back(b);
        lens[b]++;
      }
    }
    if (nextRows.empty()) break;
    rows = nextRows;
    model.decodeStep(nextIds, nextPos, rows, lens, cache, logits);
  }
  return out;
}

}  // namespace aha
