/**
 * A plain float64 reference of the decoder-only transformer the native engine implements (Hugging Face
 * Llama / Qwen2 / Qwen3 semantics). It is written for obviousness, not speed: one token and one head at a time,
 * every tensor copied to float64 first, so that engine tests can compare against it with tight tolerances and
 * finite differences can be taken through it.
 */
import { parameterCount, tensorLayout, type EngineConfig, type TensorInfo } from '../../src/engine/types.ts';

/**
 * Parameters laid out by tensorLayout(config), or a function giving each tensor (for models too large for one
 * array); float32 values are widened to float64 before any arithmetic.
 */
export type ReferenceParams = Float64Array | Float32Array | ((t: TensorInfo) => Float32Array);

/** Per-position results of one forward pass over one sequence. */
export interface ReferenceOutput {
  /** logprobs[t] = log softmax(logits_t)[ids[t+1]], t = 0..n-2. */
  logprobs: Float64Array;
  /** entropy[t] of the next-token distribution at position t, t = 0..n-2 (nats). */
  entropy: Float64Array;
}

/** v / sqrt(mean(v^2) + eps) * w, elementwise; the HF RMSNorm. */
export function rmsnorm(v: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += v[i] * v[i];
  const inv = 1 / Math.sqrt(ss / v.length + eps);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * inv * w[i];
  return out;
}

/**
 * HF rotate-half RoPE of one head vector at position pos: pairs (j, j + D/2) are rotated by pos * invFreq[j],
 * with cos and sin both multiplied by attentionScale (HF "attention_factor").
 */
export function applyRope(
  a: Float64Array,
  pos: number,
  invFreq: ArrayLike<number>,
  attentionScale: number,
): Float64Array {
  const D = a.length,
    half = D / 2;
  const out = new Float64Array(D);
  for (let j = 0; j < half; j++) {
    const angle = pos * invFreq[j];
    const c = Math.cos(angle) * attentionScale,
      s = Math.sin(angle) * attentionScale;
    out[j] = a[j] * c - a[j + half] * s;
    out[j + half] = a[j + half] * c + a[j] * s;
  }
  return out;
}

/** log softmax of one row of logits, max-shifted so large logits don't overflow. */
export function logSoftmax(z: Float64Array): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > m) m = z[i];
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - m);
  const logSum = Math.log(sum);
  const out = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = z[i] - m - logSum;
  return out;
}

/** y = x W^T + b with W [outDim, inDim] row-major (torch.nn.Linear). */
function linear(x: Float64Array, W: Float64Array, outDim: number, b?: Float64Array): Float64Array {
  const inDim = x.length;
  if (W.length !== outDim * inDim)
    throw new Error(`linear: weight has ${W.length} elements, expected ${outDim}x${inDim}`);
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = b ? b[o] : 0;
    for (let i = 0; i < inDim; i++) acc += W[o * inDim + i] * x[i];
    y[o] = acc;
  }
  return y;
}

function silu(z: number): number {
  return z / (1 + Math.exp(-z));
}

/** Splits a [count * D] vector into count head vectors of length D. */
function splitHeads(v: Float64Array, count: number, D: number): Float64Array[] {
  const out: Float64Array[] = [];
  for (let h = 0; h < count; h++) out.push(v.slice(h * D, (h + 1) * D));
  return out;
}

function checkInputs(c: EngineConfig, params: ReferenceParams, ids: number[]): void {
  const expected = parameterCount(c);
  if (typeof params !== 'function' && params.length !== expected)
    throw new Error(`reference: params has ${params.length} elements, layout needs ${expected}`);
  if (c.numHeads % c.numKvHeads !== 0)
    throw new Error(`reference: numHeads ${c.numHeads} not a multiple of numKvHeads ${c.numKvHeads}`);
  if (c.headDim % 2 !== 0) throw new Error(`reference: headDim ${c.headDim} is odd; rotate-half RoPE needs it even`);
  if (c.ropeInvFreq.length !== c.headDim / 2) {
    throw new Error(`reference: ropeInvFreq has length ${c.ropeInvFreq.length}, expected headDim/2 = ${c.headDim / 2}`);
  }
  if (ids.length === 0) throw new Error('reference: empty token sequence');
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
      throw new Error(`reference: ids[${t}] = ${id} outside [0, ${c.vocabSize})`);
  }
}

