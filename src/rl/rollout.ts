/**
 * Rollouts: G sampled completions per prompt, and the token sequences, masks and sampling log-probs the GRPO
 * update trains on. Pure bookkeeping around Model.generate; the indexing convention is the engine's: for a
 * sequence s, logprobs[t] = log p(s[t+1] | s[..t]), so completion token j (at position P + j after a P-token
 * prompt) has its log-prob at index P - 1 + j.
 */
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { fnv1a32 } from '../data/rng.ts';

/** One sampled completion of one prompt. */
export interface Completion {
  /** Index of its group (prompt) in the rollout. */
  group: number;
  promptIds: number[];
  /** Sampled tokens; ends with the stop token when finishReason is 'stop'. */
  completionIds: number[];
  /** log pi_old of each completion token, under the model before temperature (what the loss compares against). */
  samplingLogprobs: number[];
  finishReason: 'stop' | 'length';
}

/** Options of {@link sampleCompletions}. */
export interface RolloutOptions {
  numGenerations: number;
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  stopTokenIds: readonly number[];
  /** One seed per completion, prompt-major (completion j of prompt g at g * G + j). */
  seeds: readonly number[];
  /** Completions per engine call (bounds the KV cache); default all at once. */
  batchSize?: number;
}

/**
 * A deterministic 32-bit sampling seed for one completion, from the run seed and where the completion sits (step,
 * rollout batch within the step, prompt, completion): a resumed run samples exactly what the uninterrupted run
 * would have.
 */
export function completionSeed(seed: number, step: number, batch: number, prompt: number, completion: number): number {
  return fnv1a32(`grpo:${seed}:${step}:${batch}:${prompt}:${completion}`);
}

/** Samples `numGenerations` completions of each prompt; the result is prompt-major (G consecutive per group). */
export async function sampleCompletions(
  model: Model,
  prompts: readonly number[][],
  o: RolloutOptions,
): Promise<Completion[]> {
  const G = o.numGenerations;
  const n = prompts.length * G;
  if (o.seeds.length !== n) throw new AhaError(`rollout: ${o.seeds.length} seeds for ${n} completions`);
  const flat: number[][] = [];
  for (const p of prompts) for (let j = 0; j < G; j++) flat.push(p);
  const bs = o.batchSize ?? n;
  const out: Completion[] = [];
  for (let s = 0; s < n; s += bs) {
    const chunk = flat.slice(s, s + bs);
    const samples = await model.generate(chunk, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topP: o.topP,
      topK: o.topK,
      stopTokenIds: [...o.stopTokenIds],
      seeds: o.seeds.slice(s, s + bs) as number[],
    });
    samples.forEach((x, k) => {
      const i = s + k;
      out.push({
        group: Math.floor(i / G),
        promptIds: flat[i],
        completionIds: x.tokens,
        samplingLogprobs: x.logprobs,
        finishReason: x.finishReason,
      });
    });
  }
  return out;
}

/** One training sequence: prompt and completion tokens, with per-log-prob-position arrays (length tokens - 1). */
export interface TrainSequence {
  tokens: Int32Array;
  promptLength: number;
  completionLength: number;
  /**
   * 1 on the log-prob positions of completion tokens (the stop token included when emitted), 0 on prompt
   * positions: prompt tokens get no gradient. All 0 when the completion is masked out (truncated completions under
   * mask_truncated_completions).
   */
  mask: Float32Array;
  /** Sampling log-probs on the completion positions, 0 elsewhere. */
  oldLogp: Float32Array;
}

/** Builds the training sequence of a completion; `maskOut` zeroes its whole mask. */
export function buildTrainSequence(
  c: Pick<Completion, 'promptIds' | 'completionIds' | 'samplingLogprobs'>,
  maskOut = false,
): TrainSequence {
  const P = c.promptIds.length;
  const C = c.completionIds.length;
  if (P < 1) throw new AhaError('rollout: empty prompt');
  if (C < 1) throw new AhaError('rollout: empty completion');
  if (c.samplingLogprobs.length !== C)
    throw new AhaError(`rollout: ${c.samplingLogprobs.length} log-probs for ${C} completion tokens`);
  const tokens = new Int32Array(P + C);
  tokens.set(c.promptIds, 0);
  tokens.set(c.completionIds, P);
  const mask = new Float32Array(P + C - 1);
  const oldLogp = new Float32Array(P + C - 1);
  for (let j = 0; j < C; j++) {
    if (!maskOut) mask[P - 1 + j] = 1;
    oldLogp[P - 1 + j] = c.samplingLogprobs[j];
  }
  return { tokens, promptLength: P, completionLength: C, mask, oldLogp };
}

/**
 * Splits sequences (by index, in order) into micro-batches of at most `budget` tokens each; a sequence longer than
 * the budget gets a micro-batch of its own.
 */
export function packMicroBatches(lengths: readonly number[], budget: number): number[][] {
  if (!(budget >= 1)) throw new AhaError(`micro_batch_tokens must be >= 1 (got ${budget})`);
  const out: number[][] = [];
  let cur: number[] = [];
  let used = 0;
  lengths.forEach((len, i) => {
    if (cur.length > 0 && used + len > budget) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(i);
    used += len;
  });
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Splits `n` groups into `k` contiguous, near-equal chunks (the mini-batches of steps_per_generation). */
export function splitGroups(n: number, k: number): number[][] {
  const out: number[][] = [];
  const parts = Math.min(k, n);
  for (let p = 0; p < parts; p++) {
    const lo = Math.floor((p * n) / parts),
      hi = Math.floor(((p + 1) * n) / parts);
    out.push(Array.from({ length: hi - lo }, (_, i) => lo + i));
  }
  return out;
}
