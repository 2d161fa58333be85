/**
 * The OpenMP waiting policy, old against new: libgomp's default (idle threads spin for milliseconds; what the engine
 * had before src/engine/ompWaitPolicy.ts) against the engine's default now (OMP_WAIT_POLICY=PASSIVE with a short
 * GOMP_SPINCOUNT). Each measurement is a fresh child process (libgomp reads the policy once, when it loads) that
 * times a batched sampling call and a training step on a 'tiny' model, alternating the two policies round by round,
 * quiet and with a competing CPU-bound process (a busy loop), as on a shared machine.
 *
 * Run: `node --import tsx bench/waitPolicy.ts [--rounds 3] [--reps 3]`. Prints medians and old/new time ratios
 * (above 1: the new policy is faster).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

type Policy = 'old' | 'new';
type Load = 'quiet' | 'busy';
interface Timing {
  sample_s: number;
  train_s: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function child(modelDir: string, reps: number): Promise<void> {
  const { loadPretrained } = await import('../src/model/pretrained.ts');
  const { model } = loadPretrained(modelDir);
  const V = model.config.vocabSize;
  let x = 1;
  const tok = () => (x = (x * 48271) % 2147483647) % V;
  const prompts = Array.from({ length: 16 }, () => Array.from({ length: 16 }, tok));
  const batch = Array.from({ length: 8 }, () => Array.from({ length: 96 }, tok));
  const dl = batch.map((s) => new Float32Array(s.length - 1).fill(-1 / (8 * 96)));
  const sample = () => model.generate(prompts, { maxNewTokens: 48, temperature: 1, seed: 0 });
  const train = async () => {
    model.zeroGrad();
    await model.forward(batch, { train: true });
    await model.backward(dl);
    await model.step({ lr: 1e-5, maxGradNorm: 1, weightDecay: 0 });
  };
  await sample();
  await train();
  const time = async (f: () => Promise<unknown>) => {
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await f();
      ts.push((performance.now() - t0) / 1000);
    }
    return median(ts);
  };
  const r: Timing = { sample_s: await time(sample), train_s: await time(train) };
  process.stdout.write(JSON.stringify(r) + '\n');
}

function measure(modelDir: string, policy: Policy, reps: number): Timing {
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  delete env.GOMP_SPINCOUNT;
  env.AHA_OMP_WAIT_POLICY = policy === 'old' ? 'keep' : 'passive';
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', process.argv[1], '--child', modelDir, '--reps', String(reps)],
    { encoding: 'utf8', env },
  );
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Timing;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      reps: { type: 'string', default: '3' },
    },
  });
  const reps = Number(values.reps);
  if (values.child !== undefined) return child(values.child, reps);
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(tmpdir(), 'aha-waitpolicy-'));
  try {
    const modelDir = join(dir, 'tiny');
    const init = spawnSync(
      process.execPath,
      ['bin/aha.js', 'init-model', '--config', 'tiny', '--out', modelDir, '--seed', '1'],
      { encoding: 'utf8' },
    );
    if (init.status !== 0) throw new Error(init.stderr);
    const results: Record<`${Policy}/${Load}`, Timing[]> = {
      'old/quiet': [],
      'new/quiet': [],
      'old/busy': [],
      'new/busy': [],
    };
    for (let round = 0; round < rounds; round++) {
      for (const load of ['quiet', 'busy'] as Load[]) {
        let hog: ChildProcess | undefined;
        if (load === 'busy') hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
        try {
          // Alternate which policy goes first, so drift in the machine's load hits both alike.
          const order: Policy[] = round % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
          for (const policy of order) {
            const t = measure(modelDir, policy, reps);
            results[`${policy}/${load}`].push(t);
            process.stderr.write(
              `round ${round + 1} ${load} ${policy}: sample ${t.sample_s.toFixed(3)} s, train ${t.train_s.toFixed(3)} s\n`,
            );
          }
        } finally {
          hog?.kill('SIGKILL');
        }
      }
    }
    console.log('| load | step | old (libgomp default) s | new (passive) s | old/new |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const load of ['quiet', 'busy'] as Load[]) {
      for (const step of ['sample_s', 'train_s'] as const) {
        const o = median(results[`old/${load}`].map((t) => t[step]));
        const n = median(results[`new/${load}`].map((t) => t[step]));
        console.log(
          `| ${load} | ${step === 'sample_s' ? 'sampling 16x48 tokens' : 'train step 8x96'} | ${o.toFixed(3)} | ${n.toFixed(3)} | ${(o / n).toFixed(2)} |`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
