import { test } from 'node:test';
import assert from 'node:assert/strict';
import { overlongPenalty, overlongPenaltyValue, lengthReward } from '../../src/rewards/length.ts';
import { AhaError } from '../../src/errors.ts';

const ids = (n: number) => ({ prompt: 'p', completionIds: new Array<number>(n).fill(7) });

test('DAPO overlong soft penalty, L_max = 20, L_cache = 4 (free up to 16)', () => {
  const o = { maxLength: 20, cacheLength: 4 };
  // |y| <= 16: 0.  16 < |y| <= 20: (16 - |y|) / 4.  |y| > 20: -1.
  const want: [number, number][] = [
    [0, 0],
    [10, 0],
    [16, 0],
    [17, -0.25],
    [18, -0.5],
    [19, -0.75],
    [20, -1],
    [21, -1],
    [100, -1],
  ];
  for (const [len, v] of want) assert.equal(overlongPenaltyValue(len, o), v, `length ${len}`);
  const r = overlongPenalty(o);
  assert.equal(r('text', {}, ids(18)), -0.5);
});

test('overlong penalty with no cache is a hard cliff at L_max', () => {
  const o = { maxLength: 8, cacheLength: 0 };
  assert.equal(overlongPenaltyValue(8, o), 0);
  assert.equal(overlongPenaltyValue(9, o), -1);
});

test('overlong penalty: bad options and missing token ids', () => {
  assert.throws(() => overlongPenalty({ maxLength: 4, cacheLength: 5 }), AhaError);
  assert.throws(() => overlongPenalty({ maxLength: 0, cacheLength: 0 }), AhaError);
  const r = overlongPenalty({ maxLength: 4, cacheLength: 2 });
  assert.throws(() => r('x', {}, { prompt: 'p' }), AhaError);
});

test('length reward: min(len, target) / target', () => {
  const tok = lengthReward({ targetLength: 8 });
  assert.equal(tok('', {}, ids(2)), 0.25);
  assert.equal(tok('', {}, ids(8)), 1);
  assert.equal(tok('', {}, ids(30)), 1);
  const chars = lengthReward({ targetLength: 10, unit: 'chars' });
  assert.equal(chars('abcd', {}, { prompt: '' }), 0.4);
  assert.throws(() => lengthReward({ targetLength: 0 }), AhaError);
});
