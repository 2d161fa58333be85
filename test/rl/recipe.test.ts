import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadRecipe, parseRecipe, recipeToJson } from '../../src/rl/recipe.ts';
import { buildRewards, accuracyReward } from '../../src/rl/rewardRegistry.ts';
import { defaultGrpoOptions } from '../../src/rl/grpoOptions.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

const minimal = { model: 'm', dataset: { path: 'd.jsonl' }, rewards: [{ name: 'accuracy' }] };

/** Asserts a one-line AhaError that starts with the source and names the field. */
function rejects(raw: unknown, field: string, also?: RegExp) {
  assert.throws(
    () => parseRecipe(raw, 'r.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof AhaError, `expected AhaError, got ${e}`);
      assert.ok(
        e.message.startsWith(`r.yaml: ${field}`),
        `message "${e.message}" should start with "r.yaml: ${field}"`,
      );
      assert.ok(!e.message.includes('\n'), 'one line');
      if (also) assert.match(e.message, also);
      return true;
    },
  );
}

test('defaults: R1-Zero template, TRL GRPO defaults, 8 prompts per step', () => {
  const r = parseRecipe(minimal, 'r.yaml', '/base');
  assert.equal(r.prompt, 'r1-zero');
  assert.deepEqual(r.grpo, defaultGrpoOptions);
  assert.equal(r.training.prompts_per_step, 8);
  assert.equal(r.training.max_steps, 100);
  assert.equal(r.training.ref_model_sync_steps, 0);
  assert.equal(r.reward_timeout_ms, 10_000);
  assert.deepEqual(r.dataset, {
    path: 'd.jsonl',
    question_field: 'question',
    answer_field: 'answer',
    answer_extraction: 'none',
    split: 'train',
  });
  assert.equal(r.baseDir, '/base');
});

test('per_device_train_batch_size counts completions (TRL): prompts = batch / num_generations', () => {
  const r = parseRecipe({ ...minimal, grpo: { num_generations: 16 }, training: { per_device_train_batch_size: 512 } });
  assert.equal(r.training.prompts_per_step, 32);
  rejects(
    { ...minimal, grpo: { num_generations: 16 }, training: { per_device_train_batch_size: 100 } },
    'training.per_device_train_batch_size',
    /multiple of grpo.num_generations 16/,
  );
  rejects(
    { ...minimal, training: { per_device_train_batch_size: 16, prompts_per_step: 2 } },
    'training',
    /give one of prompts_per_step, per_device_train_batch_size/,
  );
});

test('TRL batch names in TRL meanings: per_device_train_batch_size per optimizer step, generation_batch_size per step', () => {
  // R1-Zero as TRL writes it: 32 questions x 16 completions = 512 per rollout, split into 16 optimizer steps of 32.
  const trl = parseRecipe({
    ...minimal,
    grpo: { num_generations: 16 },
    training: { per_device_train_batch_size: 32, steps_per_generation: 16 },
  });
  assert.equal(trl.training.prompts_per_step, 32);
  const gen = parseRecipe({
    ...minimal,
    grpo: { num_generations: 16 },
    training: { generation_batch_size: 512, steps_per_generation: 16 },
  });
  assert.equal(gen.training.prompts_per_step, 32);
  assert.equal(gen.training.sampling_batch_size, 64);
  rejects(
    { ...minimal, grpo: { num_generations: 16 }, training: { generation_batch_size: 100 } },
    'training.generation_batch_size',
    /100 completions per step is not a multiple of grpo.num_generations 16/,
  );
  rejects(
    { ...minimal, training: { generation_batch_size: 64, per_device_train_batch_size: 8 } },
    'training',
    /give one of/,
  );
});

