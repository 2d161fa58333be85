/**
 * The recipe reference: every schema field has a description, docs/recipes.md is what the generator writes, and
 * what the generator reads from a schema (types, bounds, defaults) is right, checked on hand-built schemas and on
 * published defaults (TRL's GRPOConfig, transformers' TrainingArguments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeSchema } from '../../src/config/schemaFields.ts';
import { FIELD_DOCS, REWARD_OPTION_DOCS } from '../../src/config/recipeFieldDocs.ts';
import {
  recipeHelpText,
  recipeReference,
  recipeReferenceFile,
  staleFieldDocs,
  undocumentedFields,
} from '../../src/config/recipeReference.ts';
import { nodeAt, recipeTree, rewardOptionTrees, walkFields, RECIPE_KINDS } from '../../src/config/recipeSchemas.ts';
import { BUILTIN_REWARDS } from '../../src/rl/rewardRegistry.ts';

const DOCS_FILE = 'src/config/recipeFieldDocs.ts';

test('every recipe field has a description (the message says which path, and where to add it)', () => {
  const lines = undocumentedFields().map(({ kind, path }) => {
    if (kind === 'reward') {
      const [name, option] = path.split('.');
      const add = REWARD_OPTION_DOCS[name]
        ? `add ${option}: { doc: '...' } to REWARD_OPTION_DOCS.${name}.options`
        : `add ${name}: { about: '...', options: { ${option}: { doc: '...' }, ... } } to REWARD_OPTION_DOCS`;
      return `reward '${name}' option '${option}' has no description: ${add} in ${DOCS_FILE}, then run \`npm run docs:recipes\``;
    }
    const recipe = kind === 'sft' ? 'aha sft option' : `aha ${kind} recipe field`;
    return (
      `${recipe} '${path}' has no description: add '${path}': { doc: '...', trl: '...' } to FIELD_DOCS.${kind} ` +
      `in ${DOCS_FILE} (trl: the TRL/transformers name, if any), then run \`npm run docs:recipes\``
    );
  });
  if (lines.length > 0) assert.fail(lines.join('\n'));
});

test('no description is left for a field the schemas no longer have', () => {
  const lines = staleFieldDocs(FIELD_DOCS).map(
    ({ kind, path }) => `${DOCS_FILE}: '${path}' (${kind}) describes no field of the schema: rename or remove it`,
  );
  if (lines.length > 0) assert.fail(lines.join('\n'));
});

test('no field is left open (z.unknown()) without its schema put in place in src/config/recipeSchemas.ts', () => {
  const open: string[] = [];
  for (const kind of RECIPE_KINDS)
    for (const [p, n] of walkFields(recipeTree(kind))) if (n.type === 'any') open.push(`${kind}: ${p}`);
  assert.deepEqual(open, [], 'these fields are validated by a schema of their own: graft it in recipeSchemas.ts');
});

test('docs/recipes.md is what the generator writes (regenerate with `npm run docs:recipes`)', () => {
  const onDisk = readFileSync(recipeReferenceFile(), 'utf8');
  const generated = recipeReference();
  if (onDisk !== generated) {
    const a = onDisk.split('\n');
    const b = generated.split('\n');
    const i = a.findIndex((l, k) => l !== b[k]);
    assert.fail(
      `docs/recipes.md is out of date (first difference at line ${i + 1}: ${JSON.stringify(a[i])} should be ` +
        `${JSON.stringify(b[i])}): run \`npm run docs:recipes\``,
    );
  }
});

test('types, bounds and defaults read from hand-built schemas', () => {
  const s = z
    .object({
      a: z.number().int().min(1).default(8),
      b: z.number().gt(0).max(1),
      c: z.number().min(0).lt(1).optional(),
      d: z.enum(['x', 'y']).default('y'),
      e: z.number().positive().nullable().default(null),
      f: z
        .union([z.enum(['g', 'h']), z.boolean()])
        .transform((v) => String(v))
        .default('g'),
      g: z.array(z.object({ name: z.string() })).default([]),
      h: z.record(z.string(), z.unknown()).optional(),
      i: z.custom<() => void>((v) => typeof v === 'function').optional(),
      j: z.preprocess((v) => v, z.array(z.enum(['p', 'q']))),
      k: z.string().min(1),
    })
    .strict();
  const n = describeSchema(s);
  const f = n.fields!;
  assert.deepEqual(
    Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [v.type, v.required, v.hasDefault ? v.default : '-']])),
    {
      a: ['integer >= 1', false, 8],
      b: ['number in (0, 1]', true, '-'],
      c: ['number in [0, 1)', false, '-'],
      d: ['x | y', false, 'y'],
      e: ['number > 0 | null', false, null],
      f: ['g | h | boolean', false, 'g'],
      g: ['list of mappings', false, []],
      h: ['mapping', false, '-'],
      i: ['function', false, '-'],
      j: ['list of p | q', true, '-'],
      k: ['string', true, '-'],
    },
  );
  assert.equal(f.g.element!.fields!.name.required, true);
  assert.equal(f.h.kind, 'record');
  assert.equal(f.i.codeOnly, true);
  assert.deepEqual(f.d.values, ['x', 'y']);
});

test("the trees carry TRL's and transformers' published defaults", () => {
  const grpo = recipeTree('grpo').root;
  const def = (p: string) => nodeAt(grpo, p)!.default;
  // trl/trainer/grpo_config.py
  assert.equal(def('grpo.num_generations'), 8);
  assert.equal(def('grpo.beta'), 0);
  assert.equal(def('grpo.epsilon'), 0.2);
  assert.equal(def('grpo.temperature'), 1);
  assert.equal(def('grpo.num_iterations'), 1);
  assert.equal(def('grpo.max_completion_length'), 256);
  assert.equal(nodeAt(grpo, 'grpo.loss_type')!.type, 'grpo | bnpo | dr_grpo | dapo');
  assert.equal(nodeAt(grpo, 'model')!.required, true);
  assert.equal(nodeAt(grpo, 'dataset')!.required, true);
  assert.equal(nodeAt(grpo, 'dataset.path')!.required, true);
  assert.equal(nodeAt(grpo, 'rewards[].name')!.required, true);
  // TRL's SFTConfig (learning_rate) and transformers' TrainingArguments
  const sft = recipeTree('sft').root;
  assert.equal(nodeAt(sft, 'learning_rate')!.default, 2e-5);
  assert.equal(nodeAt(sft, 'adam_beta2')!.default, 0.999);
  assert.equal(nodeAt(sft, 'adam_epsilon')!.default, 1e-8);
  assert.equal(nodeAt(sft, 'max_steps')!.default, -1);
  // A pipeline stage's grpo and training sections have the GRPO recipe's fields.
  const r1 = recipeTree('r1');
  assert.equal(nodeAt(r1.root, 'stages.reasoning_rl.grpo.beta')!.default, 0);
  assert.equal(nodeAt(r1.root, 'stages.all_scenarios_rl.training.max_steps')!.default, 100);
  assert.equal(nodeAt(r1.root, 'stages.cold_start_sft.sft.model'), undefined, 'the pipeline sets the model');
  assert.equal(nodeAt(r1.root, 'stages.cold_start_sft.sft.learning_rate')!.type, 'number >= 0');
  assert.deepEqual(Object.keys(rewardOptionTrees()), [...BUILTIN_REWARDS]);
});

test('the reference renders rows with type, default, meaning and TRL name', () => {
  const md = recipeReference();
  const row = (field: string, after: string) => {
    const i = md.indexOf(`<a id="${after}"></a>`);
    assert.ok(i >= 0, after);
    const line = md
      .slice(i)
      .split('\n')
      .find((l) => l.startsWith(`| \`${field}\` |`));
    assert.ok(line, `${field} in ${after}`);
    return line!;
  };
  assert.match(
    row('beta', 'grpo-grpo'),
    /^\| `beta` \| number >= 0 \| `0` \| KL coefficient.* \| `GRPOConfig\.beta` \|$/,
  );
  assert.match(
    row('learning_rate', 'grpo-training'),
    /\| `1e-6` \| Peak AdamW learning rate\. \| `TrainingArguments\.learning_rate` \|$/,
  );
  assert.match(row('loss_type', 'grpo-grpo'), /\| `grpo`, `bnpo`, `dr_grpo`, `dapo` \| `dapo` \|/);
  assert.match(row('epsilon_high', 'grpo-grpo'), /\| number > 0 or null \| `null` \|/);
  assert.match(row('learning_rate', 'sft-top'), /^\| `learning_rate` \| `--learning-rate` \| number >= 0 \| `2e-5` \|/);
  assert.match(row('temperature', 'r1-stages-rejection_sft'), /\| number >= 0 \| `0\.7` \|/);
  assert.match(row('model', 'grpo-top'), /\| string \| \*\*required\*\* \|/);
  assert.match(
    row('grpo', 'r1-stages-reasoning_rl'),
    /Fields: those of \[`aha grpo` recipe › `grpo`\]\(#grpo-grpo\) except `reward_weights`/,
  );
  assert.match(row('mode', 'grpo-reward-options'), /^\| `mode` \| `strict`, `think` \| `strict` \|/);
});

test('--help text: where the reference is, and every top-level field', () => {
  for (const kind of ['grpo', 'r1'] as const) {
    const text = recipeHelpText(kind, 100);
    assert.match(text, /docs\/recipes\.md#/);
    assert.match(text, /--set /);
    for (const k of Object.keys(recipeTree(kind).root.fields!)) assert.match(text, new RegExp(`^  ${k} `, 'm'), k);
    assert.ok(text.split('\n').every((l) => l.length <= 100 || /docs\/recipes\.md/.test(l)));
  }
  assert.match(recipeHelpText('sft'), /--config FILE .*relative paths resolve/s);
  assert.match(recipeHelpText('sft'), /docs\/recipes\.md#sft-top/);
});
