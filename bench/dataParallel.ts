// Data-parallel training on this machine: one training step (forward, backward, gradient all-reduce, AdamW) at 1
// and 2 ranks over the same global batch, and the all-reduce alone at several sizes.
//   node --import tsx bench/dataParallel.ts [--config qwen2-27m] [--batch 8] [--seq 128] [--steps 3]
// It launches itself under `mpirun -np 1` and `-np 2` (cores shared out: OMP_NUM_THREADS = cores / ranks) and
// prints one table. The README's scaling model (communication per step = 4 bytes x parameters x 2(N-1)/N) takes
// its compute time from here.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomModel } from '../src/bench/randomModel.ts';
import { mulberry32 } from '../src/data/rng.ts';
import { dataParallel, worldSize, type DataParallel } from '../src/parallel/dataParallel.ts';

const { values: o } = parseArgs({
  options: {
    config: { type: 'string', default: 'qwen2-27m' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' },
  },
});

interface RankResult {
  ranks: number;
  threads: string;
  params: number;
  stepSeconds: number;
  computeSeconds: number;
  allreduceSeconds: number;
  /** All-reduce alone: [floats, seconds]. */
  sizes: [number, number][];
}

async function rankMain(): Promise<void> {
  // One rank: no MPI context (aha does not start one), so no all-reduce either.
  const dp: DataParallel = dataParallel() ?? {
    rank: 0,
    size: 1,
    writer: true,
    share: (n) => [0, n],
    allreduceGradients: () => 0,
    reduce: (v) => [...v],
    allgather: (v) => [v],
    barrier: () => {},
    agree: (s) => ({ signal: s, dispose: () => {} }),
    checkWeights: () => {},
    abort: (m) => {
      throw new Error(m);
    },
  };
  const model = randomModel(o.config!, { memory: { training: true, batchTokens: Number(o.batch) * Number(o.seq) } });
  const V = model.config.vocabSize,
    B = Number(o.batch),
    L = Number(o.seq);
  const r = mulberry32(7);
  const batch = Array.from({ length: B }, () => Array.from({ length: L }, () => Math.floor(r() * V)));
  const [lo, hi] = dp.share(B);
  const mine = batch.slice(lo, hi);
  const dl = mine.map((s) => new Float32Array(s.length - 1).fill(-1 / (B * L)));
  const step = async () => {
    dp.barrier();
    const t0 = performance.now();
    model.zeroGrad();
    if (mine.length > 0) {
      await model.forward(mine, { train: true });
      await model.backward(dl);
    }
    const t1 = performance.now();
    const ar = dp.allreduceGradients(model);
    await model.step({ lr: 1e-5, maxGradNorm: 1, weightDecay: 0 });
    // The slowest rank sets the step's time.
    const [total, compute] = dp.reduce([(performance.now() - t0) / 1000, (t1 - t0) / 1000], 'max');
    return { total, compute, ar };
  };
  await step(); // warm-up
  const runs = [];
  for (let i = 0; i < Number(o.steps); i++) runs.push(await step());
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const sizes: [number, number][] = [];
  for (const n of [1 << 20, 1 << 24, 1 << 27]) {
    const a = new Float32Array(n).fill(1);
    dp.barrier();
    const t0 = performance.now();
    for (let k = 0; k < 3; k++) dp.allreduceGradients({ chunks: () => [{ offset: 0, data: a }] } as never);
    sizes.push([n, dp.reduce([(performance.now() - t0) / 3000], 'max')[0]]);
  }
  if (dp.writer) {
    const res: RankResult = {
      ranks: dp.size,
      threads: process.env.OMP_NUM_THREADS ?? '?',
      params: model.numTrainable,
      stepSeconds: med(runs.map((x) => x.total)),
      computeSeconds: med(runs.map((x) => x.compute)),
      allreduceSeconds: med(runs.map((x) => x.ar)),
      sizes,
    };
    console.log('RESULT ' + JSON.stringify(res));
  }
}

function driver(): void {
  const cores = availableParallelism();
  const results: RankResult[] = [];
  for (const n of [1, 2]) {
    const r = spawnSync(
      'mpirun',
      [
        '-np',
        String(n),
        '--oversubscribe',
        '--bind-to',
        'none',
        'node',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        ...process.argv.slice(2),
      ],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          OMPI_ALLOW_RUN_AS_ROOT: '1',
          OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
          OMP_NUM_THREADS: String(Math.max(1, Math.floor(cores / n))),
          AHA_BENCH_RANK: '1',
        },
      },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`mpirun -np ${n} failed:\n${r.stdout}\n${r.stderr}`);
    results.push(JSON.parse(line.slice(7)) as RankResult);
  }
  console.log(
    `${o.config}, ${results[0].params / 1e6}M parameters, global batch ${o.batch} x ${o.seq} tokens, ${cores} cores`,
  );
  console.log('ranks  threads/rank  step s  compute s  all-reduce s  tokens/s');
  for (const r of results)
    console.log(
      `${String(r.ranks).padEnd(7)}${r.threads.padEnd(14)}${r.stepSeconds.toFixed(3).padEnd(8)}${r.computeSeconds.toFixed(3).padEnd(11)}${r.allreduceSeconds.toFixed(3).padEnd(14)}${Math.round((Number(o.batch) * Number(o.seq)) / r.stepSeconds)}`,
    );
  console.log('all-reduce alone at 2 ranks (bus bandwidth = 4 bytes x n x 2(N-1)/N / time):');
  for (const [n, s] of results[1].sizes)
    console.log(
      `  ${((n * 4) / 2 ** 20).toFixed(0).padStart(5)} MiB  ${(s * 1000).toFixed(1).padStart(8)} ms  ${((n * 4) / s / 1e9).toFixed(2)} GB/s`,
    );
}

if (worldSize() > 1 || process.env.AHA_BENCH_RANK) await rankMain();
else driver();
