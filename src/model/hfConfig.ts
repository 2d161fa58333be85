import { AhaError } from '../errors.ts';
import type { EngineConfig } from '../engine/types.ts';

/** The Hugging Face model classes whose weights the engine can run. */
export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
] as const;
export type HfArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const MODEL_TYPE: Record<HfArchitecture, string> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

/**
 * Defaults of the transformers config classes (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config), used when a
 * config.json leaves a field out, so that we build the same model transformers would.
 */
const CLASS_DEFAULTS: Record<
  HfArchitecture,
  { numKvHeads: number | null; headDim: number | null; maxPos: number; slidingWindow: number | null }
> = {
  LlamaForCausalLM: { numKvHeads: null, headDim: null, maxPos: 2048, slidingWindow: null },
  MistralForCausalLM: { numKvHeads: 8, headDim: null, maxPos: 4096 * 32, slidingWindow: 4096 },
  Qwen2ForCausalLM: { numKvHeads: 32, headDim: null, maxPos: 32768, slidingWindow: 4096 },
  Qwen3ForCausalLM: { numKvHeads: 32, headDim: 128, maxPos: 32768, slidingWindow: 4096 },
};

/** RoPE frequency scalings we reproduce exactly (transformers' `rope_type`s "linear" and "llama3"). */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/**
 * What config.json says beyond the engine's shape: needed to write an equivalent config.json back and by
 * tokenizer/generation code (special token ids).
 */
export interface HfModelConfig {
  architecture: HfArchitecture;
  modelType: string;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** As declared in config.json; the engine's value is capped at the sliding window, if one is active. */
  maxPositionEmbeddings: number;
  /** Active sliding-attention window (Mistral v0.1, Qwen with use_sliding_window), else null. */
  slidingWindow: number | null;
  /** Qwen2/Qwen3 `max_window_layers`, kept only to write it back. */
  maxWindowLayers: number | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  initializerRange: number;
  /** `torch_dtype` (or transformers 5's `dtype`) as declared, e.g. "bfloat16"; null when absent. */
  torchDtype: string | null;
}

/** What `toHfConfig` needs besides the EngineConfig; any loaded HfModelConfig qualifies. */
export interface HfConfigExtras {
  architecture: HfArchitecture;
  ropeTheta: number;
  ropeScaling?: RopeScaling | null;
  maxPositionEmbeddings?: number;
  slidingWindow?: number | null;
  maxWindowLayers?: number | null;
  bosTokenId?: number | null;
  eosTokenId?: number | number[] | null;
  padTokenId?: number | null;
  initializerRange?: number;
}

type Json = Record<string, unknown>;

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads typed fields of one JSON object, failing with `<file>: <field> must be ... (got ...)`. */
class Fields {
  constructor(
    private readonly obj: Json,
    private readonly source: string,
    private readonly prefix = '',
  ) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  fail(key: string, what: string): never {
    throw new AhaError(`${this.source}: ${this.prefix}${key} must be ${what} (got ${show(this.obj[key])})`);
  }

  posInt(key: string, dflt?: number | null): number {
    if (!this.has(key)) {
      if (dflt != null) return dflt;
      throw new AhaError(`${this.source}: missing required field ${this.prefix}${key}`);
    }
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(key, 'a positive integer');
    return v;
  }

  posNum(key: string, dflt?: number): number {
    if (!this.has(key)) {
      if (dflt !== undefined) return dflt;
      throw new AhaError(`${this.source}: missing required field ${this.prefix}${key}`);
    }
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, 'a positive number');
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  str(key: string): string | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, 'a non-negative integer');
    return v;
  }

  tokenIds(key: string): number | number[] | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    const ok = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    if (Array.isArray(v) ? !v.every(ok) : !ok(v)) this.fail(key, 'a non-negative integer or a list of them');
    return v as number | number[];
  }
}

function resolveArchitecture(j: Json, f: Fields, source: string): HfArchitecture {
  const supported = SUPPORTED_ARCHITECTURES.join(', ');
  const byType = new Map(Object.entries(MODEL_TYPE).map(([a, t]) => [t, a as HfArchitecture]));
  const modelType = f.str('model_type');
  let fromArchs: HfArchitecture | null = null;
  if (j.architectures !== undefined && j.architectures !== null) {
    const archs = j.architectures;
    if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === 'string')) {
      f.fail('architectures', 'a non-empty list of class names');
    }
    for (const a of archs as string[]) {
      if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(a)) {
        throw new AhaError(`${source}: unsupported architecture ${a} (supported: ${supported})`);
      }
    }
    fromArchs = archs[0] as HfArchitecture;
    if ((archs as string[]).some((a) => a !== fromArchs)) {
      throw new AhaError(`${source}: architectures lists several classes ${show(archs)}; expected one of ${supported}`);
    }
  }
  if (modelType !== null) {
    const fromType = byType.get(modelType);
    if (!fromType) {
      throw new AhaError(
        `${source}: unsupported model_type ${show(modelType)} (supported: ${[...byType.keys()].join(', ')})`,
      );
    }
    // transformers' Auto classes pick the model from model_type; a disagreeing architectures list means a
    // checkpoint whose weights we cannot trust to match either.
    if (fromArchs !== null && fromArchs !== fromType) {
      throw new AhaError(
        `${source}: model_type ${show(modelType)} does not match architectures ${show(j.architectures)}`,
      );
    }
    return fromType;
  }
  if (fromArchs !== null) return fromArchs;
  throw new AhaError(`${source}: missing architectures and model_type (supported: ${supported})`);
}

