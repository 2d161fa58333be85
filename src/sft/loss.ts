/**
 * The SFT loss: mean negative log-likelihood over the target tokens of an optimizer batch. Every micro-batch's
 * gradient is scaled by 1 / (targets of the whole batch), so accumulating micro-batches gives the gradient of the
 * batch taken at once, however it is split (up to float summation order).
 */
import type { Model } from '../engine/model.ts';
import { countTargets, type SftExample } from './dataset.ts';
import { splitMicroBatches, type MicroBatchLimits } from './batching.ts';

/** What one optimizer batch's forward/backward saw. */
export interface BatchLossResult {
  /** Mean NLL per target token, at the weights before the step. */
  loss: number;
  targetTokens: number;
  /** All tokens run through the engine. */
  tokens: number;
}

/** d(loss)/d(logprob) of one sequence: -mask[t + 1] / total at logprob index t. */
export function nllLogprobGrad(ex: SftExample, totalTargets: number): Float32Array {
  const g = new Float32Array(ex.ids.length - 1);
  const w = -1 / totalTargets;
  for (let t = 1; t < ex.ids.length; t++) if (ex.mask[t]) g[t - 1] = w;
  return g;
}

/**
 * Accumulates into the model's gradients (call zeroGrad first) the gradient of the batch's mean target NLL, one
 * forward({train}) + backward per micro-batch (the engine keeps the activations of the last forward only).
 * `microBatches` are lists of positions into `batch`.
 */
export async function accumulateBatchGradient(
  model: Model,
  batch: readonly SftExample[],
  microBatches: number[][],
): Promise<BatchLossResult> {
  let targetTokens = 0;
  let tokens = 0;
  for (const ex of batch) {
    targetTokens += countTargets(ex.mask);
    tokens += ex.ids.length;
  }
  if (targetTokens === 0) return { loss: 0, targetTokens, tokens };
  let nll = 0;
  for (const mb of microBatches) {
    const seqs = mb.map((i) => batch[i]);
    const r = await model.forward(
      seqs.map((s) => s.ids),
      { train: true },
    );
    const grads = seqs.map((s, k) => {
      const lp = r.logprobs[k];
      for (let t = 1; t < s.ids.length; t++) if (s.mask[t]) nll -= lp[t - 1];
      return nllLogprobGrad(s, targetTokens);
    });
    await model.backward(grads);
  }
  return { loss: nll / targetTokens, targetTokens, tokens };
}

/** Mean target NLL of a data set under the current weights (no gradients), in micro-batches. */
export async function evaluateLoss(
  model: Model,
  examples: readonly SftExample[],
  limits: MicroBatchLimits,
): Promise<{ loss: number; targetTokens: number }> {
  let nll = 0;
  let targetTokens = 0;
  for (const mb of splitMicroBatches(
    examples.map((e) => e.ids.length),
    limits,
  )) {
    const seqs = mb.map((i) => examples[i]);
    const r = await model.forward(seqs.map((s) => s.ids));
    seqs.forEach((s, k) => {
      const lp = r.logprobs[k];
      for (let t = 1; t < s.ids.length; t++) {
        if (s.mask[t]) {
          nll -= lp[t - 1];
          targetTokens++;
        }
      }
    });
  }
  return { loss: targetTokens > 0 ? nll / targetTokens : NaN, targetTokens };
}
