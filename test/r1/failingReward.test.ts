/**
 * A reward that fails on every call does not let an RL stage end as done: after max_failing_reward_steps such steps
 * the stage fails (one line, resumable), and the reward failures of a stage are counted in its marker and summary.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AhaError } from '../../src/errors.ts';
import { DEFAULT_STAGE_RUNNERS, readStageMarker, runR1Pipeline } from '../../src/r1/pipeline.ts';
import { failingRewardWatch } from '../../src/r1/rlStep.ts';
import type { PipelineRecipeInput } from '../../src/r1/pipelineRecipe.ts';
import type { StageRunner } from '../../src/r1/stage.ts';
import { rewardErrorCounts, type StepMetrics } from '../../src/rl/metrics.ts';
import { stubEval } from './pipelineStubs.ts';
import { buildTinyBase, EASY_TASK_OPTIONS } from './tinyBase.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-r1fail-'));
after(() => rmSync(root, { recursive: true, force: true }));
let base = '';
before(async () => {
  base = await buildTinyBase(join(root, 'base'));
});

test('the watch counts only consecutive steps where the same reward failed on every call', () => {
  const w = failingRewardWatch(2);
  // The flat keys GRPO logs: reward_errors/<name> of reward_calls/<name>.
  const step = (n: number, counts: Record<string, { errors: number; calls: number }> | undefined) =>
    w.step({
      step: n,
      ...Object.fromEntries(
        Object.entries(counts ?? {}).flatMap(([name, c]) => [
          [`reward_errors/${name}`, c.errors],
          [`reward_calls/${name}`, c.calls],
        ]),
      ),
    } as unknown as StepMetrics);
  assert.equal(step(1, { a: { errors: 4, calls: 4 } }), null);
  assert.equal(step(2, { a: { errors: 3, calls: 4 } }), null, 'not every call: the streak restarts');
  assert.equal(step(3, { a: { errors: 4, calls: 4 } }), null);
  assert.equal(step(4, { b: { errors: 4, calls: 4 } }), null, 'another reward');
  assert.equal(step(5, undefined), null);
  assert.equal(step(6, { a: { errors: 2, calls: 2 } }), null);
  assert.match(step(7, { a: { errors: 2, calls: 2 } })!, /reward 'a' failed on every call of 2 consecutive steps/);
});

test('a reward failing on every call fails the RL stage; fixed and resumed, the failures are counted in stage_done.json and summary.json', async () => {
  const out = join(root, 'run');
  const recipe: PipelineRecipeInput = {
    base_model: base,
    task: 'arithmetic',
    task_options: EASY_TASK_OPTIONS,
    task_train_size: 20,
    max_new_tokens: 24,
    eval: { problems: 2, samples: 1, evaluate_base: false },
    stages: {
      reasoning_rl: {
        max_failing_reward_steps: 2,
        grpo: { num_generations: 2, max_completion_length: 16, beta: 0 },
        training: { learning_rate: 1e-3, max_steps: 5, prompts_per_step: 2, save_steps: 1, sample_log_steps: 0 },
      },
    },
  };
  const broken: StageRunner = (ctx) =>
    DEFAULT_STAGE_RUNNERS.reasoning_rl({
      ...ctx,
      data: {
        ...ctx.data,
        verify: () => {
          throw new Error('verifier broken');
        },
      },
    });
  const opts = { outDir: out, evaluate: async () => stubEval(0.5), log: () => {} };
  await assert.rejects(
    runR1Pipeline(recipe, { ...opts, runners: { reasoning_rl: broken } }),
    (e: unknown) =>
      e instanceof AhaError &&
      /stages\.reasoning_rl: reward 'accuracy' failed on every call of 2 consecutive steps .*--resume/.test(
        e.message,
      ) &&
      !e.message.includes('\n'),
  );
  assert.equal(readStageMarker(out, 'reasoning_rl'), null, 'not done');
  const failed = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(failed.stages[0].status, 'failed');
  const metrics = readFileSync(join(out, 'reasoning_rl', 'grpo', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n');
  assert.equal(metrics.length, 2, 'stopped after the second failing step');
  assert.deepEqual(rewardErrorCounts(JSON.parse(metrics[0])), { accuracy: { errors: 4, calls: 4 } });

  const r = await runR1Pipeline(recipe, { ...opts, resume: true });
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['done'],
  );
  const marker = readStageMarker(out, 'reasoning_rl')!;
  // 2 failing steps x 2 prompts x 2 generations, none in the 3 steps after the fix.
  assert.equal(marker.details!.rl_steps, 5);
  assert.equal(marker.details!.reward_errors, 8);
  assert.deepEqual(marker.details!.reward_errors_by_reward, { accuracy: 8 });
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.stages[0].details.reward_errors_by_reward, { accuracy: 8 });
});
