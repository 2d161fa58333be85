/**
 * Data-parallel training over MPI: `mpirun -np N aha grpo ...` runs N ranks, each holding the whole model and
 * taking 1/N of every optimizer step's work; gradients are summed with one all-reduce over the engine's gradient
 * buffer between backward and the optimizer step, so every rank takes the same AdamW step. The collectives are the
 * optional aha_mpi addon (native/src/mpi/comm.cpp), built only where Open MPI is installed; without mpirun nothing
 * here loads and aha runs in one process as before.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { worldSize } from '../engine/rankThreads.ts';
import { INTERRUPTED_EXIT_CODE } from '../train/interrupt.ts';

export { configureRankThreads, worldSize } from '../engine/rankThreads.ts';

/** The aha_mpi addon's surface. */
interface MpiAddon {
  init(timeoutSeconds: number): { rank: number; size: number };
  allreduceSumF32(a: Float32Array): void;
  allreduceF64(a: Float64Array, op: 'sum' | 'max' | 'min'): void;
  allgatherBytes(a: Uint8Array): Uint8Array[];
  broadcast(a: Uint8Array | Float32Array, root: number): void;
  barrier(): void;
  abort(code: number, message: string): never;
  finalize(): void;
  wtime(): number;
}

/** One rank's view of the job; `null` from {@link dataParallel} in a one-process run. */
export interface DataParallel {
  rank: number;
  size: number;
  /** Rank 0: the one that writes checkpoints, metrics, samples and reports. */
  writer: boolean;
  /** This rank's contiguous share [lo, hi) of `n` items (the first n % size ranks take one more). */
  share(n: number): [number, number];
  /** Sums the model's gradient buffer across ranks, in place; returns the seconds it took. */
  allreduceGradients(model: Model): number;
  /** Element-wise sum (or max, min) of `values` across ranks. */
  reduce(values: readonly number[], op?: 'sum' | 'max' | 'min'): number[];
  /** Every rank's `value` (JSON-serialisable; typed arrays are not), in rank order. */
  allgather<T>(value: T): T[];
  barrier(): void;
  /**
   * The job-wide view of a rank-local stop signal (a Ctrl-C, a time budget): aborted on every rank at the same
   * point, inside the first {@link reduce}, {@link allgather} or {@link barrier} after any rank's `local` fired. So
   * code that tests `signal.aborted` between collectives takes the same branch on every rank, where testing the
   * local signal would let one rank stop a step before another and leave it waiting in a collective. Every rank
   * must call it at the same point, as with a collective; `dispose` (same point on every rank) stops watching.
   */
  agree(local: AbortSignal): { signal: AbortSignal; dispose(): void };
  /**
   * Stops the job when the ranks' weights differ: a strided sample of the trainable parameters is summed on each
   * rank and the sums' min and max compared (they are equal bit for bit when every rank stepped the same way).
   */
  checkWeights(model: Model, step: number): void;
  /** Ends every rank of the job with `message` on stderr. */
  abort(message: string, code?: number): never;
}

let current: DataParallel | null | undefined;

/** Seconds a collective may wait for the other ranks before the job is aborted (AHA_MPI_TIMEOUT, default 1800). */
function collectiveTimeout(): number {
  const t = Number(process.env.AHA_MPI_TIMEOUT);
  return Number.isFinite(t) && t > 0 ? t : 1800;
}

/** The job's data-parallel context: null in a one-process run; initialises MPI on first use under mpirun. */
export function dataParallel(): DataParallel | null {
  if (current !== undefined) return current;
  if (worldSize() <= 1) return (current = null);
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const path = process.env.AHA_MPI_ADDON || join(root, 'build', 'Release', 'aha_mpi.node');
  if (!existsSync(path))
    throw new AhaError(
      `${worldSize()} ranks asked for, but aha was built without MPI: install libopenmpi-dev and rebuild (npm run build:native)`,
    );
  const mpi = createRequire(import.meta.url)(path) as MpiAddon;
  const { rank, size } = mpi.init(collectiveTimeout());
  // A rank that fails takes the job down (MPI_Abort) rather than leave the others waiting in a collective.
  // An interrupted run (exit 130) ends on every rank at the same step (ranks agree on stopping), so it finalizes.
  process.on('exit', (code) =>
    code === 0 || code === INTERRUPTED_EXIT_CODE
      ? mpi.finalize()
      : mpi.abort(code, `aha: rank ${rank} exited with code ${code}; aborting the job`),
  );
  current = makeContext(mpi, rank, size);
  return current;
}

