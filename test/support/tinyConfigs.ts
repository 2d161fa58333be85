/**
 * Tiny EngineConfigs and seeded random parameters for engine tests: small enough for the float64 reference and
 * finite differences to run in milliseconds, and together covering every branch of the architecture.
 */
import { tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import { mulberry32 } from '../../src/data/rng.ts';

/** HF default RoPE inverse frequencies 1 / theta^(2j/D), j < D/2, rounded to float32 as the engine receives them. */
export function defaultInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let j = 0; j < headDim / 2; j++) out[j] = 1 / Math.pow(theta, (2 * j) / headDim);
  return out;
}

/** The project's seeded PRNG (src/data/rng.ts), re-exported for the engine tests. */
export { mulberry32 };

/** Standard normal samples from a seeded uniform source (Box-Muller). */
export function gaussian(rand: () => number): () => number {
  return () => {
    const u = 1 - rand(); // (0, 1], so the log is finite
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

function base(overrides: Partial<EngineConfig> & Pick<EngineConfig, 'headDim'>): EngineConfig {
  return {
    vocabSize: 13,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 1,
    numHeads: 4,
    numKvHeads: 2,
    rmsNormEps: 1e-6,
    ropeInvFreq: defaultInvFreq(overrides.headDim, 10000),
    ropeAttentionScale: 1,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    qkNorm: false,
    maxPositionEmbeddings: 64,
    ...overrides,
  };
}

/** Llama-style GQA (4 query heads over 2 kv heads), tied embeddings, 2 layers, no biases. */
export const gqaTied: EngineConfig = base({
  vocabSize: 13,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  tieWordEmbeddings: true,
});

/** Plain multi-head attention (numKvHeads = numHeads), untied lm_head, 1 layer. */
export const mhaUntied: EngineConfig = base({
  vocabSize: 11,
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 2,
  headDim: 4,
  tieWordEmbeddings: false,
  rmsNormEps: 1e-5,
});

/** Qwen2-style: bias on q/k/v only, GQA, tied embeddings, 2 layers. */
export const qwen2Bias: EngineConfig = base({
  vocabSize: 19,
  hiddenSize: 16,
  intermediateSize: 20,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  tieWordEmbeddings: true,
  qkvBias: true,
});

/** Llama attention_bias: bias on q/k/v and o; 3 query heads sharing one kv head (MQA), untied. */
export const llamaAttnBias: EngineConfig = base({
  vocabSize: 23,
  hiddenSize: 12,
  intermediateSize: 16,
  numLayers: 1,
  numHeads: 3,
  numKvHeads: 1,
  headDim: 4,
  tieWordEmbeddings: false,
  qkvBias: true,
  oBias: true,
  rmsNormEps: 1e-5,
});

/** Qwen3-style per-head q/k RMSNorm, headDim (6) != hiddenSize/numHeads (2), GQA, tied, 2 layers. */
export const qwen3QkNorm: EngineConfig = base({
  vocabSize: 29,
  hiddenSize: 8,
  intermediateSize: 16,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 6,
  tieWordEmbeddings: true,
  qkNorm: true,
});

/**
 * Everything at once: q/k/v/o biases, qk-norm, headDim (10) != hiddenSize/numHeads (8), untied, vocab 50, and a
 * rope_scaling-like setup (theta 500 so rotations are visible over short sequences, low frequencies divided by 4,
 * attention factor 1.25) so the ropeAttentionScale path is exercised.
 */
export const allFeatures: EngineConfig = base({
  vocabSize: 50,
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 10,
  tieWordEmbeddings: false,
  qkvBias: true,
  oBias: true,
  qkNorm: true,
  ropeInvFreq: Float32Array.from(defaultInvFreq(10, 500), (f, j) => (j >= 3 ? f / 4 : f)),
  ropeAttentionScale: 1.25,
});

/** All tiny configs by name, for tests that loop over architectures. */
export const TINY_CONFIGS: Record<string, EngineConfig> = {
  gqaTied,
  mhaUntied,
  qwen2Bias,
  llamaAttnBias,
  qwen3QkNorm,
  allFeatures,
};

/**
 * Seeded random parameters in tensorLayout order: every *norm.weight is 1 + 0.1 N(0,1) (so norms are near identity
 * but not exactly, catching a missing multiply), every other tensor (weights and biases) is scale * N(0,1).
 * The default scale keeps activations O(1) at these tiny widths so attention and softmax are far from uniform.
 */
export function randomParams(config: EngineConfig, seed: number, scale = 0.3): Float32Array {
  const layout = tensorLayout(config);
  const last = layout[layout.length - 1];
  const out = new Float32Array(last.offset + last.size);
  const normal = gaussian(mulberry32(seed));
  for (const t of layout) {
    const isNorm = t.name.endsWith('norm.weight');
    for (let i = 0; i < t.size; i++) out[t.offset + i] = isNorm ? 1 + 0.1 * normal() : scale * normal();
  }
  return out;
}
