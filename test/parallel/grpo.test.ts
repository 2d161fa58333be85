// Data-parallel GRPO under mpirun (src/parallel/dataParallel.ts): N ranks train the same model as one process with
// the same global batch; a dead, hung or diverged rank ends the job with a clear message; a run resumes at another
// number of ranks. Skipped, with the reason printed, where Open MPI's mpirun or the aha_mpi addon is missing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { assertSameMetrics, maxDiff, metrics, run, safetensorsValues, skipReason as skip, weights } from './mpiRun.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-mpi-grpo-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyModelDir(): string {
  return tinyCharModel(root, { alphabet: '0123456789 abc', seed: 1 }).dir;
}
const modelDir = skip ? '' : tinyModelDir();
const grpo = (ranks: number, out: string, steps: number, opts: { resume?: boolean; env?: object } = {}) =>
  run(ranks, 'grpoRank.ts', [modelDir, out, String(steps), ...(opts.resume ? ['resume'] : [])], opts.env);

test('2 ranks end with the weights and metrics of one process with the same global batch', { skip }, () => {
  const one = join(root, 'one'),
    two = join(root, 'two');
  const a = grpo(1, one, 4);
  assert.equal(a.status, 0, a.output);
  const b = grpo(2, two, 4);
  assert.equal(b.status, 0, b.output);
  // Not bit-exact: the ranks' partial gradients are summed in another order than one process accumulates them,
  // and AdamW's first steps (m / sqrt(v)) amplify that rounding on near-zero gradient coordinates to about
  // 1e-3 x the learning rate, hence the small learning rate of grpoRank.ts.
  const d = maxDiff(weights(join(one, 'final')), weights(join(two, 'final')));
  assert.ok(d <= 1e-6, `weights differ by ${d}`);
  assert.ok(maxDiff(weights(join(one, 'final')), weights(modelDir)) > 1e-3, 'the run trained');
  // Rank 0 alone wrote the run directory: one line per step, with the global values.
  assertSameMetrics(metrics(one), metrics(two));
});

test('an all-reduce in buckets (AHA_ALLREDUCE_BUCKET_MB) sums the same: the same weights bit for bit', { skip }, () => {
  const out = join(root, 'bucketed');
  // 0.01 MiB: 2621 floats per call, so the tiny model's gradients take several calls.
  const b = grpo(2, out, 4, { env: { AHA_ALLREDUCE_BUCKET_MB: '0.01' } });
  assert.equal(b.status, 0, b.output);
  assert.ok(weights(join(out, 'final')).length > 3 * 2621);
  assert.equal(maxDiff(weights(join(root, 'two', 'final')), weights(join(out, 'final'))), 0);
});

test('2 ranks training LoRA adapters end with the adapters of one process', { skip }, () => {
  const one = join(root, 'lora1'),
    two = join(root, 'lora2');
  const env = { AHA_TEST_LORA: '1' };
  const a = grpo(1, one, 3, { env });
  assert.equal(a.status, 0, a.output);
  const b = grpo(2, two, 3, { env });
  assert.equal(b.status, 0, b.output);
  const file = (d: string) => join(d, 'final', 'adapter_model.safetensors');
  const d = maxDiff(safetensorsValues(file(one)), safetensorsValues(file(two)));
  assert.ok(d <= 1e-6, `adapters differ by ${d}`);
  assertSameMetrics(metrics(one), metrics(two));
});

test(
  'a killed rank ends the job within seconds; the run resumes from its checkpoint at other rank counts',
  { skip },
  () => {
    const out = join(root, 'killed');
    const k = grpo(2, out, 6, { env: { AHA_TEST_FAULT: 'kill', AHA_TEST_FAULT_AT: '3' } });
    assert.notEqual(k.status, 0);
    const seconds = (k.ended - Number(readFileSync(out + '.killed', 'utf8'))) / 1000;
    assert.ok(seconds < 30, `the job took ${seconds} s to end after the kill`);
    assert.match(k.output, /rank 1 .*exited on signal 9/s, k.output);
    assert.ok(existsSync(join(out, 'checkpoint-2')), 'the step-2 checkpoint was written');
    // Resume at 1 rank from step 2 to 4, then at 2 ranks from 4 to 6: the same model as 6 uninterrupted steps.
    const r1 = grpo(1, out, 4, { resume: true });
    assert.equal(r1.status, 0, r1.output);
    const r2 = grpo(2, out, 6, { resume: true });
    assert.equal(r2.status, 0, r2.output);
    const ref = join(root, 'ref6');
    const u = grpo(1, ref, 6);
    assert.equal(u.status, 0, u.output);
    const d = maxDiff(weights(join(out, 'final')), weights(join(ref, 'final')));
    assert.ok(d <= 1e-6, `resumed weights differ by ${d}`);
    assertSameMetrics(metrics(out), metrics(ref));
  },
);

test('a hung rank ends the job after AHA_MPI_TIMEOUT with a message naming the wait', { skip }, () => {
  const out = join(root, 'hung');
  const h = grpo(2, out, 6, { env: { AHA_TEST_FAULT: 'hang', AHA_TEST_FAULT_AT: '2', AHA_MPI_TIMEOUT: '3' } });
  assert.notEqual(h.status, 0);
  const seconds = (h.ended - Number(readFileSync(out + '.killed', 'utf8'))) / 1000;
  assert.ok(seconds < 30, `the job took ${seconds} s to end`);
  assert.match(h.output, /rank 0: .* waited \d+ s for the other ranks .*a rank is dead or stuck/, h.output);
});

test('ranks whose weights diverge stop the run at the next checksum', { skip }, () => {
  const out = join(root, 'diverged');
  const p = grpo(2, out, 6, { env: { AHA_TEST_FAULT: 'perturb', AHA_TEST_FAULT_AT: '2' } });
  assert.notEqual(p.status, 0);
  assert.match(p.output, /aha: step 3: the ranks' weights differ/, p.output);
});
