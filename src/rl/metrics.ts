/**
 * The per-step record of a GRPO run: one flat JSON line of metrics.jsonl (and one row of metrics.csv, one step of
 * the TensorBoard events). Keys are TRL's GRPOTrainer names wherever TRL logs the same quantity (loss, grad_norm,
 * learning_rate, reward, reward_std, rewards/<name>/mean, completions/mean_length, kl, entropy,
 * clip_ratio/region_mean, frac_reward_zero_std, epoch), so a run's logs read as TRL's do and plot in the same tools;
 * aha's own quantities follow the same style (a `group/name` key per value, never a nested object).
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

/** The reflection keys: reflective words per 1,000 words of the completions. */
export type ReflectionMetrics = {
  [W in (typeof LOGGED_REFLECTIVE_WORDS)[number] | 'total' as `reflection/${W}`]: number;
};

/**
 * Completion length keys (TRL's): in tokens, stop token included; terminated = ended by a stop token. (Types, not
 * interfaces, here and below: a record must pass where any Record<string, unknown> is taken.)
 */
export type CompletionMetrics = {
  'completions/mean_length': number;
  'completions/min_length': number;
  'completions/max_length': number;
  /** Share of completions that hit max_completion_length. */
  'completions/clipped_ratio': number;
  'completions/mean_terminated_length': number;
  'completions/min_terminated_length': number;
  'completions/max_terminated_length': number;
};

/** One step's metrics, flat. */
export type StepMetrics = {
  step: number;
  /** Fractional epoch: prompts consumed / dataset size. */
  epoch: number;
  /** Mean GRPO loss of the step's optimizer updates (0 when none was taken). */
  loss: number;
  /** Mean pre-clipping gradient norm of the step's optimizer updates. */
  grad_norm: number;
  learning_rate: number;
  /** The weighted total reward: mean and unbiased std over every completion sampled this step. */
  reward: number;
  reward_std: number;
  /** The lowest and highest total reward of the step (the report keeps the ± std band inside them). */
  reward_min: number;
  reward_max: number;
  /** Share of the sampled groups whose rewards were all equal: no learning signal from them. */
  frac_reward_zero_std: number;
  /** Mean k3 KL to the reference per active token; absent when beta = 0 (no reference is kept), as in TRL. */
  kl?: number;
  /** Mean entropy of the policy over completion tokens (first update pass). */
  entropy: number;
  /** Share of active tokens whose gradient the clip removed (TRL's definition), over every update pass. */
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  /** Share of completions the accuracy reward scored 1 (absent without an accuracy reward). */
  accuracy?: number;
  /** Share of completions the format reward scored 1 (absent without a format reward). */
  format_rate?: number;
  /** Optimizer updates taken this step (num_iterations x mini-batches; fewer when gradients were not finite). */
  updates: number;
  /** Groups whose rewards were all equal, among every group sampled this step. */
  zero_variance_groups: number;
  /** Groups sampled, and used by the update (fewer under dynamic sampling). */
  groups_sampled: number;
  groups_used: number;
  /** Rollout batches sampled this step (> 1 only under dynamic sampling). */
  rollout_batches: number;
  /** Completion tokens generated per second of sampling, and sequence tokens per second of learning. */
  'tokens_per_second/sample': number;
  'tokens_per_second/learn': number;
  /** Wall-clock seconds of each phase. */
  'time/sample': number;
  'time/score': number;
  'time/learn': number;
  'time/total': number;
  /** Reward calls that threw, timed out or returned a non-number (each scored 0). */
  reward_errors: number;
  /** Each reward's unweighted mean and std over every completion sampled this step: rewards/<name>/mean|std. */
  [key: `rewards/${string}`]: number;
  /**
   * Per reward that failed this step: reward_errors/<name> failed calls of reward_calls/<name> calls (one per
   * completion scored; a scoped reward's on the completions it applies to); absent when no reward failed.
   */
  [key: `reward_errors/${string}`]: number;
  [key: `reward_calls/${string}`]: number;
  /** reward_reasons/<name>/<reason>: completions the reward scored for that reason (RewardContext.note). */
  [key: `reward_reasons/${string}`]: number;
} & CompletionMetrics &
  ReflectionMetrics;

