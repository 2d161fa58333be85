import { AhaError } from '../errors.ts';
import type { Example, RewardContext, RewardFn } from './types.ts';

/** Options of DAPO's overlong soft penalty. */
export interface OverlongOptions {
  /** L_max: the generation limit (max_completion_length), in tokens. */
  maxLength: number;
  /** L_cache: the soft zone before L_max where the penalty ramps from 0 to -1 (DAPO: 4,096 of 20,480). */
  cacheLength: number;
}

function checkOverlong(o: OverlongOptions): void {
  if (!Number.isInteger(o.maxLength) || o.maxLength < 1) {
    throw new AhaError(`overlong penalty: maxLength must be a positive integer, got ${o.maxLength}`);
  }
  if (!Number.isInteger(o.cacheLength) || o.cacheLength < 0 || o.cacheLength > o.maxLength) {
    throw new AhaError(`overlong penalty: cacheLength must be an integer in [0, ${o.maxLength}], got ${o.cacheLength}`);
  }
}

/**
 * DAPO's soft overlong punishment (arXiv 2503.14476, Eq. 13; TRL's get_soft_overlong_punishment) of a length |y|:
 * 0 when |y| <= L_max - L_cache; ((L_max - L_cache) - |y|) / L_cache in between, reaching -1 at L_max; -1 beyond.
 */
export function overlongPenaltyValue(length: number, o: OverlongOptions): number {
  const free = o.maxLength - o.cacheLength;
  if (length <= free) return 0;
  if (length <= o.maxLength) return (free - length) / o.cacheLength;
  return -1;
}

function tokenCount(ctx: RewardContext, who: string): number {
  if (!ctx.completionIds) throw new AhaError(`${who}: needs the completion's token ids (ctx.completionIds)`);
  return ctx.completionIds.length;
}

/** DAPO's overlong soft penalty as a reward on the completion's token count (needs ctx.completionIds). */
export function overlongPenalty<E = Example>(o: OverlongOptions): RewardFn<E> {
  checkOverlong(o);
  return (_completion, _example, ctx) => overlongPenaltyValue(tokenCount(ctx, 'overlong penalty'), o);
}

/** Options of {@link lengthReward}. */
export interface LengthRewardOptions {
  /** Length at which the reward saturates at 1. */
  targetLength: number;
  /** Count tokens (ctx.completionIds, the default) or characters. */
  unit?: 'tokens' | 'chars';
}

/**
 * A simple length reward, min(length, target) / target in [0, 1]: pays for longer outputs up to a target.
 * For experiments on the length dynamics of R1-Zero (length grew unprompted there); it is easy to game with
 * filler, so pair it with an accuracy reward and a small weight.
 */
export function lengthReward<E = Example>(o: LengthRewardOptions): RewardFn<E> {
  if (!(o.targetLength > 0)) throw new AhaError(`length reward: targetLength must be > 0, got ${o.targetLength}`);
  const unit = o.unit ?? 'tokens';
  return (completion, _example, ctx) => {
    const len = unit === 'chars' ? completion.length : tokenCount(ctx, 'length reward');
    return Math.min(len, o.targetLength) / o.targetLength;
  };
}
