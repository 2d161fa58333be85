import { AhaError } from '../errors.ts';

/**
 * How per-token losses are aggregated into the scalar loss, with TRL's GRPOConfig.loss_type names and meanings
 * (trl/trainer/grpo_trainer.py `_compute_loss`, grpo_config.py docs):
 * - 'grpo': mean over each sequence's own tokens, then mean over sequences (the DeepSeekMath/R1 form; length-biased).
 * - 'bnpo': sum over tokens / number of tokens of the LOCAL (micro-)batch. TRL further divides by the number of
 *   gradient-accumulation steps, so accumulated micro-batches only match a full-batch token mean when they hold
 *   equal token counts; pass `normalizer = localTokens * accumulationSteps` to reproduce TRL exactly.
 * - 'dr_grpo': sum over tokens / (number of sequences * max_completion_length), a constant (Dr. GRPO).
 * - 'dapo' (TRL's default): sum over tokens / number of active tokens of the whole generation batch (TRL's
 *   num_items_in_batch, gathered over processes and counted BEFORE mask_truncated_completions zeroes truncated
 *   completions), so micro-batches of one generation batch add up to the full-batch loss.
 */
export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

/** Every loss type, in TRL's spelling. */
export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];

/** Per-token values of one completion: a Float32Array from the engine, or plain numbers in tests. */
export type TokenValues = ArrayLike<number>;

/** The sequences of one (micro-)batch. Every per-token array of sequence i has the same length. */
export interface GrpoLossInput {
  /** log pi_theta(token) under the current policy: the values the gradient is taken against. */
  logp: TokenValues[];
  /**
   * log pi_old(token) under the policy that sampled the completion. Omit when num_iterations = 1 and the batch is
   * used once right after sampling: TRL then uses logp.detach(), so rho = 1 with gradient rho * dlogp.
   */
  oldLogp?: TokenValues[];
  /** log pi_ref(token) under the reference model; required when beta > 0. */
  refLogp?: TokenValues[];
  /** One advantage per sequence (constant over its tokens). */
  advantages: ArrayLike<number>;
  /**
   * 1 for completion tokens that count, 0 for padding or excluded tokens (after EOS, truncated completions under
   * mask_truncated_completions). Omitted: every token counts.
   */
  mask?: TokenValues[];
}

/** Options of {@link grpoLoss}; names are TRL's in camelCase. */
export interface GrpoLossOptions {
  lossType: LossType;
  /** Lower clip: the ratio is clipped below at 1 - epsilon (TRL default 0.2). */
  epsilon: number;
  /** Upper clip: 1 + epsilonHigh (DAPO's clip-higher, 0.28); defaults to epsilon. */
  epsilonHigh?: number;
  /** KL coefficient; 0 disables the KL term and makes refLogp unnecessary. */
  beta: number;
  /** max_completion_length, needed by 'dr_grpo' unless `normalizer` is given. */
  maxCompletionLength?: number;
  /**
   * Denominator override for micro-batching; see {@link grpoNormalizer}. 'grpo': the number of sequences the
   * per-sequence means are averaged over; 'dr_grpo': numSequences * maxCompletionLength; 'dapo'/'bnpo': the token
   * count. Passing the full batch's value to every micro-batch makes their losses and gradients sum to the full
   * batch's. Default: the value for the sequences passed in (local batch).
   */
  normalizer?: number;
}

/** Diagnostics over the active tokens of the batch passed in (TRL's masked_batch_mean of each quantity). */
export interface GrpoLossStats {
  /**
   * Share of active tokens where clipping removed the gradient, TRL's definition: low = rho < 1 - epsilon with
   * A < 0, high = rho > 1 + epsilonHigh with A > 0, total = low + high (the two are disjoint).
   */
  clipFraction: { low: number; high: number; total: number };
  /** Mean per-token k3 KL estimate exp(ref - logp) - (ref - logp) - 1; null without refLogp. */
  meanKl: number | null;
  /** Mean importance ratio rho = exp(logp - oldLogp). */
  meanRatio: number;
  /** Active (masked-in) tokens; with the sums below, lets micro-batch stats be pooled exactly. */
  numTokens: number;
  lowClipped: number;
  highClipped: number;
  klSum: number;
  ratioSum: number;
}

/** Loss, its gradient w.r.t. every token's logp (0 on masked tokens), and diagnostics. */
export interface GrpoLossResult {
  loss: number;
  dLogp: Float32Array[];
  stats: GrpoLossStats;
}

