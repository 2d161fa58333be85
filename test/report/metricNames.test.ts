// Older runs' metrics.jsonl keys under today's flat names, so the report reads runs of every age.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { normalizeMetricRecord } from '../../src/report/metricNames.ts';

describe('normalizeMetricRecord', () => {
  it("maps the nested GRPO record (before the flat names) to TRL's flat names", () => {
    const old = {
      step: 3,
      epoch: 0.5,
      rewards: { accuracy: { mean: 0.25, std: 0.5 }, custom: 0.75 },
      reward: { mean: 0.5, std: 0.7 },
      accuracy: 0.25,
      format_rate: null,
      completion_length: { mean: 25, min: 10, max: 40, clipped_ratio: 0.25 },
      kl: null,
      entropy: 0.5,
      clip_ratio: { low: 0.025, high: 0.075, total: 0.1 },
      grad_norm: 1.5,
      learning_rate: 1e-5,
      tokens_per_second: { sample: 25, learn: 200 },
      time: { sample: 4, score: 1, learn: 2, total: 8 },
      reflection: { wait: 500, total: 1000 },
      reward_errors: 2,
      reward_error_counts: { accuracy: { errors: 2, calls: 4 } },
      reward_reasons: { accuracy: { correct: 1, wrong: 3 } },
    };
    assert.deepEqual(normalizeMetricRecord(old), {
      'rewards/accuracy/mean': 0.25,
      'rewards/accuracy/std': 0.5,
      'rewards/custom/mean': 0.75,
      reward: 0.5,
      reward_std: 0.7,
      'completions/mean_length': 25,
      'completions/min_length': 10,
      'completions/max_length': 40,
      'completions/clipped_ratio': 0.25,
      'clip_ratio/low_mean': 0.025,
      'clip_ratio/high_mean': 0.075,
      'clip_ratio/region_mean': 0.1,
      'tokens_per_second/sample': 25,
      'tokens_per_second/learn': 200,
      'time/sample': 4,
      'time/score': 1,
      'time/learn': 2,
      'time/total': 8,
      'reflection/wait': 500,
      'reflection/total': 1000,
      'reward_errors/accuracy': 2,
      'reward_calls/accuracy': 4,
      'reward_reasons/accuracy/correct': 1,
      'reward_reasons/accuracy/wrong': 3,
      step: 3,
      epoch: 0.5,
      accuracy: 0.25,
      entropy: 0.5,
      grad_norm: 1.5,
      learning_rate: 1e-5,
      reward_errors: 2,
    });
  });

  it("maps SFT's lr and the earliest flat schema", () => {
    assert.deepEqual(normalizeMetricRecord({ step: 10, loss: 2, lr: 2e-5, tokens_per_second: 5000 }), {
      learning_rate: 2e-5,
      step: 10,
      loss: 2,
      tokens_per_second: 5000,
    });
    assert.deepEqual(
      normalizeMetricRecord({
        step: 1,
        reward_mean: 0.1,
        completion_length_mean: 100,
        completion_length_max: 300,
        clipped_ratio: 0.01,
        clip_fraction: { low: 0.01, high: 0.02, total: 0.03 },
        tokens_per_s: 1000,
        time_sample_s: 20,
        reflective: { per1000: { wait: 2 }, total_per1000: 4 },
      }),
      {
        reward: 0.1,
        'completions/mean_length': 100,
        'completions/max_length': 300,
        'completions/clipped_ratio': 0.01,
        'clip_ratio/low_mean': 0.01,
        'clip_ratio/high_mean': 0.02,
        'clip_ratio/region_mean': 0.03,
        tokens_per_second: 1000,
        'time/sample': 20,
        'reflection/wait': 2,
        'reflection/total': 4,
        step: 1,
      },
    );
    assert.deepEqual(normalizeMetricRecord({ step: 1, clip_fraction: 0.2, completion_length: 12 }), {
      'clip_ratio/region_mean': 0.2,
      'completions/mean_length': 12,
      step: 1,
    });
  });

  it("leaves today's records as they are; a new key wins over an old one", () => {
    const today = { step: 1, reward: 0.5, reward_std: 0.1, 'rewards/format/mean': 1, learning_rate: 1e-6, kl: 0.01 };
    assert.deepEqual(normalizeMetricRecord(today), today);
    assert.deepEqual(normalizeMetricRecord({ step: 1, lr: 1, learning_rate: 2 }), { step: 1, learning_rate: 2 });
  });
});
