/** Learning-rate schedule values computed by hand from transformers' scheduler lambdas. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRateAt, resolveWarmupSteps, type LrSchedule } from '../../src/train/schedule.ts';
import { AhaError } from '../../src/errors.ts';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('linear with warmup: the first step runs at 0 as in transformers, peak after warmup, 0 at the end', () => {
  const s: LrSchedule = { type: 'linear', learningRate: 1, warmupSteps: 2, totalSteps: 10 };
  const want = [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0];
  want.forEach((w, step) => close(learningRateAt(s, step), w, `step ${step}`));
  // Past the end it stays at the floor.
  close(learningRateAt(s, 15), 0, 'step 15');
  // min_lr_ratio 0.1: 0.1 + 0.9 * 4/8 at step 6.
  close(learningRateAt({ ...s, minLrRatio: 0.1 }, 6), 0.55, 'step 6, min 0.1');
  close(learningRateAt({ ...s, minLrRatio: 0.1 }, 10), 0.1, 'step 10, min 0.1');
  close(learningRateAt({ ...s, minLrRatio: 0.1 }, 1), 0.5, 'warmup ignores the floor');
});

test('cosine: 0.5 (1 + cos(pi p)) of the peak, floored by min_lr_ratio', () => {
  const s: LrSchedule = { type: 'cosine', learningRate: 2, warmupSteps: 0, totalSteps: 4 };
  // cos(pi/4) = 0.7071067811865476
  const want = [2, 2 * 0.5 * (1 + 0.7071067811865476), 1, 2 * 0.5 * (1 - 0.7071067811865476), 0];
  want.forEach((w, step) => close(learningRateAt(s, step), w, `step ${step}`));
  close(learningRateAt({ ...s, minLrRatio: 0.2 }, 2), 2 * (0.2 + 0.8 * 0.5), 'min 0.2 at the middle');
  close(learningRateAt({ ...s, minLrRatio: 0.2 }, 4), 0.4, 'min 0.2 at the end');
  // With 10 warmup steps of 100: halfway through the decay at step 55.
  close(
    learningRateAt({ type: 'cosine', learningRate: 3e-4, warmupSteps: 10, totalSteps: 100 }, 55),
    1.5e-4,
    'step 55 of 100',
  );
  close(
    learningRateAt({ type: 'cosine', learningRate: 3e-4, warmupSteps: 10, totalSteps: 100 }, 5),
    1.5e-4,
    'step 5 of warmup 10',
  );
});

test('constant (with warmup)', () => {
  const s: LrSchedule = { type: 'constant', learningRate: 0.01, warmupSteps: 4, totalSteps: 10, minLrRatio: 0.5 };
  close(learningRateAt(s, 1), 0.0025, 'step 1');
  close(learningRateAt(s, 4), 0.01, 'step 4');
  close(learningRateAt(s, 9), 0.01, 'step 9');
});

test('warmup steps from warmup_ratio round up; warmup_steps wins when set', () => {
  assert.equal(resolveWarmupSteps(100, 0, 0.1), 10);
  assert.equal(resolveWarmupSteps(101, 0, 0.1), 11);
  assert.equal(resolveWarmupSteps(100, 5, 0.5), 5);
  assert.equal(resolveWarmupSteps(100, 0, 0), 0);
});

test('bad arguments are AhaErrors', () => {
  const s: LrSchedule = { type: 'linear', learningRate: 1, warmupSteps: 0, totalSteps: 10 };
  assert.throws(() => learningRateAt(s, -1), AhaError);
  assert.throws(() => learningRateAt(s, 1.5), AhaError);
  assert.throws(() => learningRateAt({ ...s, minLrRatio: 2 }, 1), AhaError);
});
