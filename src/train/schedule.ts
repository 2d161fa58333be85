import { AhaError } from '../errors.ts';

/** Learning-rate decay after warmup, as Hugging Face's `lr_scheduler_type`. */
export type LrSchedulerType = 'linear' | 'cosine' | 'constant';

/** A learning-rate schedule over optimizer steps. */
export interface LrSchedule {
  type: LrSchedulerType;
  /** Peak learning rate, reached at the end of warmup. */
  learningRate: number;
  /** Optimizer steps of linear warmup from 0. */
  warmupSteps: number;
  /** Optimizer steps of the whole run. */
  totalSteps: number;
  /** Floor of the decay as a fraction of the peak (transformers' `min_lr_rate`); ignored by 'constant'. */
  minLrRatio?: number;
}

/**
 * Warmup steps as transformers' `TrainingArguments.get_warmup_steps`: `warmup_steps` when positive, else
 * ceil(total * warmup_ratio).
 */
export function resolveWarmupSteps(totalSteps: number, warmupSteps: number, warmupRatio: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(totalSteps * warmupRatio);
}

/**
 * The learning rate of the optimizer step that follows `step` completed steps (0 for the first), with the lambdas
 * of transformers' schedulers so that a recipe's curve carries over: warmup `step / warmup` (the very first step
 * runs at lr 0, as there), then `linear` max(0, (total - step) / (total - warmup)), `cosine` 0.5 (1 + cos(pi p))
 * with p = (step - warmup) / (total - warmup), or `constant` 1. A decay factor f becomes
 * min_lr_ratio + (1 - min_lr_ratio) f, as `cosine_with_min_lr` does, here for linear too.
 */
export function learningRateAt(s: LrSchedule, step: number): number {
  const { type, learningRate, warmupSteps, totalSteps } = s;
  const minRatio = s.minLrRatio ?? 0;
  if (!(Number.isInteger(step) && step >= 0))
    throw new AhaError(`learningRateAt: step must be a non-negative integer (got ${step})`);
  if (!(minRatio >= 0 && minRatio <= 1)) throw new AhaError(`min_lr_ratio must be in [0, 1] (got ${minRatio})`);
  if (step < warmupSteps) return (learningRate * step) / Math.max(1, warmupSteps);
  if (type === 'constant') return learningRate;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  const decay = type === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return learningRate * (minRatio + (1 - minRatio) * Math.max(0, decay));
}
