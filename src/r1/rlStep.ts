/**
 * The GRPO step of the pipeline's RL stages: the stage's draw of reasoning prompts (plus any rows a stage adds),
 * R1's rule rewards, and a run that resumes its own checkpoints and stops at one when its budget is spent.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import type { Example } from '../rewards/types.ts';
import { grpoTrain } from '../rl/grpoTrainer.ts';
import { formatStepSummary } from '../rl/metrics.ts';
import type { RewardSpec } from '../rl/recipe.ts';
import { scopedReward, weightedBuiltinSpecs } from '../rl/rewardRegistry.ts';
import type { RewardWeights } from './pipelineRecipe.ts';
import type { ReasoningProblem, Verifier } from './rejectionSampling.ts';
import { budgetSignal, minutesText, seededDraw, type StageContext, type StageOutcome } from './stage.ts';
import { readableFormat } from './stageEval.ts';

/** Rows of an RL stage are 'reasoning' (rule rewards) or 'general' (stage 4's prompts, scored by reward modules). */
export function isGeneralPrompt(example: Example): boolean {
  return example.kind === 'general';
}

/**
 * R1's rule rewards by weight: accuracy by the pipeline's verifier (reasoning rows only: general ones have no
 * reference answer), R1's readable format, and language consistency in the recipe's language.
 */
export function ruleRewards(weights: RewardWeights, verify: Verifier, language: string): RewardSpec[] {
  return weightedBuiltinSpecs(weights, {
    accuracy: {
      fn: scopedReward(
        async (c, ex) => ((await verify(c, ex as unknown as ReasoningProblem)) ? 1 : 0),
        (ex) => !isGeneralPrompt(ex),
      ),
    },
    format: { fn: (c, _ex, rc) => (readableFormat(c, rc.prompt) ? 1 : 0) },
    language: { options: { target: language } },
  });
}

/** What an RL stage's recipe entry gives {@link runRlStep}. */
export interface RlStepConfig {
  prompts?: number;
  rewards: RewardWeights;
  grpo: Record<string, unknown>;
  training: Record<string, unknown>;
  max_minutes?: number;
}

/**
 * GRPO from the stage's input model into `<stage>/grpo`, on the stage's draw of reasoning prompts and `extra.rows`,
 * with the rule rewards and `extra.rewards`; a finished run (final/) is reused as is.
 */
export async function runRlStep(
  ctx: StageContext,
  cfg: RlStepConfig,
  extra: { rows?: Record<string, unknown>[]; rewards?: RewardSpec[] } = {},
): Promise<StageOutcome> {
  const runDir = join(ctx.dir, 'grpo');
  const finalDir = join(runDir, 'final');
  if (existsSync(join(finalDir, 'trainer_state.json'))) return { checkpoint: finalDir, interrupted: false };
  const rows: Record<string, unknown>[] = seededDraw(
    ctx.data.train,
    cfg.prompts,
    `rl:${ctx.name}`,
    ctx.recipe.seed,
  ).map((p) => ({ ...p, kind: 'reasoning' }));
  rows.push(...(extra.rows ?? []));
  const rewards = [...ruleRewards(cfg.rewards, ctx.data.verify, ctx.recipe.language), ...(extra.rewards ?? [])];
  if (rewards.length === 0) throw new AhaError(`${ctx.recipe.source}: stages.${ctx.name}.rewards: every weight is 0`);
  const resume = existsSync(runDir) && readdirSync(runDir).some((n) => /^checkpoint-\d+$/.test(n));
  const budget = budgetSignal(ctx.signal, cfg.max_minutes);
  try {
    const r = await grpoTrain(
      {
        model: ctx.inputModel,
        dataset: rows,
        prompt: ctx.data.chat ? 'chat' : (ex: { prompt: string }) => ex.prompt,
        ...(ctx.data.chat && ctx.recipe.system_prompt !== undefined ? { system_prompt: ctx.recipe.system_prompt } : {}),
        rewards,
        grpo: cfg.grpo,
        training: cfg.training,
      },
      {
        outDir: runDir,
        resume,
        signal: budget.signal,
        progress: ctx.progress,
        log: (l) => ctx.log(`${ctx.name}: ${l}`),
        // Without a progress bar (not a terminal), one line per logging step.
        onStep: ctx.progress
          ? undefined
          : (m) => {
              const every = Number(cfg.training.logging_steps ?? 1);
              if (m.step % every === 0) ctx.log(`${ctx.name}: step ${m.step}: ${formatStepSummary(m)}`);
            },
      },
    );
    const details = {
      rl_steps: r.step,
      last_reward: r.metrics?.reward.mean ?? null,
      last_accuracy: r.metrics?.accuracy ?? null,
    };
    if (!r.interrupted) return { checkpoint: r.checkpoint!, interrupted: false, details };
    if (budget.expired()) {
      ctx.log(`${ctx.name}: GRPO stopped by the ${minutesText(cfg.max_minutes!)} budget after step ${r.step}`);
      return { checkpoint: r.checkpoint!, interrupted: false, details: { ...details, stopped_by_budget: true } };
    }
    return { checkpoint: r.checkpoint ?? ctx.inputModel, interrupted: true };
  } finally {
    budget.dispose();
  }
}