/** The key of a reward's mean or std. */
export function rewardKey(name: string, stat: 'mean' | 'std'): `rewards/${string}` {
  return `rewards/${name}/${stat}`;
}

/** The reward names a record carries (rewards/<name>/mean), in key order. */
export function rewardNames(m: Readonly<Record<string, unknown>>): string[] {
  const names: string[] = [];
  for (const k of Object.keys(m)) {
    const r = /^rewards\/(.+)\/mean$/.exec(k);
    if (r) names.push(r[1]);
  }
  return names;
}

/** A reward's mean and std from a record (undefined when the record has no such reward). */
export function rewardStats(m: Readonly<Record<string, unknown>>, name: string): MeanStd | undefined {
  const mean = m[rewardKey(name, 'mean')];
  const std = m[rewardKey(name, 'std')];
  return typeof mean === 'number' ? { mean, std: typeof std === 'number' ? std : 0 } : undefined;
}

/** Per failing reward, its failed calls and its calls, from reward_errors/<name> and reward_calls/<name>. */
export function rewardErrorCounts(
  m: Readonly<Record<string, unknown>>,
): Record<string, { errors: number; calls: number }> {
  const out: Record<string, { errors: number; calls: number }> = {};
  for (const [k, v] of Object.entries(m)) {
    const r = /^reward_errors\/(.+)$/.exec(k);
    if (!r || typeof v !== 'number') continue;
    const calls = m[`reward_calls/${r[1]}`];
    out[r[1]] = { errors: v, calls: typeof calls === 'number' ? calls : 0 };
  }
  return out;
}

/** Per reward, the count of each reason it noted, from reward_reasons/<name>/<reason> (reasons hold no '/'). */
export function rewardReasons(m: Readonly<Record<string, unknown>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [k, v] of Object.entries(m)) {
    const r = /^reward_reasons\/(.+)\/([^/]+)$/.exec(k);
    if (r && typeof v === 'number') (out[r[1]] ??= {})[r[2]] = v;
  }
  return out;
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

/** Reflective-word frequencies per 1,000 words; `reflection/total` sums the paper's whole list (REFLECTIVE_WORDS). */
export function reflectionMetrics(texts: readonly string[]): ReflectionMetrics {
  const stats = reflectiveWordFrequency(texts, REFLECTIVE_WORDS);
  const by = new Map(stats.words.map((w) => [w.word, w.per1000Words]));
  const out = { 'reflection/total': stats.words.reduce((a, w) => a + w.per1000Words, 0) } as ReflectionMetrics;
  for (const w of LOGGED_REFLECTIVE_WORDS) out[`reflection/${w}`] = by.get(w) ?? 0;
  return out;
}

/** Completion length statistics (TRL's completions/* keys); terminated ones are those not truncated. */
export function lengthMetrics(lengths: readonly number[], truncated: readonly boolean[]): CompletionMetrics {
  const stats = (xs: number[]) =>
    xs.length === 0
      ? { mean: 0, min: 0, max: 0 }
      : { mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) };
  const all = stats([...lengths]);
  const term = stats(lengths.filter((_, i) => !truncated[i]));
  return {
    'completions/mean_length': all.mean,
    'completions/min_length': all.min,
    'completions/max_length': all.max,
    'completions/clipped_ratio': truncated.length > 0 ? truncated.filter(Boolean).length / truncated.length : 0,
    'completions/mean_terminated_length': term.mean,
    'completions/min_terminated_length': term.min,
    'completions/max_terminated_length': term.max,
  };
}

