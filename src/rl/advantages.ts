import { AhaError } from '../errors.ts';

/**
 * How the centred rewards are divided, with TRL's GRPOConfig.scale_rewards names:
 * 'group' divides by the std of the prompt's own group (the paper's A_i), 'batch' by the std of every reward in the
 * batch (PPO-Lite), 'none' not at all (Dr. GRPO: the group std adds a question-difficulty bias). The mean
 * subtracted is always the group's own, in all three modes, exactly as in TRL.
 */
export type ScaleRewards = 'group' | 'batch' | 'none';

/** Options of {@link groupAdvantages}. */
export interface AdvantageOptions {
  scaleRewards?: ScaleRewards;
  /** Added to the std before dividing; TRL hard-codes 1e-4. */
  eps?: number;
}

/** Advantages of a batch laid out as consecutive groups of `groupSize` completions of the same prompt. */
export interface GroupAdvantages {
  /** One advantage per completion, in the order of the rewards. */
  advantages: number[];
  /** Mean reward of each group. */
  groupMeans: number[];
  /** Unbiased (n-1) std of each group's rewards, whatever the scaling mode (TRL logs it even for 'none'). */
  groupStds: number[];
  /** Unbiased std of all rewards of the batch (the divisor in 'batch' mode). */
  batchStd: number;
  /** Groups whose std is zero (torch.isclose(std, 0): std <= 1e-8): they give no policy-gradient signal. */
  zeroVarianceGroups: number;
  /** zeroVarianceGroups / number of groups (TRL's frac_reward_zero_std, counted per group in every mode). */
  fracZeroStd: number;
}

/** torch.isclose(x, 0) with its default atol = 1e-8, rtol irrelevant at 0: what TRL calls a zero std. */
const ZERO_STD_ATOL = 1e-8;

function mean(xs: ArrayLike<number>, start = 0, end = xs.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s += xs[i];
  return s / (end - start);
}

/**
 * Unbiased sample standard deviation sqrt(sum (x - mean)^2 / (n - 1)), as torch.Tensor.std() computes it by
 * default (correction=1), which is what TRL applies to rewards. For a single value it returns 0 rather than
 * torch's NaN, as TRL does when num_generations is 1.
 */
export function sampleStd(xs: ArrayLike<number>, start = 0, end = xs.length): number {
  const n = end - start;
  if (n < 2) return 0;
  const m = mean(xs, start, end);
  let ss = 0;
  for (let i = start; i < end; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (n - 1));
}

function checkRewards(rewards: ArrayLike<number>, groupSize: number): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new AhaError(`advantages: group size must be a positive integer, got ${groupSize}`);
  }
  if (rewards.length % groupSize !== 0) {
    throw new AhaError(
      `advantages: ${rewards.length} rewards do not split into groups of ${groupSize} (num_generations)`,
    );
  }
  for (let i = 0; i < rewards.length; i++) {
    if (!Number.isFinite(rewards[i])) throw new AhaError(`advantages: reward ${i} is not finite (${rewards[i]})`);
  }
  return rewards.length / groupSize;
}

/**
 * GRPO advantages, TRL's `_generate_and_score_completions`: A_i = (r_i - mean_group) / (std + eps), where std is the
 * unbiased (n-1) std of the group ('group') or of the whole batch ('batch'), or A_i = r_i - mean_group ('none').
 * Rewards must be laid out group after group (completion j of prompt g at index g*groupSize + j).
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  opts: AdvantageOptions = {},
): GroupAdvantages {
  const scale = opts.scaleRewards ?? 'group';
  const eps = opts.eps ?? 1e-4;
  if (scale !== 'group' && scale !== 'batch' && scale !== 'none') {
    throw new AhaError(`advantages: scale_rewards must be 'group', 'batch' or 'none', got ${String(scale)}`);
  }
  if (!(eps >= 0)) throw new AhaError(`advantages: eps must be >= 0, got ${eps}`);
  const numGroups = checkRewards(rewards, groupSize);
  const groupMeans: number[] = [];
  const groupStds: number[] = [];
  let zeroVarianceGroups = 0;
  for (let g = 0; g < numGroups; g++) {
    const s = g * groupSize,
      e = s + groupSize;
    groupMeans.push(mean(rewards, s, e));
    const std = sampleStd(rewards, s, e);
    groupStds.push(std);
    if (std <= ZERO_STD_ATOL) zeroVarianceGroups++;
  }
  const batchStd = sampleStd(rewards);
  const advantages: number[] = new Array(rewards.length);
  for (let i = 0; i < rewards.length; i++) {
    const g = Math.floor(i / groupSize);
    const centred = rewards[i] - groupMeans[g];
    if (scale === 'none') advantages[i] = centred;
    else advantages[i] = centred / ((scale === 'group' ? groupStds[g] : batchStd) + eps);
  }
  return {
    advantages,
    groupMeans,
    groupStds,
    batchStd,
    zeroVarianceGroups,
    fracZeroStd: numGroups === 0 ? 0 : zeroVarianceGroups / numGroups,
  };
}

/** Result of {@link dynamicSamplingFilter}. */
export interface DynamicSamplingResult {
  /** Per group: true when every reward of the group is equal (zero std), so its advantages are all zero. */
  allEqual: boolean[];
  /** Indices of the groups that carry signal (not all-equal). */
  keepGroups: number[];
  /** Indices of the completions of those groups, in order. */
  keepCompletions: number[];
}

/**
 * DAPO's dynamic sampling test: which groups have all-equal rewards (all right or all wrong), hence zero advantage
 * and no gradient, so that a trainer can drop them and sample more prompts. "Equal" uses the same criterion as the
 * zero-variance count of {@link groupAdvantages} (unbiased std <= 1e-8).
 */
export function dynamicSamplingFilter(rewards: ArrayLike<number>, groupSize: number): DynamicSamplingResult {
  const numGroups = checkRewards(rewards, groupSize);
  const allEqual: boolean[] = [];
  const keepGroups: number[] = [];
  const keepCompletions: number[] = [];
  for (let g = 0; g < numGroups; g++) {
    const s = g * groupSize,
      e = s + groupSize;
    const equal = sampleStd(rewards, s, e) <= ZERO_STD_ATOL;
    allEqual.push(equal);
    if (!equal) {
      keepGroups.push(g);
      for (let i = s; i < e; i++) keepCompletions.push(i);
    }
  }
  return { allEqual, keepGroups, keepCompletions };
}
