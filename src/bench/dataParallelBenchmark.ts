/**
 * One data-parallel training step, timed (`aha bench` under mpirun, `aha bench --ranks N`): each rank takes its
 * share of the global batch, then the gradients are summed with one all-reduce over the engine's gradient buffer
 * (4 bytes x trainable parameters) and every rank takes the AdamW step. The README's scaling model takes its compute
 * time and the all-reduce's bandwidth from here.
 */
import { engineInfo, type Model } from '../engine/model.ts';
import { mulberry32 } from '../data/rng.ts';
import type { DataParallel } from '../parallel/dataParallel.ts';

/** What one data-parallel step took: the slowest rank's times (the step waits for it). */
export interface DataParallelStepResult {
  ranks: number;
  threads_per_rank: number;
  /** Trainable parameters: the all-reduce sums 4 bytes of gradient for each. */
  trained_params: number;
  batch: number;
  seq: number;
  /** Median of the timed steps: forward, backward, all-reduce, AdamW. */
  step_s: number;
  /** Forward and backward of the rank's share (the slowest rank's). */
  compute_s: number;
  /** The gradient all-reduce inside the step (0 at one rank). */
  allreduce_s: number;
  /** The all-reduce alone, median of a few, over the same buffer. */
  allreduce_alone_s: number;
  allreduce_bytes: number;
  /** bytes / time: what one rank's buffer moves at. */
  allreduce_algbw_gb_s: number;
  /** bytes x 2(N-1)/N / time: what each rank's link carries in a ring all-reduce (comparable across N). */
  allreduce_busbw_gb_s: number;
  tokens_per_s: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Times `steps` training steps (after one warm-up) of `batch` random sequences of `seq` tokens shared out over the
 * ranks of `dp` (null: one process, no all-reduce), then the all-reduce alone. Every rank must call it.
 */
export async function benchmarkDataParallelStep(
  model: Model,
  o: { batch: number; seq: number; steps: number; seed?: number },
  dp: DataParallel | null,
): Promise<DataParallelStepResult> {
  const V = model.config.vocabSize;
  const r = mulberry32(o.seed ?? 7);
  const batch = Array.from({ length: o.batch }, () => Array.from({ length: o.seq }, () => Math.floor(r() * V)));
  const [lo, hi] = dp ? dp.share(o.batch) : [0, o.batch];
  const mine = batch.slice(lo, hi);
  const dl = mine.map((s) => new Float32Array(s.length - 1).fill(-1 / (o.batch * o.seq)));
  const slowest = (xs: number[]) => (dp ? dp.reduce(xs, 'max') : xs);
  const step = async () => {
    dp?.barrier();
    const t0 = performance.now();
    model.zeroGrad();
    if (mine.length > 0) {
      await model.forward(mine, { train: true });
      await model.backward(dl);
    }
    const t1 = performance.now();
    const ar = dp ? dp.allreduceGradients(model) : 0;
    await model.step({ lr: 1e-5, maxGradNorm: 1, weightDecay: 0 });
    const [total, compute, allreduce] = slowest([(performance.now() - t0) / 1000, (t1 - t0) / 1000, ar]);
    return { total, compute, allreduce };
  };
  await step();
  const runs = [];
  for (let i = 0; i < Math.max(1, o.steps); i++) runs.push(await step());
  const alone: number[] = [];
  for (let i = 0; dp && i < 5; i++) {
    dp.barrier();
    alone.push(slowest([dp.allreduceGradients(model)])[0]);
  }
  const size = dp?.size ?? 1;
  const bytes = 4 * model.numTrainable;
  const arAlone = alone.length > 0 ? median(alone) : 0;
  const stepS = median(runs.map((x) => x.total));
  return {
    ranks: size,
    threads_per_rank: engineInfo().ompThreads,
    trained_params: model.numTrainable,
    batch: o.batch,
    seq: o.seq,
    step_s: stepS,
    compute_s: median(runs.map((x) => x.compute)),
    allreduce_s: median(runs.map((x) => x.allreduce)),
    allreduce_alone_s: arAlone,
    allreduce_bytes: bytes,
    allreduce_algbw_gb_s: arAlone > 0 ? bytes / arAlone / 1e9 : 0,
    allreduce_busbw_gb_s: arAlone > 0 ? (bytes * 2 * (size - 1)) / size / arAlone / 1e9 : 0,
    tokens_per_s: (o.batch * o.seq) / stepS,
  };
}

/** The lines `aha bench` prints for data-parallel steps at one or more rank counts. */
export function formatDataParallelTable(results: readonly DataParallelStepResult[], load?: string): string[] {
  const r0 = results[0];
  const lines = [
    `data-parallel    ${(r0.trained_params / 1e6).toFixed(1)}M trained parameters, global batch ${r0.batch} x ${r0.seq} tokens, all-reduce of ${(r0.allreduce_bytes / 2 ** 20).toFixed(1)} MiB${load ? `, ${load}` : ''}`,
    '  ranks  threads/rank  step s  compute s  all-reduce s  tokens/s  all-reduce alone  bus GB/s',
  ];
  for (const r of results)
    lines.push(
      `  ${String(r.ranks).padEnd(7)}${String(r.threads_per_rank).padEnd(14)}${r.step_s.toFixed(3).padEnd(8)}${r.compute_s.toFixed(3).padEnd(11)}${r.allreduce_s.toFixed(4).padEnd(14)}${r.tokens_per_s.toFixed(1).padEnd(10)}${r.ranks > 1 ? `${(r.allreduce_alone_s * 1000).toFixed(1)} ms`.padEnd(18) + r.allreduce_busbw_gb_s.toFixed(2) : '-'}`,
    );
  return lines;
}
