/**
 * The per-step record of a GRPO run, one JSON line of metrics.jsonl. Names follow what TRL's GRPOTrainer logs
 * where it logs the same thing (reward, reward_std, frac_reward_zero_std, kl, entropy, clip_ratio, grad_norm),
 * grouped into objects.
 */
import { reflectiveWordFrequency, REFLECTIVE_WORDS } from '../rewards/reflection.ts';
import { sampleStd } from './advantages.ts';

/** The reflective words logged one by one (the R1 paper's "aha" words); `total` counts the paper's full list. */
export const LOGGED_REFLECTIVE_WORDS = ['wait', 'verify', 'check', 'mistake', 'however'] as const;

/** Mean and unbiased std of a list (0 and 0 when empty). */
export interface MeanStd {
  mean: number;
  std: number;
}

/** One step's metrics. */
export interface StepMetrics {
  step: number;
  /** Fractional epoch: prompts consumed / dataset size. */
  epoch: number;
  /** Each reward's unweighted mean and std over every completion sampled this step, by logged name. */
  rewards: Record<string, MeanStd>;
  /** The weighted total reward. */
  reward: MeanStd;
  /** Share of completions the accuracy reward scored 1 (null without an accuracy reward). */
  accuracy: number | null;
  /** Share of completions the format reward scored 1 (null without a format reward). */
  format_rate: number | null;
  /** Completion length in tokens (stop token included); clipped_ratio: share that hit max_completion_length. */
  completion_length: { mean: number; min: number; max: number; clipped_ratio: number };
  /** Mean k3 KL to the reference per active token (null when beta = 0: no reference is kept). */
  kl: number | null;
  /** Mean entropy of the policy over completion tokens (first update pass). */
  entropy: number;
  /** Share of active tokens whose gradient the clip removed (TRL's definition), over every update pass. */
  clip_ratio: { low: number; high: number; total: number };
  /** Mean pre-clipping gradient norm of the step's optimizer updates. */
  grad_norm: number;
  learning_rate: number;
  /** Optimizer updates taken this step (num_iterations x mini-batches; fewer when gradients were not finite). */
  updates: number;
  /** Groups whose rewards were all equal (no learning signal), among every group sampled this step. */
  zero_variance_groups: number;
  frac_reward_zero_std: number;
  /** Groups sampled, and used by the update (fewer under dynamic sampling). */
  groups_sampled: number;
  groups_used: number;
  /** Rollout batches sampled this step (> 1 only under dynamic sampling). */
  rollout_batches: number;
  /** Completion tokens generated per second of sampling, and sequence tokens per second of learning. */
  tokens_per_second: { sample: number; learn: number };
  /** Wall-clock seconds of each phase. */
  time: { sample: number; score: number; learn: number; total: number };
  /** Reflective words per 1,000 words of the completions. */
  reflection: Record<(typeof LOGGED_REFLECTIVE_WORDS)[number] | 'total', number>;
  /** Reward calls that threw, timed out or returned a non-number (each scored 0). */
  reward_errors: number;
  /**
   * Per reward that failed this step: its failed calls and its calls (one per completion scored, a scoped reward's
   * on the completions it applies to); absent when no reward failed. errors === calls: it failed on every call.
   */
  reward_error_counts?: Record<string, { errors: number; calls: number }>;
  /**
   * Per reward, how many of the step's completions it scored for each reason it noted (RewardContext.note), e.g.
   * `{code: {accepted: 2, no_code_block: 3, wrong_answer: 5}}`; absent when no reward noted any.
   */
  reward_reasons?: Record<string, Record<string, number>>;
}

/** Counts of each non-null reason, keys sorted (null when there is none). */
export function reasonCounts(reasons: readonly (string | null)[]): Record<string, number> | null {
  const counts = new Map<string, number>();
  for (const r of reasons) if (r !== null) counts.set(r, (counts.get(r) ?? 0) + 1);
  if (counts.size === 0) return null;
  return Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Mean and unbiased std (torch's default) of a list. */
export function meanStd(xs: readonly number[]): MeanStd {
  if (xs.length === 0) return { mean: 0, std: 0 };
  let s = 0;
  for (const x of xs) s += x;
  return { mean: s / xs.length, std: sampleStd(xs) };
}

/** Share of entries equal to 1. */
export function shareOfOnes(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  let n = 0;
  for (const x of xs) if (x === 1) n++;
  return n / xs.length;
}

/** Reflective-word frequencies per 1,000 words; `total` sums the paper's whole list (REFLECTIVE_WORDS). */
export function reflectionMetrics(texts: readonly string[]): StepMetrics['reflection'] {
  const stats = reflectiveWordFrequency(texts, REFLECTIVE_WORDS);
  const by = new Map(stats.words.map((w) => [w.word, w.per1000Words]));
  const out = { total: stats.words.reduce((a, w) => a + w.per1000Words, 0) } as StepMetrics['reflection'];
  for (const w of LOGGED_REFLECTIVE_WORDS) out[w] = by.get(w) ?? 0;
  return out;
}

/** Completion length statistics. */
export function lengthMetrics(
  lengths: readonly number[],
  truncated: readonly boolean[],
): StepMetrics['completion_length'] {
  if (lengths.length === 0) return { mean: 0, min: 0, max: 0, clipped_ratio: 0 };
  return {
    mean: lengths.reduce((a, b) => a + b, 0) / lengths.length,
    min: Math.min(...lengths),
    max: Math.max(...lengths),
    clipped_ratio: truncated.filter(Boolean).length / truncated.length,
  };
}

/** A one-line summary for logs and the progress bar. */
export function formatStepSummary(m: StepMetrics): string {
  const parts = [`reward ${m.reward.mean.toFixed(3)}`];
  if (m.accuracy !== null) parts.push(`acc ${m.accuracy.toFixed(3)}`);
  if (m.format_rate !== null) parts.push(`fmt ${m.format_rate.toFixed(2)}`);
  parts.push(`len ${m.completion_length.mean.toFixed(0)}`);
  if (m.kl !== null) parts.push(`kl ${m.kl.toExponential(1)}`);
  return parts.join(' | ');
}
