/**
 * `--set path=value`: values read as YAML scalars (or flow YAML), paths checked against the recipe's schema with
 * one-line errors, applied before validation (so a bad value is reported as the recipe's own error, with the
 * --set that gave it), and the resume rules of each command unchanged.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AhaError } from '../../src/errors.ts';
import { applySetOverrides, parseSetArgs } from '../../src/config/overrides.ts';
import { loadGrpoRecipe, loadR1Recipe, recipeTextWithSets, sftConfigLayer } from '../../src/config/recipeLoad.ts';
import { checkResumeOptions, resolveSftOptions, runConfigJson } from '../../src/sft/sftConfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-set-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const throwsLine = (fn: () => unknown, message: string | RegExp) =>
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof AhaError, `${e}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });

const values = (args: string[], kind: 'grpo' | 'r1' | 'sft' = 'grpo') =>
  parseSetArgs(args, kind).map((s) => [s.path.join('.'), s.value]);

test('values are read as YAML: numbers, booleans, null, strings, flow lists and mappings', () => {
  assert.deepEqual(
    values([
      'grpo.beta=0.04',
      'training.learning_rate=1.0e-6',
      'training.max_steps=10',
      'grpo.mask_truncated_completions=true',
      'grpo.epsilon_high=null',
      'grpo.loss_type=dr_grpo',
      'grpo.reward_weights=[1, 0.5]',
      'rewards.1.options={mode: think}',
      'system_prompt=You are: helpful',
      'prompt=Q: {question} A:',
      'rewards.0.label=a=b',
    ]),
    [
      ['grpo.beta', 0.04],
      ['training.learning_rate', 1e-6],
      ['training.max_steps', 10],
      ['grpo.mask_truncated_completions', true],
      ['grpo.epsilon_high', null],
      ['grpo.loss_type', 'dr_grpo'],
      ['grpo.reward_weights', [1, 0.5]],
      ['rewards.1.options', { mode: 'think' }],
      // A colon does not make a mapping unless the value opens with {.
      ['system_prompt', 'You are: helpful'],
      ['prompt', 'Q: {question} A:'],
      ['rewards.0.label', 'a=b'],
    ],
  );
  // A field of strings keeps digits as typed; a path field becomes absolute (relative to where the command runs).
  assert.deepEqual(values(['dataset.split=2024', 'rewards.0.name=./r.ts#f']), [
    ['dataset.split', '2024'],
    ['rewards.0.name', './r.ts#f'],
  ]);
  assert.deepEqual(values(['model=models/x', 'dataset={path: d.jsonl, limit: 5}', 'output_dir=/abs/run']), [
    ['model', resolve('models/x')],
    ['dataset', { path: resolve('d.jsonl'), limit: 5 }],
    ['output_dir', '/abs/run'],
  ]);
  assert.deepEqual(values(['learning_rate=2e-4', 'data=train.jsonl', 'resume_from_checkpoint=true'], 'sft'), [
    ['learning_rate', 2e-4],
    ['data', resolve('train.jsonl')],
    ['resume_from_checkpoint', true],
  ]);
  // Below an open mapping (a reward's options) any key goes; the reward checks its options itself.
  assert.deepEqual(values(['rewards.0.options.strategies=[boxed]']), [['rewards.0.options.strategies', ['boxed']]]);
});

test('a bad path or argument is one line naming it', () => {
  throwsLine(
    () => parseSetArgs(['training.max_step=1'], 'grpo'),
    /^--set training\.max_step=1: unknown field 'max_step' in training \(did you mean training\.max_steps\?\)$/,
  );
  throwsLine(
    () => parseSetArgs(['trainig.max_steps=1'], 'grpo'),
    "--set trainig.max_steps=1: unknown field 'trainig' (did you mean training?)",
  );
  throwsLine(
    () => parseSetArgs(['epochs=1'], 'grpo'),
    "--set epochs=1: unknown field 'epochs' (fields: model, dataset, prompt, system_prompt, rewards, grpo, training, reward_timeout_ms, output_dir, lora, torch_dtype, chat_template_kwargs, ref_model_dtype)",
  );
  throwsLine(
    () => parseSetArgs(['grpo.beta.x=1'], 'grpo'),
    '--set grpo.beta.x=1: grpo.beta is a value (number >= 0), not a section with fields',
  );
  throwsLine(
    () => parseSetArgs(['rewards.first.weight=1'], 'grpo'),
    "--set rewards.first.weight=1: rewards is a list: give an item's index (rewards.0)",
  );
  throwsLine(
    () => parseSetArgs(['training.max_steps'], 'grpo'),
    '--set training.max_steps: expected path=value (e.g. --set training.max_steps=10)',
  );
  throwsLine(() => parseSetArgs(['=3'], 'grpo'), '--set =3: expected path=value (e.g. --set training.max_steps=10)');
  throwsLine(
    () => parseSetArgs(['training..max_steps=3'], 'grpo'),
    "--set training..max_steps=3: empty segment in the path 'training..max_steps'",
  );
  throwsLine(
    () => parseSetArgs(['grpo.reward_weights=[1, 2'], 'grpo'),
    /^--set grpo\.reward_weights=\[1, 2: invalid YAML value \(/,
  );
  throwsLine(
    () => parseSetArgs(['stages.reasoning.training.max_steps=2'], 'r1'),
    "--set stages.reasoning.training.max_steps=2: unknown field 'reasoning' in stages (did you mean stages.reasoning_rl?)",
  );
  throwsLine(
    () => parseSetArgs(['stages.reasoning_rl.training.lr=2'], 'r1'),
    /^--set stages\.reasoning_rl\.training\.lr=2: unknown field 'lr' in stages\.reasoning_rl\.training \(fields: learning_rate, /,
  );
  // The pipeline sets a stage's model itself.
  throwsLine(
    () => parseSetArgs(['stages.cold_start_sft.sft.model=x'], 'r1'),
    /^--set stages\.cold_start_sft\.sft\.model=x: unknown field 'model' in stages\.cold_start_sft\.sft /,
  );
  throwsLine(
    () => parseSetArgs(['learning-rate=1'], 'sft'),
    "--set learning-rate=1: unknown field 'learning-rate' (did you mean learning_rate?)",
  );
});

test('overrides apply in order, creating sections and list items, and leave the recipe as read untouched', () => {
  const raw = { model: 'm', rewards: [{ name: 'accuracy' }], training: { max_steps: 5 } };
  const out = applySetOverrides(
    raw,
    parseSetArgs(
      [
        'grpo.beta=0.04',
        'training.max_steps=10',
        'rewards.0.weight=2',
        'rewards.1.name=format',
        'training.max_steps=12',
      ],
      'grpo',
    ),
  );
  assert.deepEqual(out, {
    model: 'm',
    rewards: [{ name: 'accuracy', weight: 2 }, { name: 'format' }],
    training: { max_steps: 12 },
    grpo: { beta: 0.04 },
  });
  assert.deepEqual(raw, { model: 'm', rewards: [{ name: 'accuracy' }], training: { max_steps: 5 } });
  throwsLine(
    () => applySetOverrides(raw, parseSetArgs(['rewards.3.weight=1'], 'grpo'), 'r.yaml'),
    '--set rewards.3.weight=1: rewards has 1 item in r.yaml (index 1 adds one)',
  );
  throwsLine(
    () => applySetOverrides({ dataset: 'd.jsonl' }, parseSetArgs(['dataset.limit=1'], 'grpo'), 'r.yaml'),
    '--set dataset.limit=1: dataset is "d.jsonl" in r.yaml, not a section',
  );
  // A stage written with no body (null) takes a field as any other.
  assert.deepEqual(
    applySetOverrides(
      { stages: { reasoning_rl: null } },
      parseSetArgs(['stages.reasoning_rl.training.max_steps=1'], 'r1'),
    ),
    { stages: { reasoning_rl: { training: { max_steps: 1 } } } },
  );
});

const grpoRecipe = join(dir, 'grpo.yaml');
writeFileSync(
  grpoRecipe,
  [
    'model: model-dir',
    'dataset: { path: data.jsonl }',
    'rewards:',
    '  - { name: accuracy }',
    '  - { name: format }',
    'training: { max_steps: 5 }',
    '',
  ].join('\n'),
);

test('aha grpo: overrides reach the validated recipe; a bad value fails as in the file, naming the --set', () => {
  const { recipe, text } = loadGrpoRecipe(grpoRecipe, [
    'grpo.beta=0.04',
    'training.max_steps=10',
    'rewards.0.weight=2',
  ]);
  assert.equal(recipe.grpo.beta, 0.04);
  assert.equal(recipe.training.max_steps, 10);
  assert.equal(recipe.rewards[0].weight, 2);
  // Paths in the file still resolve against its directory.
  assert.equal(recipe.baseDir, dir);
  assert.match(text, /^model: model-dir\n[\s\S]*\n# aha grpo ran this recipe with:\n# {3}--set grpo\.beta=0\.04\n/);
  assert.equal(loadGrpoRecipe(grpoRecipe).recipe.training.max_steps, 5);
  throwsLine(
    () => loadGrpoRecipe(grpoRecipe, ['grpo.beta=-1']),
    `${grpoRecipe}: grpo.beta: Too small: expected number to be >=0 (from --set grpo.beta=-1)`,
  );
  throwsLine(
    () => loadGrpoRecipe(grpoRecipe, ['training.max_steps=ten']),
    `${grpoRecipe}: training.max_steps: Invalid input: expected number, received string (from --set training.max_steps=ten)`,
  );
  throwsLine(
    () => loadGrpoRecipe(grpoRecipe, ['grpo.loss_type=ppo']),
    /^.*grpo\.yaml: grpo\.loss_type: .*"dapo".* \(from --set grpo\.loss_type=ppo\)$/,
  );
  throwsLine(
    () => loadGrpoRecipe(grpoRecipe, ['grpo.reward_weights=[1]']),
    `${grpoRecipe}: grpo.reward_weights: 1 weights for 2 rewards (from --set grpo.reward_weights=[1])`,
  );
  throwsLine(
    () => loadGrpoRecipe(join(dir, 'none.yaml'), ['grpo.beta=1']),
    `${join(dir, 'none.yaml')}: recipe not found`,
  );
});

test('aha r1: overrides reach stage sections; errors as the recipe reports them', () => {
  const r1 = join(dir, 'r1.yaml');
  writeFileSync(r1, 'base_model: base\ntask: arithmetic\nstages:\n  reasoning_rl:\n');
  const { recipe } = loadR1Recipe(r1, [
    'stages.reasoning_rl.training.max_steps=3',
    'stages.reasoning_rl.grpo.num_generations=4',
    'eval.problems=5',
    'stages.cold_start_sft.sft.learning_rate=1e-4',
  ]);
  assert.deepEqual(recipe.stages.reasoning_rl!.training, { max_steps: 3 });
  assert.deepEqual(recipe.stages.reasoning_rl!.grpo, { num_generations: 4 });
  assert.equal(recipe.eval.problems, 5);
  assert.equal(recipe.stages.cold_start_sft!.sft.learning_rate, 1e-4);
  throwsLine(
    () => loadR1Recipe(r1, ['eval.problems=0']),
    `${r1}: eval.problems: Too small: expected number to be >0 (from --set eval.problems=0)`,
  );
  throwsLine(
    () => loadR1Recipe(r1, ['stages.reasoning_rl.grpo.num_generations=1']),
    /^.*r1\.yaml: stages\.reasoning_rl: grpo\.num_generations: Too small.* \(from --set stages\.reasoning_rl\.grpo\.num_generations=1\)$/,
  );
});

test('aha sft: the config file and --set form one layer; paths in the file resolve against it', () => {
  const sub = join(dir, 'cfg');
  mkdirSync(sub, { recursive: true });
  const cfg = join(sub, 'sft.yaml');
  writeFileSync(cfg, 'model: ../model\ndata: data/train.jsonl\nout: /abs/out\nlearning_rate: 1.0e-4\n');
  const layer = sftConfigLayer(cfg, ['learning_rate=3e-4', 'eval_fraction=0.1']);
  const o = resolveSftOptions({ cli: { max_steps: 7 }, config: layer.config, configName: layer.configName });
  assert.equal(o.model, join(dir, 'model'));
  assert.equal(o.data, join(sub, 'data', 'train.jsonl'));
  assert.equal(o.out, '/abs/out');
  assert.equal(o.learning_rate, 3e-4);
  assert.equal(o.eval_fraction, 0.1);
  assert.equal(o.max_steps, 7);
  // Flags win over --set.
  const flagWins = sftConfigLayer(cfg, ['max_steps=3']);
  assert.equal(resolveSftOptions({ cli: { max_steps: 9 }, config: flagWins.config }).max_steps, 9);
  assert.deepEqual(sftConfigLayer(undefined, []), { sets: [] });
  const onlySets = sftConfigLayer(undefined, ['model=m', 'data=d', 'out=o']);
  assert.equal(onlySets.configName, '--set');
  assert.equal(resolveSftOptions({ config: onlySets.config }).model, resolve('m'));
});

test('aha sft --resume with --set keeps the resume rules: a changed data-order option is refused', () => {
  const out = join(dir, 'sft-run');
  mkdirSync(out, { recursive: true });
  const started = resolveSftOptions({ cli: { model: 'm', data: '/d.jsonl', out, seed: 3 } });
  writeFileSync(join(out, 'config.json'), runConfigJson(started));
  const resumed = (sets: string[]) => {
    const layer = sftConfigLayer(undefined, sets);
    const o = resolveSftOptions({ cli: { out, resume_from_checkpoint: true }, config: layer.config });
    checkResumeOptions(o, out);
    return o;
  };
  // A schedule option may change (as with a flag or an edited --config file)...
  assert.equal(resumed(['max_steps=50']).max_steps, 50);
  // ...the data order may not.
  throwsLine(
    () => resumed(['seed=4']),
    new RegExp(`^${join(out, 'config.json')}: seed was 3 when the run started, now 4`),
  );
});

test('the recipe text kept in the run directory lists the overrides', () => {
  assert.equal(recipeTextWithSets('a: 1\n', 'aha grpo', []), 'a: 1\n');
  assert.equal(
    recipeTextWithSets('a: 1', 'aha r1', parseSetArgs(['seed=2'], 'r1')),
    'a: 1\n\n# aha r1 ran this recipe with:\n#   --set seed=2\n',
  );
});
