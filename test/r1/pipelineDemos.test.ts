/** Smoke tests of `aha demo --pipeline r1|distill` at the 'smoke' scale, on the tiny base and its easy task. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { r1DemoRecipe, runDistillDemo, runR1PipelineDemo } from '../../src/demo/pipelineDemos.ts';
import { parsePipelineRecipe, STAGE_NAMES } from '../../src/r1/pipelineRecipe.ts';
import { AhaError } from '../../src/errors.ts';
import { buildTinyBase, EASY_TASK } from './tinyBase.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-demos-'));
after(() => rmSync(root, { recursive: true, force: true }));
let base = '';
before(async () => {
  base = await buildTinyBase(join(root, 'base'));
});

test("the demo's full-size recipe is valid and bounded by wall-clock", () => {
  const r = parsePipelineRecipe(r1DemoRecipe({ base: 'models/demo-base', minutes: 6 }), 'demo');
  assert.deepEqual(Object.keys(r.stages), [...STAGE_NAMES]);
  const budget =
    (r.stages.cold_start_sft!.max_minutes ?? 0) +
    (r.stages.reasoning_rl!.max_minutes ?? 0) +
    (r.stages.rejection_sft!.max_minutes ?? 0) +
    (r.stages.all_scenarios_rl!.max_minutes ?? 0);
  assert.ok(Math.abs(budget - 6) < 1e-9, `stage budgets add up to the demo's minutes (${budget})`);
});

test('r1 pipeline demo (smoke scale): every stage runs and is printed', async () => {
  const printed: string[] = [];
  const r = await runR1PipelineDemo({
    out: join(root, 'r1'),
    base,
    scale: 'smoke',
    taskOptions: EASY_TASK,
    evalProblems: 4,
    log: () => {},
    print: (l) => void printed.push(l),
  });
  assert.equal(r.interrupted, false);
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['done', 'done', 'done', 'done'],
  );
  for (const name of ['base', ...STAGE_NAMES])
    assert.ok(
      printed.some((l) => l.includes(name) && /pass@1 .*format .*language .*mean length/.test(l)),
      name,
    );
  await assert.rejects(
    runR1PipelineDemo({ out: join(root, 'none'), base: join(root, 'no-base'), log: () => {} }),
    (e: unknown) => e instanceof AhaError && /no base model/.test(e.message),
  );
});

test('distillation demo (smoke scale): teacher traces into a fresh tiny student, against GRPO alone for the same time', async () => {
  const printed: string[] = [];
  const r = await runDistillDemo({
    out: join(root, 'distill'),
    base,
    teacher: join(root, 'no-rl-checkpoint'),
    scale: 'smoke',
    taskOptions: EASY_TASK,
    log: () => {},
    print: (l) => void printed.push(l),
  });
  assert.equal(r.teacher, base, 'no RL checkpoint: the base teaches');
  assert.equal(r.report.status, 'complete');
  assert.ok(r.report.evals.student_before && r.report.evals.student_after && r.report.evals.teacher);
  assert.equal(r.interrupted, false);
  assert.ok(r.grpoSteps >= 0 && r.grpoOnly!.problems === 2);
  assert.ok(existsSync(join(root, 'distill', 'student-init', 'config.json')));
  for (const name of ['teacher', 'student (fresh)', 'student distilled', 'student GRPO only'])
    assert.ok(
      printed.some((l) => l.includes(name)),
      name,
    );
});