/** Counts of a whole batch, from which {@link grpoNormalizer} derives the full-batch denominator. */
export interface BatchCounts {
  numSequences: number;
  /** Active tokens (sum of the mask) over the whole batch; for 'dapo' TRL counts them before truncation masking. */
  numTokens: number;
  maxCompletionLength?: number;
}

/**
 * The denominator of a loss type for a whole batch (TRL clamps token counts to >= 1). Give it to every
 * micro-batch's {@link grpoLoss} as `normalizer` so that gradient accumulation sums to the full-batch gradient.
 * For 'bnpo' this is the full-batch token mean, which is NOT what TRL accumulates (see {@link LossType}).
 */
export function grpoNormalizer(lossType: LossType, batch: BatchCounts): number {
  switch (lossType) {
    case 'grpo':
      return Math.max(1, batch.numSequences);
    case 'dr_grpo': {
      const L = batch.maxCompletionLength;
      if (L === undefined || !(L > 0)) {
        throw new AhaError(`grpo loss: loss_type 'dr_grpo' needs max_completion_length > 0, got ${L}`);
      }
      return Math.max(1, batch.numSequences) * L;
    }
    case 'bnpo':
    case 'dapo':
      return Math.max(1, batch.numTokens);
    default:
      throw new AhaError(`grpo loss: unknown loss_type '${String(lossType)}' (grpo, bnpo, dr_grpo, dapo)`);
  }
}

/** What {@link batchCounts} needs of each sequence. */
export interface CountedSequence {
  /** Completion tokens as sampled, before any truncation masking. */
  completionLength: number;
  /** 1 on the positions that carry loss. */
  mask: ArrayLike<number>;
}

/**
 * A batch's counts for {@link grpoNormalizer}, with each loss type's token count as TRL takes it: 'dapo' counts
 * completion tokens before truncation masking (its global token normaliser), every other type the masked tokens.
 */
export function batchCounts(
  lossType: LossType,
  seqs: readonly CountedSequence[],
  maxCompletionLength?: number,
): BatchCounts {
  let numTokens = 0;
  for (const s of seqs) {
    if (lossType === 'dapo') numTokens += s.completionLength;
    else for (let i = 0; i < s.mask.length; i++) numTokens += s.mask[i];
  }
  return { numSequences: seqs.length, numTokens, maxCompletionLength };
}

function checkShapes(input: GrpoLossInput, beta: number): void {
  const n = input.logp.length;
  if (input.advantages.length !== n) {
    throw new AhaError(`grpo loss: ${input.advantages.length} advantages for ${n} sequences`);
  }
  const others: [string, TokenValues[] | undefined][] = [
    ['oldLogp', input.oldLogp],
    ['refLogp', input.refLogp],
    ['mask', input.mask],
  ];
  for (const [name, arr] of others) {
    if (arr === undefined) continue;
    if (arr.length !== n) throw new AhaError(`grpo loss: ${name} has ${arr.length} sequences, logp has ${n}`);
    for (let i = 0; i < n; i++) {
      if (arr[i].length !== input.logp[i].length) {
        throw new AhaError(
          `grpo loss: sequence ${i}: ${name} has ${arr[i].length} tokens, logp has ${input.logp[i].length}`,
        );
      }
    }
  }
  if (beta > 0 && input.refLogp === undefined) throw new AhaError('grpo loss: beta > 0 needs refLogp');
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(input.advantages[i])) {
      throw new AhaError(`grpo loss: advantage of sequence ${i} is not finite (${input.advantages[i]})`);
    }
    const m = input.mask?.[i];
    if (m) {
      for (let t = 0; t < m.length; t++) {
        if (m[t] !== 0 && m[t] !== 1) throw new AhaError(`grpo loss: mask[${i}][${t}] is ${m[t]}, not 0 or 1`);
      }
    }
  }
}

/**
 * The clipped-surrogate GRPO loss of TRL's GRPOTrainer with its exact gradient w.r.t. each token's logp.
 *
 * Per active token: l_t = -min(rho*A, clip(rho, 1-epsilon, 1+epsilonHigh)*A) + beta*KL_t, with
 * rho = exp(logp - oldLogp) and KL_t = exp(ref - logp) - (ref - logp) - 1 (k3 estimator, >= 0). Then
 * aggregated by `lossType` (see {@link LossType}).
 *
 * Gradient, per active token, times the token's aggregation weight:
 *   d(-min)/dlogp = 0 where the clipped branch is strictly smaller (rho > 1+epsHigh with A > 0, or rho < 1-eps
 *   with A < 0: the clamp is flat there), else -rho*A (ties only occur when the clamp is inactive, where torch
 *   splits the gradient between two equal branches, or when A = 0);
 *   d(beta*KL)/dlogp = beta * (1 - exp(ref - logp)).
 * Computed in float64, returned as float32 for the engine; the loss stays a float64 number.
 */
