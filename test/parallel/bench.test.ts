// `aha bench --ranks 2`: one data-parallel training step at 1 and 2 ranks, and the gradient all-reduce's time and
// bandwidth over the trained parameters' 4 bytes each.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import type { DataParallelStepResult } from '../../src/bench/dataParallelBenchmark.ts';
import { mpiEnv, repo, skipReason as skip } from './mpiRun.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-mpi-bench-'));
after(() => rmSync(root, { recursive: true, force: true }));

test(
  'aha bench --ranks 2 times a step at 1 and 2 ranks and the all-reduce of 4 bytes per trained parameter',
  { skip },
  () => {
    const config = join(tinyCharModel(root, { alphabet: 'abc', seed: 1 }).dir, 'config.json');
    const r = spawnSync(
      'node',
      [
        join(repo, 'bin', 'aha.js'),
        'bench',
        '--config',
        config,
        '--batch',
        '3',
        '--seq',
        '16',
        '--steps',
        '1',
        '--ranks',
        '2',
        '--json',
      ],
      { cwd: repo, env: { ...process.env, ...mpiEnv }, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^data-parallel .* global batch 3 x 16 tokens, all-reduce of .* MiB, load average/);
    const { results } = JSON.parse(lines[lines.length - 1]) as { results: DataParallelStepResult[] };
    assert.deepEqual(
      results.map((x) => x.ranks),
      [1, 2],
    );
    const [one, two] = results;
    assert.equal(one.allreduce_s, 0, 'one rank: no all-reduce');
    assert.equal(two.trained_params, one.trained_params);
    assert.equal(two.allreduce_bytes, 4 * two.trained_params);
    assert.ok(two.allreduce_alone_s > 0 && two.allreduce_s > 0);
    // Bus bandwidth of a ring over 2 ranks: bytes x 2(2-1)/2 / time, the algorithm bandwidth itself.
    assert.ok(Math.abs(two.allreduce_busbw_gb_s - two.allreduce_bytes / two.allreduce_alone_s / 1e9) < 1e-9);
    assert.ok(Math.abs(two.tokens_per_s - (3 * 16) / two.step_s) < 1e-9);
    // The table's rows: 1 and 2 ranks.
    assert.match(r.stdout, /^ {2}1 {6}\d+ .*\n {2}2 {6}1 /m);
  },
);