test('top_p and top_k sit in grpo with temperature; the old training spelling still works with a deprecation notice', () => {
  const r = parseRecipe({ ...minimal, grpo: { temperature: 0.9, top_p: 0.95, top_k: 50 } });
  assert.equal(r.grpo.top_p, 0.95);
  assert.equal(r.grpo.top_k, 50);
  assert.equal(r.deprecations, undefined);
  const old = parseRecipe({ ...minimal, training: { top_p: 0.9 } });
  assert.equal(old.grpo.top_p, 0.9);
  assert.equal(old.grpo.top_k, 0);
  assert.match(old.deprecations![0], /training\.top_p is deprecated: write it as grpo\.top_p/);
  rejects({ ...minimal, grpo: { top_p: 0.9 }, training: { top_p: 0.8 } }, 'training.top_p', /also given as grpo.top_p/);
});

test('a wrong or misspelt field is named in a one-line error', () => {
  rejects({ ...minimal, training: { learning_rate: 'fast' } }, 'training.learning_rate', /number/);
  rejects({ ...minimal, training: { learning_rat: 1e-6 } }, 'training', /unknown field 'learning_rat'/);
  rejects({ ...minimal, grpo: { num_generation: 8 } }, 'grpo', /unknown field 'num_generation'/);
  rejects({ ...minimal, grpo: { loss_type: 'ppo' } }, 'grpo.loss_type');
  rejects({ ...minimal, grpo: { num_generations: 1 } }, 'grpo.num_generations');
  rejects({ ...minimal, rewards: [{ name: 'accuracy', wieght: 1 }] }, 'rewards[0]', /unknown field 'wieght'/);
  rejects({ ...minimal, rewards: [] }, 'rewards');
  rejects({ ...minimal, dataset: { path: 'x', question: 'q' } }, 'dataset', /unknown field 'question'/);
  rejects({ ...minimal, dataset: undefined }, 'dataset', /required/);
  rejects({ model: 'm', rewards: [{ name: 'format' }], dataset: { path: 'x' }, extra: 1 }, '', /unknown field 'extra'/);
  rejects({ ...minimal, model: undefined }, 'model');
  rejects({ ...minimal, prompt: 'no placeholder' }, 'prompt', /\{question\}/);
  rejects({ ...minimal, system_prompt: 'be brief' }, 'system_prompt', /chat/);
  rejects({ ...minimal, grpo: { reward_weights: [1, 2] } }, 'grpo.reward_weights', /2 weights for 1 rewards/);
  rejects({ ...minimal, dataset: { path: 'x', answer_field: null } }, 'rewards[0]', /reference answers/);
  rejects({ ...minimal, training: { steps_per_generation: 9 } }, 'training.steps_per_generation');
  rejects({ ...minimal, dataset: [{ q: 'no question' }] }, 'dataset[0]', /question/);
});

test('YAML and JSON files; relative paths resolve against the recipe directory; bad YAML names the line', () => {
  const dir = mkdtempSync(join(root, 'aha-recipe-'));
  const yamlPath = join(dir, 'r.yaml');
  writeFileSync(
    yamlPath,
    [
      'model: models/base',
      'dataset: { path: data/train.jsonl, answer_extraction: gsm8k }',
      'prompt: "Q: {question}\\nA:"',
      'rewards:',
      '  - { name: accuracy, weight: 2 }',
      '  - name: format',
      '    options: { mode: think }',
      'grpo: { num_generations: 4, beta: 0.001, scale_rewards: false }',
      'training: { learning_rate: 3.0e-6, max_steps: 10, prompts_per_step: 2, ref_model_sync_steps: 400 }',
    ].join('\n'),
  );
  const { recipe, text } = loadRecipe(yamlPath);
  assert.ok(text.startsWith('model:'));
  assert.equal(recipe.baseDir, dir);
  assert.equal(recipe.grpo.scale_rewards, 'none');
  assert.equal(recipe.training.learning_rate, 3e-6);
  assert.equal(recipe.prompt, 'Q: {question}\nA:');
  assert.deepEqual(JSON.parse(recipeToJson(recipe)).rewards[0], { name: 'accuracy', weight: 2 });

  const jsonPath = join(dir, 'r.json');
  writeFileSync(jsonPath, JSON.stringify({ ...minimal, training: { max_steps: 'ten' } }));
  assert.throws(() => loadRecipe(jsonPath), /r\.json: training\.max_steps: /);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'model: m\ndataset: [unclosed\n');
  assert.throws(
    () => loadRecipe(bad),
    (e: unknown) => e instanceof AhaError && /bad\.yaml:\d+: invalid YAML/.test(e.message),
  );
  assert.throws(() => loadRecipe(join(dir, 'missing.yaml')), /recipe not found/);
});

