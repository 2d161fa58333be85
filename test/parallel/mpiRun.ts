// What the data-parallel tests share: whether they can run here, launching a script under mpirun, and comparing
// the runs' weights and metrics.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';

export const repo = resolve(import.meta.dirname, '..', '..');
const hasMpirun = spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status === 0;
const hasAddon = existsSync(join(repo, 'build', 'Release', 'aha_mpi.node'));

/** Why the tests cannot run here (printed), or false. */
export const skipReason: string | false = !hasMpirun
  ? 'mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)'
  : !hasAddon
    ? 'aha built without MPI (install libopenmpi-dev, then npm run build:native)'
    : false;
if (skipReason) console.log(`# skipping data-parallel tests: ${skipReason}`);

/** What the tests add to the environment of mpirun. */
export const mpiEnv = {
  // Open MPI refuses root without these (CI runs as root).
  OMPI_ALLOW_RUN_AS_ROOT: '1',
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
  OMP_NUM_THREADS: '1',
  AHA_CHECK_WEIGHTS_STEPS: '1',
};
const env = { ...process.env, ...mpiEnv };

/** The command and arguments that run `node NODEARGS` in `ranks` processes under mpirun (ranks 1: one plain process). */
export function launch(ranks: number, nodeArgs: string[]): [string, string[]] {
  return ranks === 1
    ? ['node', nodeArgs]
    : ['mpirun', ['-np', String(ranks), '--oversubscribe', '--bind-to', 'none', 'node', ...nodeArgs]];
}

/** The node arguments that run `aha ARGS` from this checkout. */
export const ahaArgs = (args: string[]) => [join(repo, 'bin', 'aha.js'), ...args];

/** Runs `script args` in `ranks` processes under mpirun (ranks 1: one plain process). */
export function run(ranks: number, script: string, args: string[], extraEnv: object = {}) {
  const [cmd, argv] = launch(ranks, ['--import', 'tsx', join(repo, 'test', 'parallel', script), ...args]);
  const r = spawnSync(cmd, argv, { cwd: repo, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  return { status: r.status, output: r.stderr + r.stdout, ended: Date.now() };
}

/** A model directory's float32 weights, in layout order. */
export function weights(dir: string): Float32Array {
  const md = loadModelDir(dir);
  const out = new Float32Array(md.layout.reduce((a, t) => a + t.size, 0));
  md.loadParams((t, start, length) => out.subarray(t.offset + start, t.offset + start + length));
  return out;
}

/** The float32 tensors of a .safetensors file, concatenated in name order (a LoRA run's adapters). */
export function safetensorsValues(path: string): Float32Array {
  const h = readSafetensorsHeader(path);
  const bytes = readFileSync(path);
  const names = [...h.tensors.keys()].sort();
  const parts = names.map((n) => {
    const [b, e] = h.tensors.get(n)!.dataOffsets;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset + h.dataStart + b, bytes.byteOffset + h.dataStart + e));
  });
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** metrics.jsonl without the wall-clock fields. */
export function metrics(out: string): Record<string, number>[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !/^(time\/|tokens_per_second)/.test(k))));
}

/** Same records, values equal to float32 rounding of the summation order (1e-5 relative). */
export function assertSameMetrics(a: Record<string, number>[], b: Record<string, number>[]): void {
  assert.equal(a.length, b.length);
  a.forEach((m, i) => {
    assert.deepEqual(Object.keys(m).sort(), Object.keys(b[i]).sort());
    for (const k of Object.keys(m)) {
      const x = m[k],
        y = b[i][k];
      assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x)), `record ${i + 1} ${k}: ${x} vs ${y}`);
    }
  });
}
