/**
 * GRPO's third phase: one step's record for metrics.jsonl (flat, TRL's names: see metrics.ts), from its rollout and
 * its update, and the samples logged next to it.
 */
import type { Rollout } from './grpoRollout.ts';
import type { UpdateStats } from './grpoUpdate.ts';
import {
  lengthMetrics,
  meanStd,
  reasonCounts,
  reflectionMetrics,
  rewardKey,
  shareOfOnes,
  type StepMetrics,
} from './metrics.ts';
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
  const perReward: Record<string, number> = {};
  const reasons: Record<string, number> = {};
  rewards.forEach((rw, k) => {
    const s = meanStd(groups.flatMap((g) => g.perReward[k]));
    perReward[rewardKey(rw.name, 'mean')] = s.mean;
    perReward[rewardKey(rw.name, 'std')] = s.std;
    const counts = reasonCounts(groups.flatMap((g) => g.reasons[k]));
    for (const [reason, n] of Object.entries(counts ?? {})) reasons[`reward_reasons/${rw.name}/${reason}`] = n;
  });
  const kindScores = (kind: string) => {
    const k = rewards.findIndex((rw) => rw.kind === kind);
    return k < 0 ? undefined : shareOfOnes(groups.flatMap((g) => g.perReward[k]));
  };
  const accuracy = kindScores('accuracy');
  const format = kindScores('format');
  const share = (n: number) => (u.clipTokens > 0 ? n / u.clipTokens : 0);
  const errors: Record<string, number> = {};
  for (const [name, n] of Object.entries(r.rewardErrorsByName)) {
    errors[`reward_errors/${name}`] = n;
    errors[`reward_calls/${name}`] = r.rewardCallsByName[name] ?? 0;
  }
  const totals = groups.flatMap((g) => g.totals);
  const reward = meanStd(totals);
  return {
    step: f.step,
    epoch: f.epoch,
    loss: u.updates > 0 ? u.lossSum / u.updates : 0,
    grad_norm: u.updates > 0 ? u.gradNormSum / u.updates : 0,
    learning_rate: f.learningRate,
    reward: reward.mean,
    reward_std: reward.std,
    reward_min: totals.length > 0 ? totals.reduce((a, b) => Math.min(a, b)) : 0,
    reward_max: totals.length > 0 ? totals.reduce((a, b) => Math.max(a, b)) : 0,
    ...perReward,
    frac_reward_zero_std: groups.length > 0 ? r.zeroVarianceGroups / groups.length : 0,
    ...(accuracy !== undefined ? { accuracy } : {}),
    ...(format !== undefined ? { format_rate: format } : {}),
    ...lengthMetrics(
      completions.map((c) => c.completionIds.length),
      completions.map((c) => c.finishReason === 'length'),
    ),
    ...(recipe.grpo.beta > 0 ? { kl: u.klTokens > 0 ? u.klSum / u.klTokens : 0 } : {}),
    entropy: u.entTokens > 0 ? u.entSum / u.entTokens : 0,
    'clip_ratio/low_mean': share(u.clipLow),
    'clip_ratio/high_mean': share(u.clipHigh),
    'clip_ratio/region_mean': share(u.clipLow + u.clipHigh),
    updates: u.updates,
    zero_variance_groups: r.zeroVarianceGroups,
    groups_sampled: groups.length,
    groups_used: r.used.length,
    rollout_batches: r.batches,
    'tokens_per_second/sample': r.time.sample > 0 ? r.generatedTokens / r.time.sample : 0,
    'tokens_per_second/learn': f.learnSeconds > 0 ? u.learnTokens / f.learnSeconds : 0,
    'time/sample': r.time.sample,
    'time/score': r.time.score,
    'time/learn': f.learnSeconds,
    'time/total': f.totalSeconds,
    ...reflectionMetrics(groups.flatMap((g) => g.texts)),
    reward_errors: r.rewardErrors,
    ...errors,
    ...reasons,
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
