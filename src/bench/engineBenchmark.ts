import { Model, engineInfo } from '../engine/model.ts';
import type { EngineConfig } from '../engine/types.ts';
import { mulberry32 } from '../data/rng.ts';

export interface EngineBenchOptions {
  batch: number;
  seq: number;
  genBatch: number;
  promptLen: number;
  newTokens: number;
  /** Timed training steps (after one warm-up step). */
  steps: number;
  seed?: number;
}

export interface EngineBenchResult {
  train_tokens_per_s: number;
  train_step_s: number;
  train_gflops: number;
  generate_tokens_per_s: number;
  generate_s: number;
  sgemm_gflops: number;
  train_fraction_of_peak: number;
  peak_rss_mb: number;
  params: number;
  blas_kernel: string;
  threads: number;
}

/** Matmul FLOPs of one training step (forward + backward = 3x forward), attention included. */
export function trainStepFlops(c: EngineConfig, batch: number, seq: number): number {
  const C = c.hiddenSize, qd = c.numHeads * c.headDim, kd = c.numKvHeads * c.headDim, I = c.intermediateSize;
  const perTokenLinear = 2 * (C * qd * 2 + C * kd * 2 + 3 * C * I) * c.numLayers + 2 * C * c.vocabSize;
  // causal attention as computed: query blocks of 128 against keys up to the block end, QK^T and PV
  let attn = 0;
  for (let r0 = 0; r0 < seq; r0 += 128) {
    const r1 = Math.min(seq, r0 + 128);
    attn += 2 * 2 * (r1 - r0) * r1 * c.headDim * c.numHeads;
  }
  return 3 * batch * (seq * perTokenLinear + attn * c.numLayers);
}


/** Times a square sgemm through the engine's own BLAS (a [n,n] x [n,n]^T linear layer), in GFLOP/s. */
export async function sgemmProbe(n = 1024, reps = 3): Promise<number> {
  // A one-layer model whose MLP is n x n is the cheapest way to reach the engine's sgemm from here without a
  // separate entry point; instead we time the linear layers of a forward pass and subtract nothing: report the
  // best of a few runs of a pure matmul-dominated forward.
  const cfg: EngineConfig = {
    vocabSize: 8, hiddenSize: n, intermediateSize: n, numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: n,
    rmsNormEps: 1e-6, ropeInvFreq: new Float32Array(n / 2), ropeAttentionScale: 1, tieWordEmbeddings: true,
    qkvBias: false, oBias: false, qkNorm: false, maxPositionEmbeddings: n,
  };
  const m = new Model(cfg);
  m.params.fill(0.01);
  const ids = Array.from({ length: n }, (_, i) => i % 8);
  // forward matmuls: q,k,v,o (4 n^3) + gate, up, down (3 n^3), each 2n^3 flops
  const flops = 7 * 2 * n * n * n;
  await m.forward([ids]);
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await m.forward([ids]);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return flops / best / 1e9;
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
  const trainStep = async () => {
    model.zeroGrad();
    await model.forward(batch, { train: true });
    await model.backward(dl);
    await model.step({ lr: 1e-5, maxGradNorm: 1.0, weightDecay: 0.0 });
  };
  onProgress?.('warm-up training step');
  await trainStep();
  const times: number[] = [];
  for (let s = 0; s < o.steps; s++) {
    const t0 = performance.now();
    await trainStep();
    times.push((performance.now() - t0) / 1000);
    onProgress?.(`training step ${s + 1}/${o.steps}: ${times[times.length - 1].toFixed(2)} s`);
  }
  times.sort((a, b) => a - b);
  const stepS = times[Math.floor(times.length / 2)];
  const prompts = Array.from({ length: o.genBatch }, () => tokens(o.promptLen));
  onProgress?.('sampling');
  await model.generate(prompts.slice(0, 2), { maxNewTokens: 2, seed: 0 });
  const g0 = performance.now();
  await model.generate(prompts, { maxNewTokens: o.newTokens, temperature: 1, seed: 0 });
  const genS = (performance.now() - g0) / 1000;
  onProgress?.('sgemm probe');
  const peak = await sgemmProbe();
  const flops = trainStepFlops(model.config, o.batch, o.seq);
  const info = engineInfo();
  return {
    train_tokens_per_s: (o.batch * o.seq) / stepS,
    train_step_s: stepS,
    train_gflops: flops / stepS / 1e9,
    generate_tokens_per_s: (o.genBatch * o.newTokens) / genS,
    generate_s: genS,
    sgemm_gflops: peak,
    train_fraction_of_peak: flops / stepS / 1e9 / peak,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    params: model.numParams,
    blas_kernel: info.coreName,
    threads: info.ompThreads,
  };
}
