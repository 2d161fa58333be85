/**
 * Decode speed of float32 against 16-bit weights, and of one engine build against another: tokens per second of the
 * decode steps alone (a run of N new tokens minus a run of 1, so the prefill and the first token drop out), batch B,
 * random weights in a real shape. Each measurement is a child process (one engine build is loaded per process), and
 * the children are interleaved (round 1: every build x weights, round 2: ..., so drift on a shared machine hits every
 * column alike); each column reports its median and every round's value, and each column's median is divided by the
 * first column's.
 *
 * Run: `node --import tsx bench/decodeSpeed.ts [--shape qwen2-27m] [--batch 1] [--new-tokens 128] [--rounds 3]
 * [--weights f32,bf16] [--engine before=/path/to/aha_engine.node ...]`. Without --engine it measures the build in
 * build/Release; with it, each named build (AHA_ENGINE) in turn, e.g. a checkout of an earlier commit.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'qwen2-27m' },
    batch: { type: 'string', default: '1' },
    'new-tokens': { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    weights: { type: 'string', default: 'f32,bf16' },
    engine: { type: 'string', multiple: true },
    child: { type: 'boolean', default: false },
  },
});
const B = Number(values.batch),
  N = Number(values['new-tokens']);
if (!(B >= 1) || !(N >= 2)) throw new Error('--batch must be >= 1 and --new-tokens >= 2');

if (values.child) {
  // One measurement: two untimed warm-ups, then runs of 1 and N new tokens, twice, keeping the faster pair.
  const { randomModel } = await import('../src/bench/randomModel.ts');
  const model = randomModel(values.shape, { weights: values.weights as 'f32' | 'bf16' | 'f16', seed: 1 });
  const prompts = Array.from({ length: B }, (_, i) => [(i * 977) % 1000, (i * 131 + 7) % 1000]);
  const run = async (n: number) => {
    const t = performance.now();
    await model.generate(prompts, { maxNewTokens: n, temperature: 1, seed: 0, stopTokenIds: [] });
    return performance.now() - t;
  };
  await run(2);
  let best = 0;
  for (let i = 0; i < 2; i++) {
    const one = await run(1);
    const many = await run(N);
    best = Math.max(best, (B * (N - 1)) / ((many - one) / 1000));
  }
  // Whether the kernel gave the weights huge pages (transparent huge pages are granted on request, not promised).
  const huge = /AnonHugePages:\s+(\d+)/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  console.log(JSON.stringify({ tokensPerS: best, hugePagesMB: huge ? Number(huge[1]) / 1024 : 0 }));
  process.exit(0);
}

const builds = (values.engine ?? ['current=']).map((e) => {
  const eq = e.indexOf('=');
  if (eq < 1) throw new Error(`--engine ${e}: expected NAME=PATH`);
  return { name: e.slice(0, eq), path: e.slice(eq + 1) };
});
const weights = values.weights.split(',');
const columns = builds.flatMap((b) => weights.map((w) => ({ ...b, weights: w, runs: [] as number[], huge: 0 })));
const self = fileURLToPath(import.meta.url);
for (let r = 0; r < Number(values.rounds); r++) {
  for (const c of columns) {
    const env = { ...process.env };
    if (c.path) env.AHA_ENGINE = c.path;
    else delete env.AHA_ENGINE;
    const args = ['--import', 'tsx', self, '--child', '--shape', values.shape, '--batch', String(B)];
    args.push('--new-tokens', String(N), '--weights', c.weights);
    const p = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`${c.name} ${c.weights}: ${p.stderr.trim().split('\n').pop()}`);
    const m = JSON.parse(p.stdout.trim().split('\n').pop()!) as { tokensPerS: number; hugePagesMB: number };
    c.runs.push(m.tokensPerS);
    c.huge = m.hugePagesMB;
  }
}
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
const base = median(columns[0].runs);
console.log(`${values.shape}, batch ${B}, ${N} new tokens, decode steps only; ${values.rounds} interleaved rounds`);
for (const c of columns) {
  const m = median(c.runs);
  const runs = c.runs.map((x) => x.toFixed(1)).join(', ');
  const label = `${c.name} ${c.weights}`.padEnd(20);
  console.log(
    `${label} ${m.toFixed(1).padStart(7)} tok/s  ${(m / base).toFixed(2)}x  (${runs}; ${c.huge} MB in huge pages)`,
  );
}