function makeContext(mpi: MpiAddon, rank: number, size: number): DataParallel {
  // The local signals being agreed on (agree()), in the order every rank registered them.
  const watched: { local: AbortSignal; agreed: AbortController }[] = [];
  const flags = () => watched.map((w) => (w.local.aborted ? 1 : 0));
  // After a collective that carried every rank's flags: a flag raised on any rank aborts its agreed signal here.
  const settle = (any: readonly boolean[]) =>
    watched.forEach((w, i) => {
      if (any[i] && !w.agreed.signal.aborted)
        w.agreed.abort(w.local.aborted ? w.local.reason : new Error('stopped on another rank'));
    });
  const gather = (value: unknown): { v: unknown; f: number[] }[] => {
    const parts = mpi.allgatherBytes(new TextEncoder().encode(JSON.stringify({ v: value, f: flags() })));
    const dec = new TextDecoder();
    const all = parts.map((p) => JSON.parse(dec.decode(p)) as { v: unknown; f: number[] });
    settle(watched.map((_, i) => all.some((a) => a.f[i] === 1)));
    return all;
  };
  const ctx: DataParallel = {
    rank,
    size,
    writer: rank === 0,
    share(n) {
      const base = Math.floor(n / size),
        extra = n % size;
      const lo = rank * base + Math.min(rank, extra);
      return [lo, lo + base + (rank < extra ? 1 : 0)];
    },
    allreduceGradients(model) {
      const t0 = mpi.wtime();
      const bucket = bucketFloats();
      for (const c of model.chunks('grads'))
        for (let o = 0; o < c.data.length; o += bucket)
          mpi.allreduceSumF32(c.data.subarray(o, Math.min(c.data.length, o + bucket)));
      return mpi.wtime() - t0;
    },
    reduce(values, op = 'sum') {
      // The agreed signals' flags ride along: under 'min' negated, so that any raised flag shows as below 0.
      const f = flags();
      const a = Float64Array.from([...values, ...f.map((x) => (op === 'min' ? -x : x))]);
      mpi.allreduceF64(a, op);
      settle(f.map((_, i) => a[values.length + i] !== 0));
      return Array.from(a.subarray(0, values.length));
    },
    allgather<T>(value: T): T[] {
      return gather(value).map((a) => a.v as T);
    },
    barrier() {
      if (watched.length > 0) ctx.reduce([]);
      else mpi.barrier();
    },
    agree(local) {
      const w = { local, agreed: new AbortController() };
      watched.push(w);
      return {
        signal: w.agreed.signal,
        dispose: () => {
          const i = watched.indexOf(w);
          if (i >= 0) watched.splice(i, 1);
        },
      };
    },
    checkWeights(model, step) {
      const sum = weightSample(model);
      const [min, negMax] = ctx.reduce([sum, -sum], 'min');
      if (min !== -negMax || !Number.isFinite(min))
        ctx.abort(
          `aha: step ${step}: the ranks' weights differ (checksums from ${min} to ${-negMax}); the ranks no longer train the same model`,
        );
    },
    abort(message, code = 1) {
      return mpi.abort(code, message);
    },
  };
  return ctx;
}

/** A float64 sum of every 997th trainable parameter: cheap, and any divergence shows in it. */
export function weightSample(model: Model): number {
  let s = 0;
  for (const c of model.chunks(model.trainableBuffer)) {
    const d = c.data;
    for (let i = (997 - (c.offset % 997)) % 997; i < d.length; i += 997) s += d[i];
  }
  return s;
}

/**
 * Floats per all-reduce call over the gradient buffer: AHA_ALLREDUCE_BUCKET_MB (MiB) when set, else the whole
 * buffer in one call (the fewest calls: what a network wants). Measured on 2 ranks of one loaded 2-vCPU machine
 * (README): a 104 MiB buffer took 0.5-0.7 s in one call and 38-69 ms in 1 MiB calls, Open MPI's large-message path
 * over shared memory being the slow one there.
 */
export function bucketFloats(env: NodeJS.ProcessEnv = process.env): number {
  const mb = Number(env.AHA_ALLREDUCE_BUCKET_MB);
  return Number.isFinite(mb) && mb > 0 ? Math.max(1, Math.floor((mb * 2 ** 20) / 4)) : Number.MAX_SAFE_INTEGER;
}

/** Steps between weight checksums across ranks (AHA_CHECK_WEIGHTS_STEPS, default 10). */
export function weightCheckSteps(): number {
  const k = Number(process.env.AHA_CHECK_WEIGHTS_STEPS);
  return Number.isInteger(k) && k > 0 ? k : 10;
}

/** Whether this process writes the run's files: rank 0 of a data-parallel job, or a one-process run. */
export function isWriter(): boolean {
  return dataParallel()?.writer ?? true;
}

/**
 * Runs `write` (a change to the run directory) on the writing rank alone and returns its result on every rank:
 * the ranks meet before it (every rank has read what it reads before the files change) and after it (every rank
 * then sees the change). In a one-process run, just runs it. Every rank must call it at the same point.
 */
export function writeOnce<T>(write: () => T): T {
  const dp = dataParallel();
  if (!dp) return write();
  dp.barrier();
  return dp.allgather(dp.writer ? { v: write() } : null)[0]!.v;
}

/**
 * `fn` of every item, each rank computing its contiguous share and the results gathered in item order on every
 * rank (JSON-serialisable results); in a one-process run, in order on this one.
 */
export async function mapShared<T, R>(items: readonly T[], fn: (item: T, i: number) => R | Promise<R>): Promise<R[]> {
  const dp = dataParallel();
  const [lo, hi] = dp ? dp.share(items.length) : [0, items.length];
  const mine: R[] = [];
  for (let i = lo; i < hi; i++) mine.push(await fn(items[i], i));
  return dp ? (dp.allgather(mine).flat() as R[]) : mine;
}

/**
 * A stop signal every rank agrees on ({@link DataParallel.agree}); the signal itself in a one-process run.
 */
export function agreedSignal(local: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const dp = dataParallel();
  return dp ? dp.agree(local) : { signal: local, dispose: () => {} };
}
