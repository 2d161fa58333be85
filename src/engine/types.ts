/**
 * The shape of a decoder-only transformer as the native engine sees it (Llama / Qwen2 / Qwen3 / Mistral family).
 * Built from a Hugging Face config.json by src/model/hfConfig.ts; the engine never reads JSON itself.
 */
export interface EngineConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  /** Rotary inverse frequencies, length headDim/2 (HF rotate-half RoPE); rope_scaling is folded in here. */
  ropeInvFreq: Float32Array;
  /** Multiplier applied to cos/sin (HF "attention_factor"; 1 unless a rope_scaling type asks otherwise). */
  ropeAttentionScale: number;
  tieWordEmbeddings: boolean;
  /** Bias on q_proj, k_proj, v_proj (Qwen2 always; Llama/Qwen3 when attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama/Qwen3 when attention_bias; never Qwen2). */
  oBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  maxPositionEmbeddings: number;
}

/**
 * One parameter tensor inside the engine's single contiguous float32 parameter buffer.
 * Names and shapes are exactly the Hugging Face ones (Linear weights are [out, in], row-major),
 * so checkpoints map one-to-one onto safetensors entries.
 */
export interface TensorInfo {
  name: string;
  shape: number[];
  /** Offset in float32 elements from the start of the parameter buffer. */
  offset: number;
  /** Number of elements (product of shape). */
  size: number;
}

/**
 * The order in which tensors sit in the parameter buffer. Every consumer (checkpoint I/O, the float64 reference
 * in the tests, the native engine) derives offsets from this one function, so they cannot drift apart.
 */
export function tensorLayout(c: EngineConfig): TensorInfo[] {
  const out: TensorInfo[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, offset, size });
    offset += size;
  };
  const C = c.hiddenSize,
    D = c.headDim,
    I = c.intermediateSize;
  add('model.embed_tokens.weight', [c.vocabSize, C]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    add(p + 'input_layernorm.weight', [C]);
    add(p + 'self_attn.q_proj.weight', [c.numHeads * D, C]);
    if (c.qkvBias) add(p + 'self_attn.q_proj.bias', [c.numHeads * D]);
    add(p + 'self_attn.k_proj.weight', [c.numKvHeads * D, C]);
    if (c.qkvBias) add(p + 'self_attn.k_proj.bias', [c.numKvHeads * D]);
    add(p + 'self_attn.v_proj.weight', [c.numKvHeads * D, C]);
    if (c.qkvBias) add(p + 'self_attn.v_proj.bias', [c.numKvHeads * D]);
    add(p + 'self_attn.o_proj.weight', [C, c.numHeads * D]);
    if (c.oBias) add(p + 'self_attn.o_proj.bias', [C]);
    if (c.qkNorm) {
      add(p + 'self_attn.q_norm.weight', [D]);
      add(p + 'self_attn.k_norm.weight', [D]);
    }
    add(p + 'post_attention_layernorm.weight', [C]);
    add(p + 'mlp.gate_proj.weight', [I, C]);
    add(p + 'mlp.up_proj.weight', [I, C]);
    add(p + 'mlp.down_proj.weight', [C, I]);
  }
  add('model.norm.weight', [C]);
  if (!c.tieWordEmbeddings) add('lm_head.weight', [c.vocabSize, C]);
  return out;
}

/** Total number of float32 parameters. */
export function parameterCount(c: EngineConfig): number {
  const t = tensorLayout(c);
  const last = t[t.length - 1];
  return last.offset + last.size;
}

/**
 * The most floats one zero-copy view of an engine buffer can hold: Node refuses external ArrayBuffers over
 * buffer.constants.MAX_LENGTH bytes (2^32 on Node 20), and the engine caps views there on every version.
 */
export const MAX_VIEW_FLOATS = 2 ** 30 - 1;

/**
 * Where the tensors of a layout live: one flat array laid out by `tensorLayout`, or a function that returns a view
 * of `length` floats of tensor `t` from element `start`. The engine's buffers of models over 4 GiB cannot be one
 * JavaScript view, nor can a single tensor over 4 GiB, so code that reads or writes whole models goes tensor by
 * tensor and chunk by chunk through this.
 */
export type TensorStore = Float32Array | ((t: TensorInfo, start: number, length: number) => Float32Array);

/** Views covering tensor `t` of `store` in order, each at most `maxFloats` long (one view for a flat array). */
export function tensorChunks(store: TensorStore, t: TensorInfo, maxFloats = MAX_VIEW_FLOATS): Float32Array[] {
  if (typeof store !== 'function') {
    if (t.offset + t.size > store.length)
      throw new Error(`${t.name} ends at ${t.offset + t.size}, past the buffer (${store.length})`);
    return [store.subarray(t.offset, t.offset + t.size)];
  }
  const out: Float32Array[] = [];
  for (let start = 0; start < t.size; start += maxFloats) {
    const n = Math.min(maxFloats, t.size - start);
    const v = store(t, start, n);
    if (v.length !== n)
      throw new Error(`tensor store gave ${v.length} floats for ${t.name}[${start}..] (${n} expected)`);
    out.push(v);
  }
  return out;
}