function parseRopeScaling(raw: unknown, source: string, key: string): RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  if (!isObject(raw)) throw new AhaError(`${source}: ${key} must be an object or null (got ${show(raw)})`);
  const f = new Fields(raw, source, key + '.');
  const type = f.has('rope_type') ? f.str('rope_type') : f.str('type');
  if (type === null || type === 'default') return null;
  const supported = 'supported: linear, llama3';
  if (type === 'linear') {
    return { type, factor: f.posNum('factor') };
  }
  if (type === 'llama3') {
    const s: RopeScaling = {
      type,
      factor: f.posNum('factor'),
      lowFreqFactor: f.posNum('low_freq_factor'),
      highFreqFactor: f.posNum('high_freq_factor'),
      originalMaxPositionEmbeddings: f.posInt('original_max_position_embeddings'),
    };
    if (s.highFreqFactor <= s.lowFreqFactor) {
      throw new AhaError(
        `${source}: ${key}.high_freq_factor must be greater than low_freq_factor (got ${s.highFreqFactor} <= ${s.lowFreqFactor})`,
      );
    }
    return s;
  }
  if (type === 'dynamic') {
    throw new AhaError(
      `${source}: ${key} type "dynamic" (NTK) changes with sequence length and is not supported (${supported})`,
    );
  }
  throw new AhaError(`${source}: ${key} type ${show(type)} is not supported (${supported})`);
}

const f32 = Math.fround;

/**
 * RoPE inverse frequencies as transformers' rope init functions compute them: every step in float32, like the
 * torch ops there (arange(0, dim, 2).float() / dim, base ** x, 1 / x, and the llama3 blend). Results agree with
 * torch to within an ulp (torch's float32 pow is not correctly rounded); branch decisions follow its float32 values.
 */
export function computeRopeInvFreq(headDim: number, ropeTheta: number, scaling: RopeScaling | null): Float32Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new Error(`computeRopeInvFreq: headDim must be a positive even integer (got ${headDim})`);
  }
  const half = headDim / 2;
  const base = f32(ropeTheta);
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const expo = f32((2 * i) / headDim);
    inv[i] = f32(1 / f32(Math.pow(base, expo)));
  }
  if (scaling === null) return inv;
  if (scaling.type === 'linear') {
    const factor = f32(scaling.factor);
    for (let i = 0; i < half; i++) inv[i] = f32(inv[i] / factor);
    return inv;
  }
  const factor = f32(scaling.factor);
  const lowF = f32(scaling.lowFreqFactor);
  const highF = f32(scaling.highFreqFactor);
  const oldCtx = scaling.originalMaxPositionEmbeddings;
  const lowFreqWavelen = oldCtx / scaling.lowFreqFactor; // python floats, compared against float32 tensors
  const highFreqWavelen = oldCtx / scaling.highFreqFactor;
  const twoPi = f32(2 * Math.PI);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // `scalar / tensor` in torch is reciprocal(tensor) * scalar.
    const wavelen = f32(f32(1 / inv[i]) * twoPi);
    let llama = wavelen > lowFreqWavelen ? f32(inv[i] / factor) : inv[i];
    const smooth = f32(f32(f32(f32(1 / wavelen) * f32(oldCtx)) - lowF) / f32(highF - lowF));
    const smoothed = f32(f32(f32(f32(1 - smooth) * llama) / factor) + f32(smooth * llama));
    const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (medium) llama = smoothed;
    out[i] = llama;
  }
  return out;
}

/**
 * Parse a Hugging Face config.json (already JSON-parsed) of a Llama/Mistral/Qwen2/Qwen3 causal LM into the engine's
 * shape plus the extra fields needed to write it back. `source` names the file in error messages.
 * Anything that would make the engine compute something other than transformers does is rejected.
 */
