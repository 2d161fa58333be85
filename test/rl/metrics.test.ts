// GRPO's per-step record: flat TRL names, hand-computed values, and the warnings about runs that cannot learn.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Rollout, RolloutGroup } from '../../src/rl/grpoRollout.ts';
import { stepMetrics } from '../../src/rl/grpoStepMetrics.ts';
import type { UpdateStats } from '../../src/rl/grpoUpdate.ts';
import {
  formatStepSummary,
  learningSignalWatch,
  lengthMetrics,
  progressMetrics,
  rewardErrorCounts,
  rewardNames,
  rewardReasons,
  rewardStats,
  type StepMetrics,
} from '../../src/rl/metrics.ts';
import type { Recipe } from '../../src/rl/recipe.ts';
import type { ResolvedReward } from '../../src/rl/rewardRegistry.ts';

const rewards = [
  { name: 'accuracy', kind: 'accuracy', weight: 1, fn: () => 0 },
  { name: 'format', kind: 'format', weight: 0.5, fn: () => 0 },
] as unknown as ResolvedReward[];

function group(acc: number[], fmt: number[], lengths: number[], clipped: boolean[]): RolloutGroup {
  return {
    prepared: { promptText: 'q', example: { question: 'q', answer: '1' } },
    completions: lengths.map((n, j) => ({
      group: 0,
      promptIds: [],
      completionIds: Array.from({ length: n }, () => 1),
      samplingLogprobs: [],
      finishReason: clipped[j] ? 'length' : 'stop',
    })),
    texts: lengths.map(() => 'wait, check'),
    totals: acc.map((a, j) => a + 0.5 * fmt[j]),
    perReward: [acc, fmt],
    reasons: [acc.map((a) => (a === 1 ? 'correct' : 'wrong')), fmt.map(() => null)],
  } as unknown as RolloutGroup;
}

describe('stepMetrics', () => {
  // Group 1: accuracy 1,0 format 1,1 -> totals 1.5, 0.5. Group 2: all 0 -> zero variance.
  const g1 = group([1, 0], [1, 1], [10, 20], [false, true]);
  const g2 = group([0, 0], [0, 0], [30, 40], [false, false]);
  const rollout = {
    sampled: [g1, g2],
    used: [g1, g2],
    zeroVarianceGroups: 1,
    batches: 1,
    rewardErrors: 2,
    rewardErrorsByName: { accuracy: 2 },
    rewardCallsByName: { accuracy: 4 },
    generatedTokens: 100,
    cursor: 2,
    time: { sample: 4, score: 1 },
    abandoned: false,
  } as unknown as Rollout;
  const update: UpdateStats = {
    updates: 2,
    gradNormSum: 3,
    lossSum: 0.5,
    clipLow: 1,
    clipHigh: 3,
    clipTokens: 40,
    klSum: 2,
    klTokens: 100,
    entSum: 50,
    entTokens: 100,
    learnTokens: 400,
  };
  const recipe = { grpo: { beta: 0.04 } } as unknown as Recipe;
  const m = stepMetrics(recipe, rewards, rollout, update, {
    step: 3,
    epoch: 0.5,
    learningRate: 1e-5,
    learnSeconds: 2,
    totalSeconds: 8,
  });

  it('is flat: every value a number, under TRL names', () => {
    assert.ok(Object.values(m).every((v) => typeof v === 'number'));
    // totals 1.5, 0.5, 0, 0: mean 0.5, unbiased std sqrt(((1)^2 + 0 + 0.25 + 0.25) / 3) = sqrt(0.5)
    assert.equal(m.reward, 0.5);
    assert.ok(Math.abs(m.reward_std - Math.sqrt(0.5)) < 1e-12);
    assert.deepEqual([m.reward_min, m.reward_max], [0, 1.5]);
    assert.equal(m['rewards/accuracy/mean'], 0.25);
    assert.equal(m['rewards/format/mean'], 0.5);
    assert.ok(Math.abs(m['rewards/format/std'] - Math.sqrt(1 / 3)) < 1e-12);
    assert.equal(m.frac_reward_zero_std, 0.5);
    assert.equal(m.loss, 0.25);
    assert.equal(m.grad_norm, 1.5);
    assert.equal(m.learning_rate, 1e-5);
    assert.equal(m.kl, 0.02);
    assert.equal(m.entropy, 0.5);
    assert.equal(m['clip_ratio/low_mean'], 1 / 40);
    assert.equal(m['clip_ratio/high_mean'], 3 / 40);
    assert.equal(m['clip_ratio/region_mean'], 4 / 40);
    assert.equal(m['completions/mean_length'], 25);
    assert.equal(m['completions/min_length'], 10);
    assert.equal(m['completions/max_length'], 40);
    assert.equal(m['completions/clipped_ratio'], 0.25);
    assert.equal(m['completions/mean_terminated_length'], (10 + 30 + 40) / 3);
    assert.equal(m['completions/max_terminated_length'], 40);
    assert.equal(m.accuracy, 0.25);
    assert.equal(m.format_rate, 0.5);
    assert.equal(m['tokens_per_second/sample'], 25);
    assert.equal(m['tokens_per_second/learn'], 200);
    assert.deepEqual([m['time/sample'], m['time/score'], m['time/learn'], m['time/total']], [4, 1, 2, 8]);
    assert.equal(m['reflection/wait'], 500);
    assert.equal(m.epoch, 0.5);
    assert.equal(m.step, 3);
  });

  it('reward names, errors and reasons read back from the flat keys', () => {
    assert.deepEqual(rewardNames(m), ['accuracy', 'format']);
    assert.deepEqual(rewardStats(m, 'accuracy')?.mean, 0.25);
    assert.equal(rewardStats(m, 'nope'), undefined);
    assert.deepEqual(rewardErrorCounts(m), { accuracy: { errors: 2, calls: 4 } });
    assert.deepEqual(rewardReasons(m), { accuracy: { correct: 1, wrong: 3 } });
    assert.equal(m['reward_reasons/accuracy/correct'], 1);
  });

  it('without a KL term has no kl key (as TRL), and without accuracy/format rewards no accuracy/format_rate', () => {
    const noKl = stepMetrics(
      { grpo: { beta: 0 } } as unknown as Recipe,
      [{ ...rewards[0], kind: 'custom' }],
      rollout,
      update,
      {
        step: 1,
        epoch: 0,
        learningRate: 0,
        learnSeconds: 0,
        totalSeconds: 0,
      },
    );
    assert.ok(!('kl' in noKl));
    assert.ok(!('accuracy' in noKl) && !('format_rate' in noKl));
  });

  it('progressMetrics and the log line name the headline numbers', () => {
    assert.deepEqual(progressMetrics(m), {
      reward: '0.500 ±0.707',
      acc: '25.0%',
      format: '50.0%',
      len: '25 (max 40)',
      kl: '0.02',
      entropy: '0.5',
      zero_std: '50.0%',
      grad_norm: '1.5',
      lr: '1.0e-5',
    });
    assert.equal(
      formatStepSummary(m),
      'reward 0.500 ±0.707 | acc 25.0% | format 50.0% | len 25 (max 40) | kl 0.02 | entropy 0.5 | zero_std 50.0% | grad_norm 1.5 | lr 1.0e-5',
    );
  });
});