export function grpoLoss(input: GrpoLossInput, opts: GrpoLossOptions): GrpoLossResult {
  const { lossType, epsilon, beta } = opts;
  const epsilonHigh = opts.epsilonHigh ?? epsilon;
  if (!(epsilon >= 0) || !(epsilonHigh >= 0)) {
    throw new AhaError(`grpo loss: epsilon and epsilon_high must be >= 0, got ${epsilon}, ${epsilonHigh}`);
  }
  if (!(beta >= 0)) throw new AhaError(`grpo loss: beta must be >= 0, got ${beta}`);
  checkShapes(input, beta);
  const n = input.logp.length;
  const lo = 1 - epsilon,
    hi = 1 + epsilonHigh;
  const useKl = beta > 0;

  const seqTokens: number[] = new Array(n);
  let numTokens = 0;
  for (let i = 0; i < n; i++) {
    const m = input.mask?.[i];
    let c = input.logp[i].length;
    if (m) {
      c = 0;
      for (let t = 0; t < m.length; t++) c += m[t];
    }
    seqTokens[i] = c;
    numTokens += c;
  }

  let normalizer = opts.normalizer;
  if (normalizer === undefined) {
    normalizer = grpoNormalizer(lossType, {
      numSequences: n,
      numTokens,
      maxCompletionLength: opts.maxCompletionLength,
    });
  } else {
    if (!LOSS_TYPES.includes(lossType)) {
      throw new AhaError(`grpo loss: unknown loss_type '${String(lossType)}' (grpo, bnpo, dr_grpo, dapo)`);
    }
    if (!(normalizer > 0) || !Number.isFinite(normalizer)) {
      throw new AhaError(`grpo loss: normalizer must be a finite number > 0, got ${normalizer}`);
    }
  }

  let loss = 0;
  let lowClipped = 0,
    highClipped = 0,
    klSum = 0,
    ratioSum = 0;
  const dLogp: Float32Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const lp = input.logp[i];
    const old = input.oldLogp?.[i];
    const ref = input.refLogp?.[i];
    const m = input.mask?.[i];
    const A = input.advantages[i];
    const T = lp.length;
    const g = new Float32Array(T);
    dLogp[i] = g;
    // Aggregation weight of each active token of this sequence; the mean over its tokens is clamped like TRL's
    // completion_mask.sum(-1).clamp(min=1).
    const w = lossType === 'grpo' ? 1 / (normalizer * Math.max(1, seqTokens[i])) : 1 / normalizer;
    let seqLoss = 0;
    for (let t = 0; t < T; t++) {
      if (m && m[t] === 0) continue;
      const rho = old ? Math.exp(lp[t] - old[t]) : 1;
      const clipped = rho < lo ? lo : rho > hi ? hi : rho;
      const l1 = rho * A,
        l2 = clipped * A;
      let tokLoss: number, tokGrad: number;
      if (l2 < l1) {
        tokLoss = -l2;
        tokGrad = 0;
      } else {
        tokLoss = -l1;
        tokGrad = -rho * A;
      }
      if (rho < lo && A < 0) lowClipped++;
      if (rho > hi && A > 0) highClipped++;
      ratioSum += rho;
      if (ref) {
        const d = ref[t] - lp[t];
        const ed = Math.exp(d);
        const kl = ed - d - 1;
        klSum += kl;
        if (useKl) {
          tokLoss += beta * kl;
          tokGrad += beta * (1 - ed);
        }
      }
      seqLoss += tokLoss;
      g[t] = tokGrad * w;
    }
    loss += seqLoss * w;
  }

  const denom = Math.max(1, numTokens);
  return {
    loss,
    dLogp,
    stats: {
      clipFraction: {
        low: lowClipped / denom,
        high: highClipped / denom,
        total: (lowClipped + highClipped) / denom,
      },
      meanKl: input.refLogp ? klSum / denom : null,
      meanRatio: ratioSum / denom,
      numTokens,
      lowClipped,
      highClipped,
      klSum,
      ratioSum,
    },
  };
}
