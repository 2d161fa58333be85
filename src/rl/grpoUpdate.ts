/**
 * GRPO's second phase: learn from a rollout. Group-relative advantages; then num_iterations passes, each split into
 * steps_per_generation mini-batches by prompt, each mini-batch one AdamW update whose gradient is accumulated over
 * token-budgeted micro-batches with the clipped-surrogate loss of grpoLoss.ts, normalised over the whole mini-batch.
 * pi_old is the sampling policy: its log-probs come from the sampler, so on the first (on-policy) update the ratio is
 * exactly 1 and the current log-probs stand in for them. The KL term reads a frozen reference copy (beta > 0 only).
 */
import type { Model } from '../engine/model.ts';
import type { DataParallel } from '../parallel/dataParallel.ts';
import { groupAdvantages } from './advantages.ts';
import { batchCounts, grpoLoss, grpoNormalizer, type GrpoLossOptions } from './grpoLoss.ts';

import type { RolloutGroup } from './grpoRollout.ts';
import type { Recipe } from './recipe.ts';
import { buildTrainSequence, packMicroBatches, splitGroups, type TrainSequence } from './rollout.ts';

/** Sums over the update, for the step's metrics. */
export interface UpdateStats {
  /** Optimizer steps taken (skipped non-finite ones excluded). */
  updates: number;
  gradNormSum: number;
  /** Sum over the updates taken of each mini-batch's loss. */
  lossSum: number;
  clipLow: number;
  clipHigh: number;
  clipTokens: number;
  /** KL and entropy over the first pass (the policy that sampled). */
  klSum: number;
  klTokens: number;
  entSum: number;
  entTokens: number;
  /** Tokens through forward and backward. */
  learnTokens: number;
}

/** Points where a caller joins the update. */
export interface UpdateHooks {
  /**
   * Called after a mini-batch's gradients are complete and before the optimizer step reads them: where data-parallel
   * training averages the gradients across ranks (an all-reduce over the gradient buffer).
   */
  reduceGradients?: (model: Model) => Promise<void>;
}

/** What an update reads. */
export interface UpdateContext {
  recipe: Recipe;
  model: Model;
  lossOptions: GrpoLossOptions;
  log: (line: string) => void;
  hooks?: UpdateHooks;
  /**
   * Data-parallel run: this rank learns from its share of each mini-batch's groups (normalised over the whole
   * mini-batch), hooks.reduceGradients sums the gradients, and the update's sums are summed across ranks.
   */
  parallel?: DataParallel | null;
}

/** The training sequences of the groups, in group order (G per group). */
function trainSequences(recipe: Recipe, groups: readonly RolloutGroup[]): TrainSequence[] {
  const maskTruncated = recipe.grpo.mask_truncated_completions;
  return groups.flatMap((g) =>
    g.completions.map((c) => buildTrainSequence(c, maskTruncated && c.finishReason === 'length')),
  );
}

/** Updates the policy on `groups` at learning rate `lr`; `step` names the step in notices. */
export async function updatePolicy(
  ctx: UpdateContext,
  groups: readonly RolloutGroup[],
  step: number,
  lr: number,
): Promise<UpdateStats> {
  const { recipe, model } = ctx;
  const { grpo, training: t } = recipe;
  const G = grpo.num_generations;
  const s: UpdateStats = {
    updates: 0,
    gradNormSum: 0,
    lossSum: 0,
    clipLow: 0,
    clipHigh: 0,
    clipTokens: 0,
    klSum: 0,
    klTokens: 0,
    entSum: 0,
    entTokens: 0,
    learnTokens: 0,
  };
  if (groups.length === 0) return s;
  const adv = groupAdvantages(
    groups.flatMap((g) => g.totals),
    G,
    { scaleRewards: grpo.scale_rewards },
  );
  const seqs = trainSequences(recipe, groups);
  const refLogp: (Float32Array | undefined)[] = new Array(seqs.length);
  const miniBatches = splitGroups(groups.length, t.steps_per_generation).map((gs) =>
    gs.flatMap((g) => Array.from({ length: G }, (_, j) => g * G + j)),
  );
  const offPolicy = grpo.num_iterations > 1 || miniBatches.length > 1;
  for (let it = 0; it < grpo.num_iterations; it++) {
    for (const mb of miniBatches) {
      model.zeroGrad();
      let miniBatchLoss = 0;
      const normalizer = grpoNormalizer(
        grpo.loss_type,
        batchCounts(
          grpo.loss_type,
          mb.map((i) => seqs[i]),
          grpo.max_completion_length,
        ),
      );
      const [lo, hi] = ctx.parallel ? ctx.parallel.share(mb.length / G) : [0, mb.length / G];
      const mine = mb.slice(lo * G, hi * G);
      for (const micro of packMicroBatches(
        mine.map((i) => seqs[i].tokens.length),
        t.micro_batch_tokens,
      )) {
        const idx = micro.map((k) => mine[k]);
        const tokens = idx.map((i) => seqs[i].tokens);
        if (grpo.beta > 0 && refLogp[idx[0]] === undefined) {
          // Before the train forward: any forward discards the activations backward needs.
          const r = await model.forward(tokens, { reference: true });
          idx.forEach((i, k) => (refLogp[i] = Float32Array.from(r.logprobs[k])));
        }
        const f = await model.forward(tokens, { train: true, entropy: it === 0 });
        const loss = grpoLoss(
          {
            logp: f.logprobs,
            oldLogp: offPolicy ? idx.map((i) => seqs[i].oldLogp) : f.logprobs,
            refLogp: grpo.beta > 0 ? idx.map((i) => refLogp[i]!) : undefined,
            advantages: idx.map((i) => adv.advantages[i]),
            mask: idx.map((i) => seqs[i].mask),
          },
          { ...ctx.lossOptions, normalizer },
        );
        await model.backward(loss.dLogp);
        miniBatchLoss += loss.loss;
        s.learnTokens += tokens.reduce((a, x) => a + x.length, 0);
        s.clipLow += loss.stats.lowClipped;
        s.clipHigh += loss.stats.highClipped;
        s.clipTokens += loss.stats.numTokens;
        if (it === 0) {
          s.klSum += loss.stats.klSum;
          s.klTokens += loss.stats.numTokens;
          idx.forEach((i, k) => {
            const m = seqs[i].mask,
              e = f.entropy![k];
            for (let p = 0; p < m.length; p++)
              if (m[p] === 1) {
                s.entSum += e[p];
                s.entTokens++;
              }
          });
        }
      }
      // ---- gradients complete: the data-parallel reduction point ----
      await ctx.hooks?.reduceGradients?.(model);
      const r = await model.step({
        lr,
        weightDecay: t.weight_decay,
        maxGradNorm: t.max_grad_norm,
        beta1: t.adam_beta1,
        beta2: t.adam_beta2,
      });
      if (r.skipped) ctx.log(`grpo: step ${step}: gradient not finite (norm ${r.gradNorm}); update skipped`);
      else {
        s.updates++;
        s.gradNormSum += r.gradNorm;
        s.lossSum += miniBatchLoss;
      }
    }
  }
  if (ctx.parallel) {
    // updates and gradNormSum are the same on every rank (they step with the same summed gradient).
    const keys = ['lossSum', 'clipLow', 'clipHigh', 'clipTokens', 'klSum', 'klTokens', 'entSum', 'entTokens'] as const;
    const sums = ctx.parallel.reduce([...keys.map((k) => s[k]), s.learnTokens]);
    keys.forEach((k, i) => (s[k] = sums[i]));
    s.learnTokens = sums[keys.length];
  }
  return s;
}