describe('lengthMetrics', () => {
  it('is zero for no completions; terminated lengths leave truncated ones out', () => {
    assert.equal(lengthMetrics([], [])['completions/mean_length'], 0);
    const l = lengthMetrics([4, 8], [true, true]);
    assert.equal(l['completions/clipped_ratio'], 1);
    assert.equal(l['completions/mean_terminated_length'], 0);
  });
});

describe('learningSignalWatch', () => {
  const rec = (step: number, o: Partial<StepMetrics>) =>
    ({ step, groups_sampled: 8, frac_reward_zero_std: 0.5, format_rate: 0.5, ...o }) as StepMetrics;

  it('warns at the first step without signal, then a count at most every N steps', () => {
    const w = learningSignalWatch({ repeatEvery: 5 });
    const said: [number, string][] = [];
    for (let s = 1; s <= 14; s++)
      for (const line of w.step(rec(s, { frac_reward_zero_std: s === 4 ? 0.75 : 1 }))) said.push([s, line]);
    assert.deepEqual(
      said.map(([s]) => s),
      [1, 6, 11],
    );
    assert.match(
      said[0][1],
      /^step 1: no learning signal: all 8 groups have zero reward variance \(every advantage is 0\)/,
    );
    assert.match(said[1][1], /^step 6: still no learning signal: 5 steps so far with every group zero-variance$/);
    assert.match(said[2][1], /10 steps so far/);
  });

  it('says nothing while some group has signal', () => {
    const w = learningSignalWatch();
    for (let s = 1; s <= 30; s++) assert.deepEqual(w.step(rec(s, { frac_reward_zero_std: 0.875 })), []);
  });

  it('warns once when the format reward is 0 on every completion for K steps in a row, naming the likely cause', () => {
    const w = learningSignalWatch({ formatZeroSteps: 3 });
    const said: [number, string][] = [];
    const formats = [0, 0, 0.1, 0, 0, 0, 0, 0, 0];
    formats.forEach((f, i) => {
      for (const line of w.step(rec(i + 1, { format_rate: f }))) said.push([i + 1, line]);
    });
    assert.equal(said.length, 1);
    assert.equal(said[0][0], 6);
    assert.match(said[0][1], /^steps 4-6: the format reward was 0 for every completion; .*prompt template/);
  });

  it('without a format reward, never warns about format', () => {
    const w = learningSignalWatch({ formatZeroSteps: 1 });
    assert.deepEqual(w.step(rec(1, { format_rate: undefined })), []);
  });
});
