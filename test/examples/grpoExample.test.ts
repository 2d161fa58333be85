/**
 * examples/grpo-r1-zero-arithmetic.yaml runs as it is (through `aha grpo`, with the shipped base model and data),
 * shortened with --set; resuming with --set extends it under the usual resume rules; --help points to the
 * reference; a bad --set is one line naming it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aha, sets } from './runAha.ts';

const recipe = 'examples/grpo-r1-zero-arithmetic.yaml';
const dir = mkdtempSync(join(tmpdir(), 'aha-example-grpo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Tiny: 2 questions x 2 completions of at most 24 tokens per step.
const tiny = sets({
  'training.prompts_per_step': 2,
  'grpo.num_generations': 2,
  'grpo.max_completion_length': 24,
  'training.save_steps': 1,
});

const metricLines = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number });

test('the GRPO example runs as it is, and --resume with --set continues it', async () => {
  const out = join(dir, 'run');
  const r = await aha(['grpo', '--config', recipe, '--out', out, ...tiny, ...sets({ 'training.max_steps': 1 })]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    metricLines(out).map((m) => m.step),
    [1],
  );
  const saved = JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8'));
  assert.equal(saved.training.max_steps, 1);
  assert.equal(saved.grpo.num_generations, 2);
  // The example's own values where no --set says otherwise, and its paths resolved against its directory.
  assert.equal(saved.grpo.loss_type, 'dr_grpo');
  assert.equal(saved.prompt, 'r1-zero-short');
  assert.match(saved.model, /models\/demo-base$/);
  const text = readFileSync(join(out, 'recipe.yaml'), 'utf8');
  assert.match(text, /# aha grpo ran this recipe with:\n# {3}--set training\.prompts_per_step=2\n/);

  // Without --resume an existing run is refused, as always.
  const again = await aha(['grpo', '--config', recipe, '--out', out, ...tiny, ...sets({ 'training.max_steps': 2 })]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds a run .*pass --resume/);
  const resumed = await aha([
    'grpo',
    '--config',
    recipe,
    '--out',
    out,
    ...tiny,
    ...sets({ 'training.max_steps': 2 }),
    '--resume',
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* from step 1/);
  assert.deepEqual(
    metricLines(out).map((m) => m.step),
    [1, 2],
  );
  assert.ok(existsSync(join(out, 'final')) || existsSync(join(out, 'checkpoint-2')));
});

test('aha grpo: --help names the reference and the recipe fields; a bad --set is one line', async () => {
  const h = await aha(['grpo', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--set <path=value>/);
  assert.match(h.stdout, /docs\/recipes\.md#grpo-top/);
  for (const k of ['model', 'dataset', 'prompt', 'rewards', 'grpo', 'training', 'output_dir'])
    assert.match(h.stdout, new RegExp(`^  ${k} `, 'm'));

  const out = join(dir, 'never');
  const bad = await aha(['grpo', '--config', recipe, '--out', out, '--set', 'training.max_step=1']);
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stderr,
    "aha: --set training.max_step=1: unknown field 'max_step' in training (did you mean training.max_steps?)\n",
  );
  const value = await aha(['grpo', '--config', recipe, '--out', out, '--set', 'grpo.beta=-1']);
  assert.equal(value.code, 1);
  assert.equal(
    value.stderr,
    `aha: ${recipe}: grpo.beta: Too small: expected number to be >=0 (from --set grpo.beta=-1)\n`,
  );
  assert.equal(existsSync(out), false);
});
