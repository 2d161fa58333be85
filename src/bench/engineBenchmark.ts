import { Model, engineInfo } from '../engine/model.ts';
import type { EngineConfig } from '../engine/types.ts';
import { mulberry32 } from '../data/rng.ts';
import { loadAddon } from '../engine/native.ts';

export interface EngineBenchOptions {
  batch: number;
  seq: number;
  /** Training steps with gradient checkpointing (Model.setGradientCheckpointing). */
  gradientCheckpointing?: boolean;
  /** Prompts sampled at once; 0 skips the sampling benchmark. */
  genBatch: number;
  promptLen: number;
  /** Completions per distinct prompt, as GRPO samples them (1: every prompt distinct). */
  group?: number;
  newTokens: number;
  /** Timed training steps (after one warm-up step). */
  steps: number;
  /** The sampling KV cache's element type (SampleOptions.kvCacheDtype); f32 by default. */
  kvCacheDtype?: 'f32' | 'bf16' | 'f16';
  seed?: number;
}

export interface EngineBenchResult {
  train_tokens_per_s: number;
  train_step_s: number;
  train_gflops: number;
  generate_tokens_per_s: number;
  generate_s: number;
  /** sgemm probe at this model's largest training product (tokens x intermediate x hidden). */
  sgemm_gflops: number;
  /** train_gflops / sgemm_gflops */
  train_fraction_of_peak: number;
  fma_peak_gflops: number;
  train_fraction_of_fma_peak: number;
  peak_rss_mb: number;
  /** Peak RSS after the training steps, before sampling (whose KV cache and packed weights come on top). */
  train_peak_rss_mb: number;
  gradient_checkpointing: boolean;
  params: number;
  /** Parameters trained (the LoRA adapters, or every weight). */
  trained_params: number;
  weights: string;
  lora_r: number;
  blas_kernel: string;
  threads: number;
}

/**
 * Matmul FLOPs of one training step (forward + backward = 3x forward), attention included: the model's FLOPs, not
 * counting what gradient checkpointing or the head's chunked backward recompute.
 */
export function trainStepFlops(c: EngineConfig, batch: number, seq: number): number {
  const C = c.hiddenSize,
    qd = c.numHeads * c.headDim,
    kd = c.numKvHeads * c.headDim,
    I = c.intermediateSize;
  const perTokenLinear = 2 * (C * qd * 2 + C * kd * 2 + 3 * C * I) * c.numLayers + 2 * C * c.vocabSize;
  // causal attention as computed: query blocks of 128 against keys up to the block end, QK^T and PV
  let attn = 0;
  for (let r0 = 0; r0 < seq; r0 += 128) {
    const r1 = Math.min(seq, r0 + 128);
    attn += 2 * 2 * (r1 - r0) * r1 * c.headDim * c.numHeads;
  }
  return 3 * batch * (seq * perTokenLinear + attn * c.numLayers);
}

/**
 * GFLOP/s of one sgemm through the engine's BLAS at the shape of a linear layer's forward, C[M,N] = A[M,K] B[N,K]^T:
 * the ceiling a training step can approach, since its time is mostly such products.
 */
export async function sgemmProbe(M = 1024, N = 1024, K = 1024, reps = 5): Promise<number> {
  return loadAddon().probe('sgemm', M, N, K, reps);
}

/** The cores' float32 fused multiply-add peak in GFLOP/s (all threads, the widest vectors compiled in). */
export async function fmaPeak(): Promise<number> {
  return loadAddon().probe('fma');
}

/** Times a full training step (forward, backward, clip, AdamW) and batched KV-cache sampling. */
export async function benchmarkEngine(
  model: Model,
  o: EngineBenchOptions,
  onProgress?: (msg: string) => void,
): Promise<EngineBenchResult> {
  const r = mulberry32(o.seed ?? 1);
  const V = model.config.vocabSize;
  const tokens = (n: number) => Array.from({ length: n }, () => Math.floor(r() * V));
  const batch = Array.from({ length: o.batch }, () => tokens(o.seq));
  const dl = batch.map((s) => new Float32Array(s.length - 1).fill(-1 / (o.batch * o.seq)));
  model.setGradientCheckpointing(o.gradientCheckpointing ?? false);
  const trainStep = async () => {
    model.zeroGrad();
    await model.forward(batch, { train: true });
    await model.backward(dl);
    await model.step({ lr: 1e-5, maxGradNorm: 1.0, weightDecay: 0.0 });
  };
  const times: number[] = [];
  if (o.batch > 0) {
    onProgress?.(o.steps > 0 ? 'warm-up training step' : 'training step (timed: --steps 0)');
    const w0 = performance.now();
    await trainStep();
    if (o.steps === 0) times.push((performance.now() - w0) / 1000);
  }
  for (let s = 0; o.batch > 0 && s < o.steps; s++) {
    const t0 = performance.now();
    await trainStep();
    times.push((performance.now() - t0) / 1000);
    onProgress?.(`training step ${s + 1}/${o.steps}: ${times[times.length - 1].toFixed(2)} s`);
  }
  times.sort((a, b) => a - b);
  const stepS = times.length ? times[Math.floor(times.length / 2)] : 0;
  const trainPeakRss = process.resourceUsage().maxRSS / 1024;
  const group = Math.max(1, o.group ?? 1);
  let genS = 0;
  if (o.genBatch > 0) {
    const distinct = Array.from({ length: Math.ceil(o.genBatch / group) }, () => tokens(o.promptLen));
    const prompts = Array.from({ length: o.genBatch }, (_, i) => distinct[Math.floor(i / group)]);
    onProgress?.('sampling');
    // Warm-up as the PyTorch reference does it: the full batch, a few tokens, untimed (allocations, thread pools).
    const kvCacheDtype = o.kvCacheDtype ?? 'f32';
    await model.generate(prompts, { maxNewTokens: Math.min(4, o.newTokens), seed: 1, kvCacheDtype });
    const g0 = performance.now();
    await model.generate(prompts, { maxNewTokens: o.newTokens, temperature: 1, seed: 0, kvCacheDtype });
    genS = (performance.now() - g0) / 1000;
  }
  onProgress?.('sgemm probe');
  const c = model.config;
  const peak = await sgemmProbe(Math.min(2048, Math.max(256, o.batch * o.seq)), c.intermediateSize, c.hiddenSize);
  const fma = await fmaPeak();
  const flops = trainStepFlops(model.config, o.batch, o.seq);
  const info = engineInfo();
  return {
    train_tokens_per_s: stepS ? (o.batch * o.seq) / stepS : 0,
    train_step_s: stepS,
    train_gflops: stepS ? flops / stepS / 1e9 : 0,
    generate_tokens_per_s: genS > 0 ? (o.genBatch * o.newTokens) / genS : 0,
    generate_s: genS,
    sgemm_gflops: peak,
    train_fraction_of_peak: stepS ? flops / stepS / 1e9 / peak : 0,
    fma_peak_gflops: fma,
    train_fraction_of_fma_peak: stepS ? flops / stepS / 1e9 / fma : 0,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    train_peak_rss_mb: trainPeakRss,
    gradient_checkpointing: o.gradientCheckpointing ?? false,
    params: model.numParams,
    trained_params: model.numTrainable,
    weights: model.weightsDtype,
    lora_r: model.lora?.r ?? 0,
    blas_kernel: info.coreName,
    threads: info.ompThreads,
  };
}
