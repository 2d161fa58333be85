import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { AhaError } from '../../src/errors.ts';
import { configErrorMessage, fieldPath, issuePhrase, parseConfig } from '../../src/config/configError.ts';

const schema = z
  .object({
    training: z.object({ learning_rate: z.number().positive(), steps: z.number().int().min(1) }).strict(),
    rewards: z.array(z.object({ name: z.string() }).strict()),
  })
  .strict();

const fails = (value: unknown) => {
  const r = schema.safeParse(value);
  assert.ok(!r.success);
  return r.error;
};

test('fieldPath writes paths as recipes do', () => {
  assert.equal(fieldPath(['rewards', 1, 'options', 'x']), 'rewards[1].options.x');
  assert.equal(fieldPath([]), '');
  assert.equal(fieldPath(['a']), 'a');
});

test('one line naming the source and the field; unknown keys first; required; nouns', () => {
  const ok = { training: { learning_rate: 1, steps: 2 }, rewards: [{ name: 'a' }] };
  assert.equal(
    configErrorMessage(fails({ ...ok, training: { learning_rate: 'fast', steps: 2 } }), 'r.yaml'),
    'r.yaml: training.learning_rate: Invalid input: expected number, received string',
  );
  // The unknown key is reported although another issue comes first.
  assert.equal(
    configErrorMessage(fails({ training: { learning_rate: -1, steps: 2, lr: 3 }, rewards: [] }), 'r.yaml'),
    "r.yaml: training: unknown field 'lr'",
  );
  assert.equal(
    configErrorMessage(fails({ ...ok, training: { learning_rate: 1 } }), 'r.yaml'),
    'r.yaml: training.steps: required',
  );
  assert.equal(
    configErrorMessage(fails({ ...ok, rewards: [{ name: 'a', w: 1, v: 2 }] }), 'rewards[0]', {
      noun: 'option',
      sourceIsPath: true,
      prefix: ['x'],
    }),
    "rewards[0].x.rewards[0]: unknown options 'w', 'v'",
  );
  assert.throws(
    () => parseConfig(schema, { ...ok, extra: 1 }, 'cfg'),
    (e: Error) => e instanceof AhaError && e.message === "cfg: unknown field 'extra'",
  );
  assert.deepEqual(parseConfig(schema, ok, 'cfg'), ok);
});

test('issuePhrase: short phrases for command-line options', () => {
  const issue = (value: unknown, s: z.ZodType) => {
    const r = s.safeParse(value);
    assert.ok(!r.success);
    return r.error.issues[0];
  };
  assert.equal(issuePhrase(issue(0, z.number().int().min(1))), 'must be >= 1');
  assert.equal(issuePhrase(issue(5, z.number().lt(5))), 'must be < 5');
  assert.equal(issuePhrase(issue('x', z.number())), 'must be a number');
  assert.equal(issuePhrase(issue('x', z.number().nullable()), { nullable: true }), 'must be a number or null');
  assert.equal(issuePhrase(issue('c', z.enum(['a', 'b']))), 'must be one of a, b');
  assert.equal(issuePhrase(issue('', z.string().min(1))), 'must not be empty');
});