test('in-memory recipes: examples array and reward functions; recipe.json replaces them by placeholders', () => {
  const check = (a: string, ex: { answer: string }) => a === ex.answer;
  const r = parseRecipe({
    model: 'm',
    dataset: [{ question: '1+1', answer: '2' }],
    rewards: [
      { name: 'accuracy', check },
      { name: 'mine', fn: () => 1, weight: 0.5 },
    ],
  });
  assert.equal((r.dataset as unknown[]).length, 1);
  const json = JSON.parse(recipeToJson(r));
  assert.equal(json.dataset, '<1 in-memory examples>');
  assert.equal(json.rewards[0].check, '<function>');
  assert.equal(json.rewards[1].fn, '<function>');
  rejects({ ...minimal, rewards: [{ name: 'format', check }] }, 'rewards[0].check');
  rejects({ ...minimal, rewards: [{ name: 'x', fn: 'not a function' }] }, 'rewards[0].fn', /function/);
});

test('reward registry: built-ins by name with weights, options validated, modules by path#export', async () => {
  const dir = mkdtempSync(join(root, 'aha-rewards-'));
  writeFileSync(
    join(dir, 'my_rewards.ts'),
    [
      'export const shortness = (c: string) => 1 / (1 + c.length);',
      'export function containing(o: { text: string }) { return (c: string) => (c.includes(o.text) ? 1 : 0); }',
      'export const notAFunction = 3;',
    ].join('\n'),
  );
  const grpo = { ...defaultGrpoOptions, max_completion_length: 100 };
  const ctx = { grpo, baseDir: dir, source: 'r.yaml' };
  const rs = await buildRewards(
    [
      { name: 'accuracy', weight: 2 },
      { name: 'format' },
      { name: 'overlong' },
      { name: './my_rewards.ts#shortness', weight: 0.1 },
      { name: './my_rewards.ts#containing', options: { text: 'wait' }, label: 'has_wait' },
    ],
    ctx,
  );
  assert.deepEqual(
    rs.map((r) => [r.name, r.weight, r.kind]),
    [
      ['accuracy', 2, 'accuracy'],
      ['format', 1, 'format'],
      ['overlong', 1, 'overlong'],
      ['shortness', 0.1, 'custom'],
      ['has_wait', 1, 'custom'],
    ],
  );
  const ex = { question: 'q', answer: '12' };
  const good = '<think> 5+7 </think> <answer>12</answer>';
  assert.equal(await rs[0].fn(good, ex, { prompt: '' }), 1);
  assert.equal(await rs[0].fn('<think> x </think> <answer>13</answer>', ex, { prompt: '' }), 0);
  assert.equal(await rs[0].fn('no answer at all', ex, { prompt: '' }), 0);
  assert.equal(await rs[1].fn(good, ex, { prompt: '' }), 1);
  // Overlong: free up to 100 - 20 tokens, then linear down to -1 at 100 (DAPO, cache = a fifth).
  assert.equal(await rs[2].fn('', ex, { prompt: '', completionIds: new Array(80).fill(1) }), 0);
  assert.equal(await rs[2].fn('', ex, { prompt: '', completionIds: new Array(90).fill(1) }), -0.5);
  assert.equal(await rs[3].fn('abc', ex, { prompt: '' }), 0.25);
  assert.equal(await rs[4].fn('hmm, wait', ex, { prompt: '' }), 1);

  // grpo.reward_weights overrides the per-reward weights.
  const w = await buildRewards([{ name: 'accuracy' }, { name: 'format' }], {
    ...ctx,
    grpo: { ...grpo, reward_weights: [0.5, 3] },
  });
  assert.deepEqual(
    w.map((r) => r.weight),
    [0.5, 3],
  );

  const bad = async (spec: object, re: RegExp) =>
    assert.rejects(
      buildRewards([spec as never], ctx),
      (e: unknown) => e instanceof AhaError && re.test(e.message) && !e.message.includes('\n'),
    );
  await bad({ name: 'acuracy' }, /r\.yaml: rewards\[0\]\.name: unknown reward 'acuracy'/);
  await bad({ name: 'format', options: { mode: 'loose' } }, /rewards\[0\]\.options\.mode/);
  await bad({ name: 'format', options: { strict: true } }, /rewards\[0\]\.options: unknown option 'strict'/);
  await bad({ name: 'length' }, /rewards\[0\]\.options\.target_length/);
  await bad({ name: './nope.ts#x' }, /reward module \.\/nope\.ts not found/);
  await bad({ name: './my_rewards.ts#missing' }, /no function export 'missing'.*shortness/);
  await bad({ name: './my_rewards.ts#notAFunction' }, /no function export 'notAFunction'/);
  await assert.rejects(
    buildRewards([{ name: 'format' }, { name: 'format' }], ctx),
    /two rewards are logged as 'format'/,
  );
});

