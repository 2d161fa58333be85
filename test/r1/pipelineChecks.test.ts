/**
 * Checks before work: a general_dataset with a wrong question_field, and a prompt template that makes every prompt
 * too long for the model, are reported before the base model's evaluation, naming the recipe field to change.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AhaError } from '../../src/errors.ts';
import { runR1Pipeline } from '../../src/r1/pipeline.ts';
import type { PipelineRecipeInput } from '../../src/r1/pipelineRecipe.ts';
import { stubEval, stubRunners, type StubLog } from './pipelineStubs.ts';
import { EASY_TASK_OPTIONS, freshTinyModel } from './tinyBase.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-r1checks-'));
after(() => rmSync(root, { recursive: true, force: true }));
const base = freshTinyModel(join(root, 'base')); // 128 positions, a character tokenizer
writeFileSync(join(root, 'general.jsonl'), JSON.stringify({ prompt: 'say hi' }) + '\n');
writeFileSync(join(root, 'brevity.ts'), 'export const brevity = (c: string) => (c.length < 10 ? 1 : 0);\n');

function recipe(o: Partial<PipelineRecipeInput> = {}, general: Record<string, unknown> = {}): PipelineRecipeInput {
  return {
    base_model: base,
    task: 'arithmetic',
    task_options: EASY_TASK_OPTIONS,
    task_train_size: 8,
    max_new_tokens: 16,
    eval: { problems: 2, samples: 1 },
    stages: {
      cold_start_sft: {},
      reasoning_rl: { grpo: { max_completion_length: 16 } },
      rejection_sft: {},
      all_scenarios_rl: {
        grpo: { max_completion_length: 16 },
        general_dataset: { path: join(root, 'general.jsonl'), question_field: 'prompt', ...general },
        general_rewards: [{ name: join(root, 'brevity.ts') + '#brevity' }],
      },
    },
    ...o,
  };
}

async function refused(r: PipelineRecipeInput, out: string, pattern: RegExp): Promise<void> {
  const log: StubLog = { calls: [] };
  let evaluations = 0;
  await assert.rejects(
    runR1Pipeline(r, {
      outDir: join(root, out),
      runners: stubRunners(log),
      evaluate: async () => (evaluations++, stubEval(0.5)),
      log: () => {},
    }),
    (e: unknown) => e instanceof AhaError && pattern.test(e.message) && !e.message.includes('\n'),
  );
  assert.equal(evaluations, 0, 'the base model is not evaluated');
  assert.deepEqual(log.calls, [], 'no stage starts');
  assert.equal(existsSync(join(root, out, 'pipeline.json')), false);
}

test('a general_dataset with a wrong question_field is reported before any work, naming the field', async () => {
  await refused(
    recipe({}, { question_field: 'question' }),
    'field',
    /stages\.all_scenarios_rl\.general_dataset: .*general\.jsonl.*no field 'question' \(question_field\); the row has: prompt/,
  );
});

test('a prompt template that makes every prompt too long is reported before any work, naming the field', async () => {
  // 100 characters of template + the question: fits 128 positions, but not with 16 + 32 completion tokens.
  const prompt = '1+1=2 '.repeat(16) + '{question} =';
  await refused(
    recipe({
      prompt,
      stages: { ...recipe().stages, reasoning_rl: { grpo: { max_completion_length: 48 } } },
    }),
    'rl-long',
    /stages\.reasoning_rl: every prompt is too long: the shortest is \d+ tokens, \+ stages\.reasoning_rl\.grpo\.max_completion_length 48 > the model's 128 positions .*shorten prompt/,
  );
  // Longer than the model's positions: even sampling has no room.
  await refused(
    recipe({ prompt: '1+1=2 '.repeat(30) + '{question}' }),
    'sample-long',
    /stages\.cold_start_sft: every prompt is too long: the shortest is \d+ tokens, which fills the model's 128 positions/,
  );
  // The same recipe with a short prompt passes the checks and runs.
  const log: StubLog = { calls: [] };
  const r = await runR1Pipeline(recipe(), {
    outDir: join(root, 'ok'),
    runners: stubRunners(log),
    evaluate: async () => stubEval(0.5),
    log: () => {},
  });
  assert.equal(r.stages.length, 4);
});

test('general prompts too long for stage 4 are reported before any work, even when the reasoning prompts fit', async () => {
  // Before, the check took the shortest prompt of both kinds, and the stage ran without a single general prompt.
  writeFileSync(join(root, 'long-general.jsonl'), JSON.stringify({ prompt: '1+1=2 '.repeat(25) }) + '\n');
  await refused(
    recipe({}, { path: join(root, 'long-general.jsonl') }),
    'general-long',
    /^recipe: stages\.all_scenarios_rl\.general_dataset: every prompt is too long: the shortest is \d+ tokens, \+ stages\.all_scenarios_rl\.grpo\.max_completion_length 16 > the model's 128 positions/,
  );
});
