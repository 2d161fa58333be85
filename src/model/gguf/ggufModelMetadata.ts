/**
 * The llama.cpp architecture and hyperparameter metadata of an engine model, as llama.cpp's converter writes them
 * for LlamaForCausalLM / MistralForCausalLM (`llama`), Qwen2ForCausalLM (`qwen2`) and Qwen3ForCausalLM (`qwen3`).
 */
import { AhaError } from '../../errors.ts';
import type { EngineConfig } from '../../engine/types.ts';
import { computeRopeInvFreq, type HfModelConfig } from '../hfConfig.ts';
import { gguf, type GgufValue } from './ggufFile.ts';

/** The llama.cpp architectures an export can target. */
export type LlamaCppArch = 'llama' | 'qwen2' | 'qwen3';

/** What the model part of a GGUF needs beyond the tensors of the engine's layout. */
export interface GgufModelPlan {
  arch: LlamaCppArch;
  metadata: Record<string, GgufValue>;
  /** Rows of q/k to reorder for llama.cpp's pairwise RoPE (the `llama` architecture). */
  permuteQK: boolean;
  /**
   * Llama 3 RoPE scaling as llama.cpp takes it: a `rope_freqs.weight` tensor of per-frequency divisors (F32,
   * length headDim/2), null when there is no such scaling.
   */
  ropeFreqs: Float32Array | null;
}

const ARCH: Record<HfModelConfig['architecture'], LlamaCppArch> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

/**
 * The GGUF model metadata of `engine`/`hf`. Throws AhaError for what llama.cpp's architecture cannot run: biases
 * on a Qwen3 model, an output bias on Qwen2, Llama 3 RoPE scaling outside `llama`.
 *
 * The context length is the engine's (a sliding window caps it there, since llama.cpp's llama/qwen2 graphs attend to
 * the whole context, which equals windowed attention only up to the window).
 */
export function ggufModelPlan(engine: EngineConfig, hf: HfModelConfig, source: string): GgufModelPlan {
  const arch = ARCH[hf.architecture];
  if (arch === 'qwen3' && (engine.qkvBias || engine.oBias))
    throw new AhaError(`${source}: llama.cpp's qwen3 architecture has no attention biases (attention_bias is true)`);
  if (arch === 'qwen2' && (!engine.qkvBias || engine.oBias))
    throw new AhaError(`${source}: llama.cpp's qwen2 architecture needs q/k/v biases and no o_proj bias`);
  if (engine.qkNorm !== (arch === 'qwen3'))
    throw new AhaError(`${source}: q/k norms are only exportable for Qwen3 (architecture ${hf.architecture})`);
  if (engine.ropeAttentionScale !== 1) throw new AhaError(`${source}: a RoPE attention factor has no GGUF form`);
  const m: Record<string, GgufValue> = {
    'general.architecture': gguf.str(arch),
    [`${arch}.vocab_size`]: gguf.u32(engine.vocabSize),
    [`${arch}.context_length`]: gguf.u32(engine.maxPositionEmbeddings),
    [`${arch}.embedding_length`]: gguf.u32(engine.hiddenSize),
    [`${arch}.block_count`]: gguf.u32(engine.numLayers),
    [`${arch}.feed_forward_length`]: gguf.u32(engine.intermediateSize),
    [`${arch}.attention.head_count`]: gguf.u32(engine.numHeads),
    [`${arch}.attention.head_count_kv`]: gguf.u32(engine.numKvHeads),
    [`${arch}.attention.key_length`]: gguf.u32(engine.headDim),
    [`${arch}.attention.value_length`]: gguf.u32(engine.headDim),
    [`${arch}.rope.dimension_count`]: gguf.u32(engine.headDim),
    [`${arch}.rope.freq_base`]: gguf.f32(hf.ropeTheta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: gguf.f32(engine.rmsNormEps),
  };
  let ropeFreqs: Float32Array | null = null;
  const s = hf.ropeScaling;
  if (s?.type === 'linear') {
    m[`${arch}.rope.scaling.type`] = gguf.str('linear');
    m[`${arch}.rope.scaling.factor`] = gguf.f32(s.factor);
  } else if (s?.type === 'llama3') {
    if (arch !== 'llama')
      throw new AhaError(`${source}: llama3 RoPE scaling is only exportable for Llama-family models in llama.cpp`);
    // llama.cpp divides each base frequency θ^(-2i/D) by rope_freqs[i]: the ratio of the unscaled to the scaled
    // inverse frequency reproduces the engine's frequencies.
    const base = computeRopeInvFreq(engine.headDim, hf.ropeTheta, null);
    ropeFreqs = new Float32Array(base.length);
    for (let i = 0; i < base.length; i++) ropeFreqs[i] = base[i] / engine.ropeInvFreq[i];
  }
  return { arch, metadata: m, permuteQK: arch === 'llama', ropeFreqs };
}