/** Float64 copies of every tensor, by HF name. */
function tensorsOf(c: EngineConfig, params: ReferenceParams): (name: string) => Float64Array {
  const layout = new Map(tensorLayout(c).map((t) => [t.name, t]));
  const map = new Map<string, Float64Array>();
  const lazy = typeof params === 'function';
  const copy = (t: TensorInfo) =>
    Float64Array.from(typeof params === 'function' ? params(t) : params.subarray(t.offset, t.offset + t.size));
  if (!lazy) for (const t of layout.values()) map.set(t.name, copy(t));
  return (name) => {
    let w = map.get(name);
    if (!w) {
      const t = layout.get(name);
      if (!t || !lazy) throw new Error(`reference: no tensor ${name} in layout`);
      // A large model's float64 copy would not fit: keep about one layer's tensors (they are used layer by layer).
      if (map.size >= 16) map.delete(map.keys().next().value!);
      map.set(name, (w = copy(t)));
    }
    return w;
  };
}

/** Options of {@link referenceLogits} and {@link referenceHidden}. */
export interface ReferenceOptions {
  /** Applied to every key (after RoPE) and value before attention reads them: a 16-bit KV cache's rounding. */
  roundKv?: (x: number) => number;
}

/**
 * Logits at every position of one sequence (row t predicts ids[t+1]); n rows of vocabSize, float64 throughout.
 * Positions are 0..n-1 within the sequence; attention is causal.
 */
export function referenceLogits(
  config: EngineConfig,
  params: ReferenceParams,
  ids: number[],
  opts: ReferenceOptions = {},
): Float64Array[] {
  const T = tensorsOf(config, params);
  const head = config.tieWordEmbeddings ? T('model.embed_tokens.weight') : T('lm_head.weight');
  return referenceHidden(config, params, ids, opts).map((h) => linear(h, head, config.vocabSize));
}

/**
 * The final-norm hidden state at every position of one sequence (what the head reads; a sequence-classification
 * model's score head reads the last one), float64 throughout.
 */