test('accuracy reward: mathEqual against the reference, or a task check on the extracted answer', async () => {
  const math = accuracyReward();
  assert.equal(await math('<answer>\\frac{1}{2}</answer>', { answer: '0.5' }, { prompt: '' }), 1);
  assert.equal(await math('so the result is \\boxed{4}', { answer: '4' }, { prompt: '' }), 1);
  assert.equal(
    await math('the answer is 4', { answer: '4' }, { prompt: '' }),
    0,
    'default strategies: tag or box only',
  );
  await assert.rejects(
    Promise.resolve().then(() => math('<answer>4</answer>', { question: 'q' }, { prompt: '' })),
    /no reference answer/,
  );
  const seen: string[] = [];
  const withCheck = accuracyReward({ check: (a, ex) => (seen.push(a), a === ex.answer) });
  assert.equal(await withCheck('<think>..</think> <answer> 16 </answer>', { answer: '16' }, { prompt: '' }), 1);
  assert.deepEqual(seen, ['16']);
  const lastNumber = accuracyReward({ strategies: ['lastNumber'] });
  assert.equal(await lastNumber('the answer is 4', { answer: '4' }, { prompt: '' }), 1);
});

test('a recipe file is named in reward errors: grpoTrain on a loaded recipe, and where each reward is declared', async () => {
  const dir = mkdtempSync(join(root, 'aha-source-'));
  const path = join(dir, 'mine.yaml');
  writeFileSync(path, 'model: m\ndataset: { path: d.jsonl }\nrewards: [{ name: format }, { name: ./nope.ts#f }]\n');
  const { recipe } = loadRecipe(path);
  const { grpoTrain } = await import('../../src/rl/grpoTrainer.ts');
  await assert.rejects(grpoTrain(recipe), (e: unknown) => {
    assert.ok(e instanceof AhaError);
    assert.ok(e.message.startsWith(`${path}: rewards[1].name: reward module ./nope.ts not found`), e.message);
    return true;
  });
  const rs = await buildRewards(recipe.rewards.slice(0, 1), {
    grpo: recipe.grpo,
    baseDir: dir,
    source: recipe.source,
  });
  assert.equal(rs[0].where, `${path}: rewards[0]`);
});
