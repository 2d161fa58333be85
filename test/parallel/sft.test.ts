// Data-parallel SFT under mpirun: 2 ranks split each step's micro-batches and end with the weights and metrics of
// one process with the same batch; a run resumes at another number of ranks.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { makeSmallModel, writeArithmeticCorpus } from '../sft/helpers.ts';
import {
  ahaArgs,
  assertSameMetrics,
  launch,
  maxDiff,
  metrics,
  mpiEnv,
  run,
  skipReason as skip,
  weights,
} from './mpiRun.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-mpi-sft-'));
after(() => rmSync(root, { recursive: true, force: true }));
const data = join(root, 'train.jsonl');
const model = skip ? '' : makeSmallModel(root, { seed: 1 }).dir;
if (!skip) writeArithmeticCorpus(data, 80, 11);

test('2-rank SFT ends with the weights and metrics of one process with the same batch', { skip }, () => {
  const one = join(root, 'one'),
    two = join(root, 'two');
  const a = run(1, 'sftRank.ts', [model, data, one, '4']);
  assert.equal(a.status, 0, a.output);
  const b = run(2, 'sftRank.ts', [model, data, two, '4']);
  assert.equal(b.status, 0, b.output);
  const d = maxDiff(weights(join(one, 'final')), weights(join(two, 'final')));
  assert.ok(d <= 1e-6, `weights differ by ${d}`);
  assert.ok(maxDiff(weights(join(one, 'final')), weights(model)) > 1e-3, 'the run trained');
  assertSameMetrics(metrics(one), metrics(two));
});

test('SFT checkpointed at 2 ranks resumes at 1 and at 3', { skip }, () => {
  const out = join(root, 'resumed'),
    ref = join(root, 'ref');
  assert.equal(run(2, 'sftRank.ts', [model, data, out, '2']).status, 0);
  const r1 = run(1, 'sftRank.ts', [model, data, out, '4', 'resume']);
  assert.equal(r1.status, 0, r1.output);
  const r3 = run(3, 'sftRank.ts', [model, data, out, '6', 'resume']);
  assert.equal(r3.status, 0, r3.output);
  assert.equal(run(1, 'sftRank.ts', [model, data, ref, '6']).status, 0);
  const d = maxDiff(weights(join(out, 'final')), weights(join(ref, 'final')));
  assert.ok(d <= 1e-6, `resumed weights differ by ${d}`);
  assertSameMetrics(metrics(out), metrics(ref));
});

test('`mpirun -np 2 aha sft` prints one result line, from rank 0', { skip }, () => {
  const out = join(root, 'cli');
  const c = spawnSync(
    ...launch(
      2,
      ahaArgs([
        'sft',
        '--model',
        model,
        '--data',
        data,
        '--out',
        out,
        '--max-steps',
        '2',
        '--per-device-train-batch-size',
        '2',
        '--gradient-accumulation-steps',
        '2',
      ]),
    ),
    { encoding: 'utf8', env: { ...process.env, ...mpiEnv } },
  );
  assert.equal(c.status, 0, c.stderr);
  const lines = c.stdout.trim().split('\n');
  assert.equal(lines.length, 1, c.stdout);
  assert.equal(JSON.parse(lines[0]).status, 'completed');
});