export function referenceHidden(
  config: EngineConfig,
  params: ReferenceParams,
  ids: number[],
  opts: ReferenceOptions = {},
): Float64Array[] {
  checkInputs(config, params, ids);
  const c = config;
  const T = tensorsOf(c, params);
  const n = ids.length,
    C = c.hiddenSize,
    D = c.headDim,
    H = c.numHeads,
    KV = c.numKvHeads,
    I = c.intermediateSize;
  const group = H / KV;
  const eps = c.rmsNormEps;
  const invFreq = Array.from(c.ropeInvFreq); // float32 values, widened exactly
  const scale = 1 / Math.sqrt(D);

  const embed = T('model.embed_tokens.weight');
  const x: Float64Array[] = ids.map((id) => embed.slice(id * C, (id + 1) * C));

  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const bq = c.qkvBias ? T(p + 'self_attn.q_proj.bias') : undefined;
    const bk = c.qkvBias ? T(p + 'self_attn.k_proj.bias') : undefined;
    const bv = c.qkvBias ? T(p + 'self_attn.v_proj.bias') : undefined;
    const bo = c.oBias ? T(p + 'self_attn.o_proj.bias') : undefined;

    // q, k, v for all positions from the layer input, before any residual update of this layer.
    const q: Float64Array[][] = [],
      k: Float64Array[][] = [],
      v: Float64Array[][] = [];
    for (let t = 0; t < n; t++) {
      const h = rmsnorm(x[t], T(p + 'input_layernorm.weight'), eps);
      let qh = splitHeads(linear(h, T(p + 'self_attn.q_proj.weight'), H * D, bq), H, D);
      let kh = splitHeads(linear(h, T(p + 'self_attn.k_proj.weight'), KV * D, bk), KV, D);
      const vh = splitHeads(linear(h, T(p + 'self_attn.v_proj.weight'), KV * D, bv), KV, D);
      if (c.qkNorm) {
        qh = qh.map((a) => rmsnorm(a, T(p + 'self_attn.q_norm.weight'), eps));
        kh = kh.map((a) => rmsnorm(a, T(p + 'self_attn.k_norm.weight'), eps));
      }
      q.push(qh.map((a) => applyRope(a, t, invFreq, c.ropeAttentionScale)));
      const round = opts.roundKv;
      const rounded = (a: Float64Array) => (round ? a.map(round) : a);
      k.push(kh.map((a) => rounded(applyRope(a, t, invFreq, c.ropeAttentionScale))));
      v.push(vh.map(rounded));
    }

    for (let t = 0; t < n; t++) {
      const o = new Float64Array(H * D);
      for (let hd = 0; hd < H; hd++) {
        const kvh = Math.floor(hd / group);
        const scores = new Float64Array(t + 1);
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[t][hd][d] * k[s][kvh][d];
          scores[s] = dot * scale;
        }
        const logp = logSoftmax(scores);
        for (let s = 0; s <= t; s++) {
          const ps = Math.exp(logp[s]);
          for (let d = 0; d < D; d++) o[hd * D + d] += ps * v[s][kvh][d];
        }
      }
      const attn = linear(o, T(p + 'self_attn.o_proj.weight'), C, bo);
      for (let i = 0; i < C; i++) x[t][i] += attn[i];

      const h2 = rmsnorm(x[t], T(p + 'post_attention_layernorm.weight'), eps);
      const gate = linear(h2, T(p + 'mlp.gate_proj.weight'), I);
      const up = linear(h2, T(p + 'mlp.up_proj.weight'), I);
      const act = new Float64Array(I);
      for (let i = 0; i < I; i++) act[i] = silu(gate[i]) * up[i];
      const mlp = linear(act, T(p + 'mlp.down_proj.weight'), C);
      for (let i = 0; i < C; i++) x[t][i] += mlp[i];
    }
  }

  return x.map((xt) => rmsnorm(xt, T('model.norm.weight'), eps));
}

/**
 * Log-probability of each next token and the entropy of each next-token distribution, for positions 0..n-2
 * of one sequence; computed in float64 throughout (float32 params are widened, never rounded back).
 */
export function referenceForward(config: EngineConfig, params: ReferenceParams, ids: number[]): ReferenceOutput {
  const logits = referenceLogits(config, params, ids);
  const n = ids.length;
  const logprobs = new Float64Array(n - 1),
    entropy = new Float64Array(n - 1);
  for (let t = 0; t < n - 1; t++) {
    const lp = logSoftmax(logits[t]);
    logprobs[t] = lp[ids[t + 1]];
    let h = 0;
    for (let vi = 0; vi < lp.length; vi++) h -= Math.exp(lp[vi]) * lp[vi];
    entropy[t] = h;
  }
  return { logprobs, entropy };
}

/**
 * Greedy decoding by full recomputation: each step reruns referenceLogits on prompt + generated so far and takes
 * the argmax of the last row (lowest id on ties, like torch.argmax). Returns only the generated tokens; stops after
 * maxNew tokens or right after emitting any of stopIds (the stop token is included).
 */
export function referenceGenerateGreedy(
  config: EngineConfig,
  params: ReferenceParams,
  prompt: number[],
  maxNew: number,
  stopIds: number[] = [],
): number[] {
  const seq = prompt.slice();
  const out: number[] = [];
  for (let step = 0; step < maxNew; step++) {
    const logits = referenceLogits(config, params, seq);
    const last = logits[logits.length - 1];
    let best = 0;
    for (let vi = 1; vi < last.length; vi++) if (last[vi] > last[best]) best = vi;
    seq.push(best);
    out.push(best);
    if (stopIds.includes(best)) break;
  }
  return out;
}
