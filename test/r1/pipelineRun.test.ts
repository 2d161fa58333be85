/**
 * The four stages for real (engine, SFT, GRPO, sampling) on a tiny model with tiny budgets: what each stage
 * writes, what it starts from, and a run stopped inside reasoning RL that resumes from its GRPO checkpoint.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { DEFAULT_STAGE_RUNNERS, readStageMarker, runR1Pipeline } from '../../src/r1/pipeline.ts';
import type { StageRunner } from '../../src/r1/stage.ts';
import type { PipelineRecipeInput } from '../../src/r1/pipelineRecipe.ts';
import { buildTinyBase, EASY_TASK_OPTIONS } from './tinyBase.ts';
import { rewardNames } from '../../src/rl/metrics.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-r1run-'));
after(() => rmSync(root, { recursive: true, force: true }));
let base = '';
before(async () => {
  base = await buildTinyBase(join(root, 'base'));
});

const sft = {
  learning_rate: 1e-3,
  max_steps: 3,
  per_device_train_batch_size: 4,
  save_steps: 1,
  logging_steps: 1,
  save_total_limit: 2,
};
const rl = (steps: number) => ({
  grpo: { num_generations: 2, max_completion_length: 24, beta: 0 },
  training: { learning_rate: 1e-3, max_steps: steps, prompts_per_step: 2, save_steps: 1, sample_log_steps: 0 },
});

function recipe(extra: Partial<PipelineRecipeInput['stages']> = {}): PipelineRecipeInput {
  return {
    base_model: base,
    task: 'arithmetic',
    task_options: EASY_TASK_OPTIONS,
    task_train_size: 40,
    max_new_tokens: 24,
    eval: { problems: 6, samples: 1 },
    stages: {
      cold_start_sft: { prompts: 12, samples_per_prompt: 2, temperature: 0.6, sft },
      reasoning_rl: rl(3),
      rejection_sft: {
        prompts: 12,
        samples_per_prompt: 2,
        max_per_prompt: 2,
        temperature: 0.6,
        sft,
        non_reasoning_data: join(root, 'chat.jsonl'),
        non_reasoning_ratio: 0.5,
      },
      all_scenarios_rl: {
        ...rl(2),
        // Every group of every step in samples.jsonl: which prompts each step drew.
        training: { ...rl(2).training, sample_log_steps: 1, num_samples_logged: 8 },
        general_dataset: { path: join(root, 'general.jsonl') },
        general_rewards: [{ name: join(root, 'brevity.ts') + '#brevity', weight: 1 }],
        general_prompts_per_step: 1,
      },
      ...extra,
    },
  };
}

test('all four stages: cold-start data, RL with three rewards, rejection sampling + SFT of the base, all-scenario RL; stopped inside RL, resumed', async () => {
  // One non-reasoning line: fewer than the ratio wants (a shortfall, reported).
  writeFileSync(
    join(root, 'chat.jsonl'),
    JSON.stringify({ prompt: 'User: hi. Assistant:', completion: ' hello.' }) + '\n',
  );
  writeFileSync(
    join(root, 'general.jsonl'),
    ['say hi', 'say bye'].map((q) => JSON.stringify({ question: q })).join('\n') + '\n',
  );
  writeFileSync(
    join(root, 'brevity.ts'),
    'export const brevity = (c: string, ex: { kind?: string }) => { if (ex.kind !== "general") throw new Error("scored a reasoning row"); return c.length < 10 ? 1 : 0; };\n',
  );
  const out = join(root, 'run');
  const lines: string[] = [];
  const log = (l: string) => void lines.push(l);

  // Stop the run inside reasoning_rl: the accuracy reward's verifier aborts while step 2 is being scored.
  const ac = new AbortController();
  let verifications = 0;
  const stopInRl: StageRunner = (ctx) =>
    DEFAULT_STAGE_RUNNERS.reasoning_rl({
      ...ctx,
      signal: ac.signal,
      data: {
        ...ctx.data,
        verify: (c, p) => {
          if (++verifications === 5) ac.abort();
          return ctx.data.verify(c, p);
        },
      },
    });
  const first = await runR1Pipeline(recipe(), {
    outDir: out,
    signal: ac.signal,
    log,
    runners: { reasoning_rl: stopInRl },
  });
  assert.equal(first.interrupted, true);
  assert.deepEqual(
    first.stages.map((s) => s.status),
    ['done', 'interrupted', 'not_run', 'not_run'],
  );
  const rlDir = join(out, 'reasoning_rl', 'grpo');
  assert.ok(existsSync(join(rlDir, 'checkpoint-1')), 'step 1 was saved');
  assert.equal(readStageMarker(out, 'reasoning_rl'), null);

  // Cold start: sampled from the base, verified, rewritten, filtered, then SFT of the base.
  const cs = JSON.parse(readFileSync(join(out, 'cold_start_sft', 'data_report.json'), 'utf8'));
  assert.equal(cs.counts.samples, 24);
  assert.ok(cs.counts.kept > 0 && cs.counts.incorrect > 0, JSON.stringify(cs.counts));
  const coldLine = JSON.parse(readFileSync(join(out, 'cold_start_sft', 'data.jsonl'), 'utf8').split('\n')[0]);
  assert.match(coldLine.completion, /^ <think>\n[\s\S]+\n<\/think>\nThe answer is \d+\.$/);
  assert.equal(
    JSON.parse(readFileSync(join(out, 'cold_start_sft', 'sft', 'config.json'), 'utf8')).model,
    resolve(base),
  );
  const csMarker = readStageMarker(out, 'cold_start_sft')!;
  assert.equal(csMarker.checkpoint, join('cold_start_sft', 'sft', 'final'));
  const csDoneAt = statSync(join(out, 'cold_start_sft', 'stage_done.json')).mtimeMs;

  // Resume: cold start untouched, RL continues from its checkpoint to step 3, then the rest.
  const r = await runR1Pipeline(recipe(), { outDir: out, resume: true, log });
  assert.equal(r.interrupted, false);
  assert.deepEqual(
    r.stages.map((s) => [s.status, s.resumed === true]),
    [
      ['done', true],
      ['done', false],
      ['done', false],
      ['done', false],
    ],
  );
  assert.equal(statSync(join(out, 'cold_start_sft', 'stage_done.json')).mtimeMs, csDoneAt);
  const metrics = readFileSync(join(rlDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1, 2, 3],
    'the abandoned step 2 is redone once',
  );
  assert.deepEqual(rewardNames(metrics[0]), ['accuracy', 'format', 'language']);
  assert.equal(
    JSON.parse(readFileSync(join(rlDir, 'recipe.json'), 'utf8')).model,
    resolve(out, 'cold_start_sft', 'sft', 'final'),
  );

  // Rejection sampling from the RL checkpoint, SFT from the base, non-reasoning lines mixed in.
  const rej = JSON.parse(readFileSync(join(out, 'rejection_sft', 'report.json'), 'utf8'));
  assert.equal(rej.checkpoint, resolve(out, 'reasoning_rl', 'grpo', 'final'));
  assert.equal(rej.counts.samples, 24);
  assert.equal(rej.prompt_ids.length, 12);
  assert.ok(rej.counts.kept > 0);
  assert.equal(rej.counts.non_reasoning_wanted, rej.counts.kept); // a share of 0.5: as many as the reasoning lines
  assert.equal(rej.counts.non_reasoning, 1);
  // The shortfall is in the report, the log and the stage's marker.
  const short = rej.counts.non_reasoning_wanted - 1;
  assert.ok(short > 0, `kept ${rej.counts.kept}: a shortfall`);
  assert.equal(rej.warnings.length, 1);
  assert.match(
    rej.warnings[0],
    /^non-reasoning lines: \d+ wanted for a share of 0\.5 next to \d+ reasoning lines, but .*chat\.jsonl has 1: all used/,
  );
  assert.ok(lines.includes(`rejection_sft: warning: ${rej.warnings[0]}`));
  const rejDetails = readStageMarker(out, 'rejection_sft')!.details!;
  assert.deepEqual(
    [
      rejDetails.non_reasoning,
      rejDetails.non_reasoning_wanted,
      rejDetails.non_reasoning_shortfall,
      rejDetails.warnings,
    ],
    [1, rej.counts.non_reasoning_wanted, short, rej.warnings],
  );
  assert.equal(JSON.parse(readFileSync(join(out, 'rejection_sft', 'sft', 'config.json'), 'utf8')).model, resolve(base));

  // Stage 4: reasoning rows get rule rewards, general rows the module reward only (it throws on reasoning rows).
  const allMetrics = readFileSync(join(out, 'all_scenarios_rl', 'grpo', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(rewardNames(allMetrics[0]), ['accuracy', 'format', 'language', 'brevity']);
  assert.ok(
    allMetrics.every((m) => m.reward_errors === 0),
    'the module reward never saw a reasoning row',
  );
  assert.equal(
    JSON.parse(readFileSync(join(out, 'all_scenarios_rl', 'grpo', 'recipe.json'), 'utf8')).model,
    resolve(out, 'rejection_sft', 'sft', 'final'),
  );
  // general_prompts_per_step: 1 of the 2 prompts of each step is general, and the two steps use both general prompts.
  const groups = readFileSync(join(out, 'all_scenarios_rl', 'grpo', 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; prompt: string });
  const generalOf = (step: number) =>
    groups.filter((g) => g.step === step && /say (hi|bye)/.test(g.prompt)).map((g) => g.prompt);
  assert.deepEqual(
    groups.map((g) => g.step),
    [1, 1, 2, 2],
  );
  assert.equal(generalOf(1).length, 1);
  assert.equal(generalOf(2).length, 1);
  assert.deepEqual([...generalOf(1), ...generalOf(2)].sort(), [
    'User: say bye. Assistant:',
    'User: say hi. Assistant:',
  ]);
  const allDetails = readStageMarker(out, 'all_scenarios_rl')!.details!;
  assert.deepEqual([allDetails.general_prompts, allDetails.general_prompts_per_step], [2, 1]);

  // Every stage evaluated on the same held-out problems.
  for (const s of r.stages) {
    const e = s.eval!;
    assert.equal(e.problems, 6);
    for (const v of [e.pass_at_1, e.format_rate]) assert.ok(v >= 0 && v <= 1);
    assert.ok(e.mean_length! > 0);
  }
  assert.ok(r.base && r.base.format_rate > 0.5, 'the tiny base follows the R1-Zero format');
  assert.ok(lines.some((l) => /r1: cold_start_sft already finished/.test(l)));
});