export function parseHfConfig(json: unknown, source: string): { engine: EngineConfig; hf: HfModelConfig } {
  if (!isObject(json)) throw new AhaError(`${source}: expected a JSON object (got ${show(json)})`);
  const j = json;
  const f = new Fields(j, source);
  const architecture = resolveArchitecture(j, f, source);
  const d = CLASS_DEFAULTS[architecture];

  if (j.quantization_config !== undefined && j.quantization_config !== null) {
    throw new AhaError(`${source}: quantized checkpoints (quantization_config) are not supported`);
  }
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu') throw new AhaError(`${source}: hidden_act must be "silu" (got ${show(act)})`);
  if (f.bool('mlp_bias', false)) throw new AhaError(`${source}: mlp_bias=true is not supported`);

  const vocabSize = f.posInt('vocab_size');
  const hiddenSize = f.posInt('hidden_size');
  const intermediateSize = f.posInt('intermediate_size');
  const numLayers = f.posInt('num_hidden_layers');
  const numHeads = f.posInt('num_attention_heads');
  const numKvHeads = f.posInt('num_key_value_heads', d.numKvHeads ?? numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new AhaError(
      `${source}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  let headDim: number;
  if (f.has('head_dim')) headDim = f.posInt('head_dim');
  else if (d.headDim !== null) headDim = d.headDim;
  else {
    if (hiddenSize % numHeads !== 0) {
      throw new AhaError(
        `${source}: hidden_size (${hiddenSize}) must be a multiple of num_attention_heads (${numHeads}) when head_dim is absent`,
      );
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) throw new AhaError(`${source}: head_dim must be even for rotary embeddings (got ${headDim})`);

  const rmsNormEps = f.posNum('rms_norm_eps', 1e-6);
  const tieWordEmbeddings = f.bool('tie_word_embeddings', false);
  const maxPositionEmbeddings = f.posInt('max_position_embeddings', d.maxPos);

  // transformers 5 moved rope_theta / rope_type into `rope_parameters`.
  let ropeTheta: number;
  let ropeScaling: RopeScaling | null;
  let partial: unknown = j.partial_rotary_factor;
  if (isObject(j.rope_parameters)) {
    const rp = new Fields(j.rope_parameters, source, 'rope_parameters.');
    ropeTheta = rp.posNum('rope_theta', f.posNum('rope_theta', 10000));
    ropeScaling = parseRopeScaling(j.rope_parameters, source, 'rope_parameters');
    partial = j.rope_parameters.partial_rotary_factor ?? partial;
  } else {
    ropeTheta = f.posNum('rope_theta', 10000);
    ropeScaling = parseRopeScaling(j.rope_scaling, source, 'rope_scaling');
  }
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new AhaError(
      `${source}: partial_rotary_factor must be 1 (got ${show(partial)}); partial RoPE is not supported`,
    );
  }

  let qkvBias: boolean, oBias: boolean;
  if (architecture === 'Qwen2ForCausalLM') {
    qkvBias = true;
    oBias = false;
  } else if (architecture === 'MistralForCausalLM') {
    qkvBias = false; // MistralAttention has no bias, whatever attention_bias says
    oBias = false;
  } else {
    qkvBias = oBias = f.bool('attention_bias', false);
  }
  const qkNorm = architecture === 'Qwen3ForCausalLM';

  // The engine has no sliding-window attention: it is exact only while sequences fit in the window, so the
  // usable context is capped there.
  let slidingWindow: number | null = null;
  let maxWindowLayers: number | null = null;
  if (architecture === 'MistralForCausalLM') {
    slidingWindow = j.sliding_window === null ? null : f.posInt('sliding_window', d.slidingWindow);
  } else if (architecture === 'Qwen2ForCausalLM' || architecture === 'Qwen3ForCausalLM') {
    maxWindowLayers = f.posInt('max_window_layers', 28);
    const layerTypes = j.layer_types;
    let sliding = f.bool('use_sliding_window', false);
    if (Array.isArray(layerTypes)) sliding = layerTypes.some((t) => t === 'sliding_attention');
    if (sliding && j.sliding_window !== null) slidingWindow = f.posInt('sliding_window', d.slidingWindow);
  }
  const engineMaxPos = slidingWindow !== null ? Math.min(maxPositionEmbeddings, slidingWindow) : maxPositionEmbeddings;

  const initializerRange = f.posNum('initializer_range', 0.02);
  const torchDtype = f.str('torch_dtype') ?? f.str('dtype');

  const engine: EngineConfig = {
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps,
    ropeInvFreq: computeRopeInvFreq(headDim, ropeTheta, ropeScaling),
    ropeAttentionScale: 1,
    tieWordEmbeddings,
    qkvBias,
    oBias,
    qkNorm,
    maxPositionEmbeddings: engineMaxPos,
  };
  const hf: HfModelConfig = {
    architecture,
    modelType: MODEL_TYPE[architecture],
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    slidingWindow,
    maxWindowLayers,
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenId: f.tokenIds('eos_token_id'),
    padTokenId: f.tokenId('pad_token_id'),
    initializerRange,
    torchDtype,
  };
  return { engine, hf };
}

function ropeScalingJson(s: RopeScaling | null): Json | null {
  if (s === null) return null;
  // The legacy `type` key: transformers before 4.42 accepts exactly {type, factor}, later ones map it to rope_type.
  if (s.type === 'linear') return { factor: s.factor, type: 'linear' };
  return {
    factor: s.factor,
    high_freq_factor: s.highFreqFactor,
    low_freq_factor: s.lowFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
    rope_type: 'llama3',
  };
}

/**
 * Build a config.json object that transformers loads into the same model the engine runs. `torchDtype` is the
 * dtype of the weights written next to it (a loaded config's own torch_dtype is deliberately not reused).
 * Throws (a bug, not bad input) when the engine config cannot be expressed by the architecture, e.g. Qwen2
 * without q/k/v biases, or when its ropeInvFreq is not what ropeTheta/ropeScaling produce.
 */
export function toHfConfig(
  engine: EngineConfig,
  extras: HfConfigExtras,
  opts: { torchDtype?: 'float32' | 'bfloat16' | 'float16' } = {},
): Record<string, unknown> {
  const arch = extras.architecture;
  const want: Record<HfArchitecture, { qkv: boolean | 'any'; o: boolean | 'same'; qkNorm: boolean }> = {
    LlamaForCausalLM: { qkv: 'any', o: 'same', qkNorm: false },
    MistralForCausalLM: { qkv: false, o: false, qkNorm: false },
    Qwen2ForCausalLM: { qkv: true, o: false, qkNorm: false },
    Qwen3ForCausalLM: { qkv: 'any', o: 'same', qkNorm: true },
  };
  const w = want[arch];
  if (!w) throw new Error(`toHfConfig: unsupported architecture ${arch}`);
  const okQkv = w.qkv === 'any' || w.qkv === engine.qkvBias;
  const okO = w.o === 'same' ? engine.oBias === engine.qkvBias : w.o === engine.oBias;
  if (!okQkv || !okO || w.qkNorm !== engine.qkNorm) {
    throw new Error(
      `toHfConfig: ${arch} cannot express qkvBias=${engine.qkvBias} oBias=${engine.oBias} qkNorm=${engine.qkNorm}`,
    );
  }
  const scaling = extras.ropeScaling ?? null;
  const inv = computeRopeInvFreq(engine.headDim, extras.ropeTheta, scaling);
  const same = inv.length === engine.ropeInvFreq.length && inv.every((v, i) => Object.is(v, engine.ropeInvFreq[i]));
  if (!same) throw new Error('toHfConfig: engine.ropeInvFreq does not match ropeTheta/ropeScaling');
  if (engine.ropeAttentionScale !== 1) throw new Error('toHfConfig: ropeAttentionScale != 1 has no config.json form');

  const out: Json = {
    architectures: [arch],
    model_type: MODEL_TYPE[arch],
    vocab_size: engine.vocabSize,
    hidden_size: engine.hiddenSize,
    intermediate_size: engine.intermediateSize,
    num_hidden_layers: engine.numLayers,
    num_attention_heads: engine.numHeads,
    num_key_value_heads: engine.numKvHeads,
    head_dim: engine.headDim,
    hidden_act: 'silu',
    max_position_embeddings: extras.maxPositionEmbeddings ?? engine.maxPositionEmbeddings,
    initializer_range: extras.initializerRange ?? 0.02,
    rms_norm_eps: engine.rmsNormEps,
    use_cache: true,
    tie_word_embeddings: engine.tieWordEmbeddings,
    rope_theta: extras.ropeTheta,
    rope_scaling: ropeScalingJson(scaling),
    attention_dropout: 0.0,
  };
  if (arch === 'LlamaForCausalLM' || arch === 'Qwen3ForCausalLM') out.attention_bias = engine.qkvBias;
  if (arch === 'LlamaForCausalLM') {
    out.mlp_bias = false;
    out.pretraining_tp = 1;
  }
  const sw = extras.slidingWindow ?? null;
  if (arch === 'MistralForCausalLM') out.sliding_window = sw;
  if (arch === 'Qwen2ForCausalLM' || arch === 'Qwen3ForCausalLM') {
    out.use_sliding_window = sw !== null;
    out.sliding_window = sw;
    out.max_window_layers = extras.maxWindowLayers ?? engine.numLayers;
  }
  if (extras.bosTokenId != null) out.bos_token_id = extras.bosTokenId;
  if (extras.eosTokenId != null) out.eos_token_id = extras.eosTokenId;
  if (extras.padTokenId != null) out.pad_token_id = extras.padTokenId;
  out.torch_dtype = opts.torchDtype ?? 'float32';
  return out;
}
