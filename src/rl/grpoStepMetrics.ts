/**
 * GRPO's third phase: one step's record for metrics.jsonl, from its rollout and its update, and the samples logged
 * next to it.
 */
import type { Rollout } from './grpoRollout.ts';
import type { UpdateStats } from './grpoUpdate.ts';
import { lengthMetrics, meanStd, reasonCounts, reflectionMetrics, shareOfOnes, type StepMetrics } from './metrics.ts';
import type { Recipe } from './recipe.ts';
import type { ResolvedReward } from './rewardRegistry.ts';

/** What the step record is computed from besides rollout and update. */
export interface StepFacts {
  step: number;
  /** Fractional epoch: prompts consumed / usable questions. */
  epoch: number;
  learningRate: number;
  /** Seconds of the update and of the whole step. */
  learnSeconds: number;
  totalSeconds: number;
}

/** The step's metrics (over every sampled group; the update's sums over what it learned from). */
export function stepMetrics(
  recipe: Recipe,
  rewards: readonly ResolvedReward[],
  r: Rollout,
  u: UpdateStats,
  f: StepFacts,
): StepMetrics {
  const groups = r.sampled;
  const completions = groups.flatMap((g) => g.completions);
  const rewardStats: StepMetrics['rewards'] = {};
  rewards.forEach((rw, k) => (rewardStats[rw.name] = meanStd(groups.flatMap((g) => g.perReward[k]))));
  const kindScores = (kind: string) => {
    const k = rewards.findIndex((rw) => rw.kind === kind);
    return k < 0 ? null : shareOfOnes(groups.flatMap((g) => g.perReward[k]));
  };
  const share = (n: number) => (u.clipTokens > 0 ? n / u.clipTokens : 0);
  const reasons: NonNullable<StepMetrics['reward_reasons']> = {};
  rewards.forEach((rw, k) => {
    const counts = reasonCounts(groups.flatMap((g) => g.reasons[k]));
    if (counts !== null) reasons[rw.name] = counts;
  });
  return {
    step: f.step,
    epoch: f.epoch,
    rewards: rewardStats,
    reward: meanStd(groups.flatMap((g) => g.totals)),
    accuracy: kindScores('accuracy'),
    format_rate: kindScores('format'),
    completion_length: lengthMetrics(
      completions.map((c) => c.completionIds.length),
      completions.map((c) => c.finishReason === 'length'),
    ),
    kl: recipe.grpo.beta > 0 ? (u.klTokens > 0 ? u.klSum / u.klTokens : 0) : null,
    entropy: u.entTokens > 0 ? u.entSum / u.entTokens : 0,
    clip_ratio: { low: share(u.clipLow), high: share(u.clipHigh), total: share(u.clipLow + u.clipHigh) },
    grad_norm: u.updates > 0 ? u.gradNormSum / u.updates : 0,
    learning_rate: f.learningRate,
    updates: u.updates,
    zero_variance_groups: r.zeroVarianceGroups,
    frac_reward_zero_std: groups.length > 0 ? r.zeroVarianceGroups / groups.length : 0,
    groups_sampled: groups.length,
    groups_used: r.used.length,
    rollout_batches: r.batches,
    tokens_per_second: {
      sample: r.time.sample > 0 ? r.generatedTokens / r.time.sample : 0,
      learn: f.learnSeconds > 0 ? u.learnTokens / f.learnSeconds : 0,
    },
    time: { sample: r.time.sample, score: r.time.score, learn: f.learnSeconds, total: f.totalSeconds },
    reflection: reflectionMetrics(groups.flatMap((g) => g.texts)),
    reward_errors: r.rewardErrors,
    ...(Object.keys(r.rewardErrorsByName).length > 0
      ? {
          reward_error_counts: Object.fromEntries(
            Object.entries(r.rewardErrorsByName).map(([name, errors]) => [
              name,
              { errors, calls: r.rewardCallsByName[name] ?? 0 },
            ]),
          ),
        }
      : {}),
    ...(Object.keys(reasons).length > 0 ? { reward_reasons: reasons } : {}),
  };
}

/** The first completion of the first `n` groups, with its rewards (and the reasons they noted), for samples.jsonl. */
export function sampleRecords(
  rewards: readonly ResolvedReward[],
  r: Rollout,
  step: number,
  n: number,
): Record<string, unknown>[] {
  return r.sampled.slice(0, n).map((g) => {
    const reasons = rewards.flatMap((rw, k) => (g.reasons[k][0] === null ? [] : [[rw.name, g.reasons[k][0]]]));
    return {
      step,
      prompt: g.prepared.promptText,
      answer: g.prepared.example.answer ?? null,
      completion: g.texts[0],
      finish_reason: g.completions[0].finishReason,
      rewards: Object.fromEntries(rewards.map((rw, k) => [rw.name, g.perReward[k][0]])),
      ...(reasons.length > 0 ? { reasons: Object.fromEntries(reasons) } : {}),
      total: g.totals[0],
    };
  });
}