/** A number in at most `digits` significant digits, exponent form for tiny and huge magnitudes. */
function short(x: number, digits = 3): string {
  const a = Math.abs(x);
  if (x === 0) return '0';
  if (a < 1e-3 || a >= 1e5) return x.toExponential(1);
  return String(Number(x.toPrecision(digits)));
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * The metrics a person watches, as short name/value texts in display order (the progress line and the log line
 * show these): reward (± std), accuracy, format, mean length, KL, entropy, zero-std share, grad norm, lr.
 */
export function progressMetrics(m: StepMetrics): Record<string, string> {
  const out: Record<string, string> = { reward: `${m.reward.toFixed(3)} ±${short(m.reward_std)}` };
  if (m.accuracy !== undefined) out.acc = pct(m.accuracy);
  if (m.format_rate !== undefined) out.format = pct(m.format_rate);
  out.len = `${m['completions/mean_length'].toFixed(0)} (max ${m['completions/max_length']})`;
  if (m.kl !== undefined) out.kl = short(m.kl);
  out.entropy = short(m.entropy);
  out.zero_std = pct(m.frac_reward_zero_std);
  out.grad_norm = short(m.grad_norm);
  out.lr = m.learning_rate.toExponential(1);
  return out;
}

/** A one-line summary for logs: {@link progressMetrics} joined. */
export function formatStepSummary(m: StepMetrics): string {
  return Object.entries(progressMetrics(m))
    .map(([k, v]) => `${k} ${v}`)
    .join(' | ');
}

/** Options of {@link learningSignalWatch}. */
export interface LearningSignalWatchOptions {
  /** Consecutive steps with the format reward at 0 on every completion before the warning (default 10). */
  formatZeroSteps?: number;
  /** After the first no-signal warning, a count at most every this many steps (default 10). */
  repeatEvery?: number;
}

/**
 * Watches the step metrics for runs that cannot learn, and says so in words (one warning each, then a count):
 * - no learning signal: every group of a step had equal rewards (frac_reward_zero_std = 1), so every advantage
 *   is 0 and the policy-gradient term vanishes. Warned at once, then at most every `repeatEvery` steps with a count.
 * - the format reward at 0 for every completion for `formatZeroSteps` steps in a row: the completions never take
 *   the expected form, most often because the prompt template does not ask for it. Warned once.
 */
export function learningSignalWatch(o: LearningSignalWatchOptions = {}): { step: (m: StepMetrics) => string[] } {
  const formatZeroSteps = o.formatZeroSteps ?? 10;
  const repeatEvery = o.repeatEvery ?? 10;
  let zeroSteps = 0;
  let lastWarned: number | null = null;
  let formatStreak = 0;
  let formatWarned = false;
  return {
    step: (m) => {
      const out: string[] = [];
      if (m.groups_sampled > 0 && m.frac_reward_zero_std === 1) {
        zeroSteps++;
        if (lastWarned === null) {
          out.push(
            `step ${m.step}: no learning signal: all ${m.groups_sampled} groups have zero reward variance (every advantage is 0), so the step teaches nothing; the rewards may be constant for this model and data (frac_reward_zero_std in metrics.jsonl)`,
          );
          lastWarned = m.step;
        } else if (m.step - lastWarned >= repeatEvery) {
          out.push(
            `step ${m.step}: still no learning signal: ${zeroSteps} steps so far with every group zero-variance`,
          );
          lastWarned = m.step;
        }
      }
      if (m.format_rate === 0) formatStreak++;
      else formatStreak = 0;
      if (!formatWarned && formatStreak >= formatZeroSteps) {
        formatWarned = true;
        out.push(
          `steps ${m.step - formatStreak + 1}-${m.step}: the format reward was 0 for every completion; the completions never take the expected format: check that the prompt template asks for it (e.g. <think>…</think> <answer>…</answer>) and matches the format reward's mode`,
        );
      }
      return out;
    },
  };
}
