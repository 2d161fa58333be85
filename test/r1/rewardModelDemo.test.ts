/** Smoke test of `aha demo --pipeline r1 --reward-model`: the last stage mixes in general prompts a reward model scores. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runR1PipelineDemo } from '../../src/demo/pipelineDemos.ts';
import { buildTinyBase, EASY_TASK } from './tinyBase.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-rmdemo-'));
after(() => rmSync(root, { recursive: true, force: true }));
let base = '';
before(async () => {
  base = await buildTinyBase(join(root, 'base'));
});

function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, name));
    else if (e.name === name) out.push(p);
  }
  return out;
}

test('r1 pipeline demo with a reward model (smoke scale): the last stage scores general prompts with it', async () => {
  const out = join(root, 'r1');
  const r = await runR1PipelineDemo({
    out,
    base,
    scale: 'smoke',
    taskOptions: EASY_TASK,
    evalProblems: 4,
    rewardModel: true,
    log: () => {},
    print: () => {},
  });
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['done', 'done', 'done', 'done'],
  );
  assert.ok(existsSync(join(out, 'reward-model', 'config.json')));
  const logs = findFiles(join(out), 'metrics.jsonl').filter((p) => p.includes('all_scenarios'));
  assert.ok(logs.length > 0, 'the last stage logged metrics');
  const rows = logs.flatMap((p) =>
    readFileSync(p, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, number>),
  );
  assert.ok(rows.length > 0);
  for (const row of rows) {
    assert.ok('rewards/reward_model/mean' in row, "the reward model is one of the stage's rewards");
    assert.equal(row.reward_errors, 0, 'the reward model never failed');
  }
});
