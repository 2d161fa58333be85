/**
 * examples/r1-pipeline-arithmetic.yaml runs as it is (through `aha r1`, with the shipped base model), every stage
 * shrunk to seconds with --set; --help points to the reference; a bad --set is one line naming it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aha, sets } from './runAha.ts';

const recipe = 'examples/r1-pipeline-arithmetic.yaml';
const dir = mkdtempSync(join(tmpdir(), 'aha-example-r1-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tinySft = { max_steps: 1, per_device_train_batch_size: 2, warmup_steps: 0, save_steps: 1 };
const tinyRl = (stage: string) => ({
  [`stages.${stage}.grpo.num_generations`]: 2,
  [`stages.${stage}.grpo.max_completion_length`]: 24,
  [`stages.${stage}.training.max_steps`]: 1,
  [`stages.${stage}.training.prompts_per_step`]: 2,
  [`stages.${stage}.training.warmup_steps`]: 0,
  [`stages.${stage}.training.save_steps`]: 0,
});
const tinyData = (stage: string) => ({
  [`stages.${stage}.prompts`]: 8,
  [`stages.${stage}.samples_per_prompt`]: 2,
  [`stages.${stage}.sft`]: { ...tinySft, learning_rate: 3e-4 },
});
// The sizes of the r1 demo's smoke scale (src/demo/pipelineDemos.ts).
const tiny = sets({
  task_train_size: 32,
  max_new_tokens: 24,
  eval: { problems: 2, samples: 1 },
  'filters.min_reasoning_lines': null,
  ...tinyData('cold_start_sft'),
  ...tinyRl('reasoning_rl'),
  ...tinyData('rejection_sft'),
  ...tinyRl('all_scenarios_rl'),
});

test('the R1 pipeline example runs its four stages as it is', async () => {
  const out = join(dir, 'run');
  const r = await aha(['r1', '--config', recipe, '--out', out, '--json', ...tiny]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    out: string;
    stages: { name: string; status: string }[];
  };
  assert.equal(result.out, out);
  assert.deepEqual(
    result.stages.map((s) => [s.name, s.status]),
    [
      ['cold_start_sft', 'done'],
      ['reasoning_rl', 'done'],
      ['rejection_sft', 'done'],
      ['all_scenarios_rl', 'done'],
    ],
  );
});

test('aha r1: --help names the reference and the recipe fields; a bad --set is one line', async () => {
  const h = await aha(['r1', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--set <path=value>/);
  assert.match(h.stdout, /docs\/recipes\.md#r1-top/);
  for (const k of ['base_model', 'task', 'dataset', 'filters', 'eval', 'stages'])
    assert.match(h.stdout, new RegExp(`^  ${k} `, 'm'));
  const bad = await aha([
    'r1',
    '--config',
    recipe,
    '--out',
    join(dir, 'never'),
    '--set',
    'stages.rl.training.max_steps=1',
  ]);
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stderr,
    "aha: --set stages.rl.training.max_steps=1: unknown field 'rl' in stages (fields: cold_start_sft, reasoning_rl, rejection_sft, all_scenarios_rl)\n",
  );
});
