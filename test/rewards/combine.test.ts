import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scoreCompletions, type ScoreItem } from '../../src/rewards/combine.ts';
import { formatReward } from '../../src/rewards/format.ts';
import type { NamedReward } from '../../src/rewards/types.ts';
import { AhaError } from '../../src/errors.ts';

type Ex = { answer: string };
const items: ScoreItem<Ex>[] = [
  { completion: '<think>r</think> <answer>4</answer>', example: { answer: '4' }, prompt: 'P0' },
  { completion: '<think>r</think> <answer>5</answer>', example: { answer: '4' }, prompt: 'P1' },
  { completion: 'no format', example: { answer: '4' }, prompt: 'P2' },
];

const accuracy: NamedReward<Ex> = {
  name: 'accuracy',
  fn: async (c, ex) => (c.includes(`<answer>${ex.answer}</answer>`) ? 1 : 0),
};
const format: NamedReward<Ex> = { name: 'format', fn: formatReward<Ex>({ mode: 'strict' }), weight: 0.5 };

test('weighted total of several rewards', async () => {
  const r = await scoreCompletions([accuracy, format], items);
  assert.deepEqual(
    r.perReward.map((p) => [p.name, p.weight, p.scores]),
    [
      ['accuracy', 1, [1, 0, 0]],
      ['format', 0.5, [1, 1, 0]],
    ],
  );
  // total = 1*accuracy + 0.5*format: 1 + 0.5, 0 + 0.5, 0
  assert.deepEqual(r.total, [1.5, 0.5, 0]);
  assert.deepEqual(r.errors, []);
});

test('a throwing reward and a never-settling reward score 0 and are reported; the step goes on', async () => {
  const throwing: NamedReward<Ex> = {
    name: 'throws',
    fn: (c) => {
      if (c === 'no format') throw new Error('cannot parse');
      return 1;
    },
  };
  const hanging: NamedReward<Ex> = {
    name: 'hangs',
    fn: (_c, _e, ctx) => (ctx.prompt === 'P1' ? new Promise<number>(() => {}) : Promise.resolve(2)),
  };
  const rejecting: NamedReward<Ex> = { name: 'rejects', fn: async () => Promise.reject(new Error('sandbox died')) };
  const nan: NamedReward<Ex> = { name: 'nan', fn: () => NaN };
  const seen: string[] = [];
  const r = await scoreCompletions([accuracy, throwing, hanging, rejecting, nan], items, {
    timeoutMs: 50,
    onError: (e) => seen.push(`${e.rewardName}@${e.exampleIndex}`),
  });
  const byName = Object.fromEntries(r.perReward.map((p) => [p.name, p.scores]));
  assert.deepEqual(byName.accuracy, [1, 0, 0]);
  assert.deepEqual(byName.throws, [1, 1, 0]);
  assert.deepEqual(byName.hangs, [2, 0, 2]);
  assert.deepEqual(byName.rejects, [0, 0, 0]);
  assert.deepEqual(byName.nan, [0, 0, 0]);
  // total: accuracy + throws + hangs: [1+1+2, 0+1+0, 0+0+2]
  assert.deepEqual(r.total, [4, 1, 2]);
  assert.deepEqual(
    r.errors.map((e) => [e.rewardName, e.exampleIndex, e.kind]),
    [
      ['rejects', 0, 'throw'],
      ['nan', 0, 'invalid'],
      ['hangs', 1, 'timeout'],
      ['rejects', 1, 'throw'],
      ['nan', 1, 'invalid'],
      ['throws', 2, 'throw'],
      ['rejects', 2, 'throw'],
      ['nan', 2, 'invalid'],
    ],
  );
  assert.equal(r.errors.find((e) => e.rewardName === 'throws')!.message, 'cannot parse');
  assert.match(r.errors.find((e) => e.rewardName === 'hangs')!.message, /50 ms/);
  assert.equal(seen.length, 8);
});

test('concurrency limit still scores everything', async () => {
  let inFlight = 0,
    peak = 0;
  const slow: NamedReward<Ex> = {
    name: 'slow',
    fn: async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((res) => setTimeout(res, 2));
      inFlight--;
      return 1;
    },
  };
  const r = await scoreCompletions([slow], items, { concurrency: 2 });
  assert.deepEqual(r.total, [1, 1, 1]);
  assert.equal(peak, 2);
});

test('duplicate names and bad options raise AhaError', async () => {
  await assert.rejects(scoreCompletions([accuracy, accuracy], items), AhaError);
  await assert.rejects(scoreCompletions([accuracy], items, { timeoutMs: 0 }), AhaError);
});
