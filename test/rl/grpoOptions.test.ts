import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseGrpoOptions,
  defaultGrpoOptions,
  toGrpoLossOptions,
  resolvedEpsilonHigh,
} from '../../src/rl/grpoOptions.ts';
import { AhaError } from '../../src/errors.ts';

test('TRL GRPOConfig defaults', () => {
  assert.deepEqual(defaultGrpoOptions, {
    num_generations: 8,
    max_completion_length: 256,
    temperature: 1,
    top_p: 1,
    top_k: 0,
    beta: 0,
    epsilon: 0.2,
    epsilon_high: null,
    loss_type: 'dapo',
    scale_rewards: 'group',
    num_iterations: 1,
    mask_truncated_completions: false,
    reward_weights: null,
  });
  assert.deepEqual(parseGrpoOptions(undefined), defaultGrpoOptions);
});

test('R1-Zero-like values, epsilon_high resolution and the loss options', () => {
  const o = parseGrpoOptions({ num_generations: 16, beta: 0.001, epsilon: 10, loss_type: 'grpo' });
  assert.equal(resolvedEpsilonHigh(o), 10);
  assert.deepEqual(toGrpoLossOptions(o), {
    lossType: 'grpo',
    epsilon: 10,
    epsilonHigh: 10,
    beta: 0.001,
    maxCompletionLength: 256,
  });
  assert.equal(resolvedEpsilonHigh(parseGrpoOptions({ epsilon_high: 0.28 })), 0.28);
});

test('scale_rewards booleans are the legacy spellings of group/none', () => {
  assert.equal(parseGrpoOptions({ scale_rewards: true }).scale_rewards, 'group');
  assert.equal(parseGrpoOptions({ scale_rewards: false }).scale_rewards, 'none');
  assert.equal(parseGrpoOptions({ scale_rewards: 'batch' }).scale_rewards, 'batch');
});

test('bad options raise a one-line AhaError naming the field', () => {
  const bad = (raw: unknown, field: string) =>
    assert.throws(
      () => parseGrpoOptions(raw, 'run.yaml'),
      (e: unknown) =>
        e instanceof AhaError &&
        e.message.startsWith('run.yaml: ') &&
        e.message.includes(field) &&
        !e.message.includes('\n'),
    );
  bad({ loss_type: 'ppo' }, 'loss_type');
  bad({ num_generations: 1 }, 'num_generations');
  bad({ beta: -1 }, 'beta');
  bad({ scale_rewards: 'grp' }, 'scale_rewards');
  bad({ num_iterations: 1.5 }, 'num_iterations');
  bad({ epsilon_hgh: 0.28 }, 'epsilon_hgh');
});
