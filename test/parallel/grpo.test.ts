// Data-parallel GRPO under mpirun (src/parallel/dataParallel.ts): N ranks train the same model as one process with
// the same global batch; a dead rank ends the job; a run resumes at another number of ranks. Skipped, with the
// reason printed, where Open MPI's mpirun or the aha_mpi addon is missing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { initModel } from '../../src/model/initModel.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const hasMpirun = spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status === 0;
const hasAddon = existsSync(join(repo, 'build', 'Release', 'aha_mpi.node'));
const skip = !hasMpirun
  ? 'mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)'
  : !hasAddon
    ? 'aha built without MPI (install libopenmpi-dev, then npm run build:native)'
    : false;
if (skip) console.log(`# skipping data-parallel tests: ${skip}`);

const root = mkdtempSync(join(tmpdir(), 'aha-mpi-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyModelDir(): string {
  const cfg = join(root, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
    }),
  );
  const out = join(root, 'model');
  initModel({ config: cfg, tokenizer: 'chars', alphabet: '0123456789 abc', out, seed: 1 });
  return out;
}
const modelDir = skip ? '' : tinyModelDir();

const env = {
  ...process.env,
  OMPI_ALLOW_RUN_AS_ROOT: '1',
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
  OMP_NUM_THREADS: '1',
  AHA_CHECK_WEIGHTS_STEPS: '1',
};

/** Runs test/parallel/grpoRank.ts in `ranks` processes (mpirun) or in this one's child (ranks 1, no mpirun). */
function run(ranks: number, out: string, steps: number, extra: { resume?: boolean; env?: object } = {}) {
  const script = ['--import', 'tsx', join(repo, 'test', 'parallel', 'grpoRank.ts'), modelDir, out, String(steps)];
  if (extra.resume) script.push('resume');
  const [cmd, args] =
    ranks === 1
      ? ['node', script]
      : ['mpirun', ['-np', String(ranks), '--oversubscribe', '--bind-to', 'none', 'node', ...script]];
  const t0 = Date.now();
  const r = spawnSync(cmd, args as string[], { cwd: repo, env: { ...env, ...extra.env }, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr + r.stdout, ended: Date.now(), seconds: (Date.now() - t0) / 1000 };
}

function weights(dir: string): Float32Array {
  const md = loadModelDir(dir);
  const n = md.layout.reduce((a, t) => a + t.size, 0);
  const out = new Float32Array(n);
  md.loadParams((t, start, length) => out.subarray(t.offset + start, t.offset + start + length));
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** metrics.jsonl without the wall-clock fields. */
function metrics(out: string): Record<string, number>[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !/^(time|tokens_per_second)\//.test(k))));
}

function assertSameMetrics(a: Record<string, number>[], b: Record<string, number>[]): void {
  assert.equal(a.length, b.length);
  a.forEach((m, i) => {
    assert.deepEqual(Object.keys(m).sort(), Object.keys(b[i]).sort());
    for (const k of Object.keys(m)) {
      const x = m[k],
        y = b[i][k];
      assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x)), `step ${i + 1} ${k}: ${x} vs ${y}`);
    }
  });
}

test('2 ranks end with the weights and metrics of one process with the same global batch', { skip }, () => {
  const one = join(root, 'one'),
    two = join(root, 'two');
  const a = run(1, one, 4);
  assert.equal(a.status, 0, a.stderr);
  const b = run(2, two, 4);
  assert.equal(b.status, 0, b.stderr);
  // Not bit-exact: the ranks' partial gradients are summed in another order than one process accumulates them,
  // and AdamW's first steps (m / sqrt(v)) amplify that rounding on near-zero gradient coordinates to about
  // 1e-3 x the learning rate, hence the small learning rate of grpoRank.ts.
  const d = maxDiff(weights(join(one, 'final')), weights(join(two, 'final')));
  assert.ok(d <= 1e-6, `weights differ by ${d}`);
  assert.ok(maxDiff(weights(join(one, 'final')), weights(modelDir)) > 1e-3, 'the run trained');
  assertSameMetrics(metrics(one), metrics(two));
  // Rank 0 alone wrote the run directory: one line per step.
  assert.equal(metrics(two).length, 4);
});

test(
  'a killed rank ends the job within seconds; the run resumes from its checkpoint at another rank count',
  { skip },
  () => {
    const out = join(root, 'killed');
    const k = run(2, out, 6, { env: { AHA_TEST_KILL_AT: '3', AHA_TEST_KILL_RANK: '1' } });
    assert.notEqual(k.status, 0);
    const killedAt = Number(readFileSync(out + '.killed', 'utf8'));
    const seconds = (k.ended - killedAt) / 1000;
    assert.ok(seconds < 30, `the job took ${seconds} s to end after the kill`);
    assert.match(k.stderr, /signal 9|Killed/, k.stderr);
    assert.ok(existsSync(join(out, 'checkpoint-2')), 'the step-2 checkpoint was written');
    // Resume at 1 rank from step 2 to 4, then at 2 ranks from 4 to 6: the same model as 6 uninterrupted steps.
    const r1 = run(1, out, 4, { resume: true });
    assert.equal(r1.status, 0, r1.stderr);
    const r2 = run(2, out, 6, { resume: true });
    assert.equal(r2.status, 0, r2.stderr);
    const ref = join(root, 'ref6');
    const u = run(1, ref, 6);
    assert.equal(u.status, 0, u.stderr);
    const d = maxDiff(weights(join(out, 'final')), weights(join(ref, 'final')));
    assert.ok(d <= 1e-6, `resumed weights differ by ${d}`);
    assertSameMetrics(metrics(out), metrics(ref));
  },
);
