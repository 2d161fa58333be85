/**
 * The GRPO step of the pipeline's RL stages: the stage's draw of reasoning prompts (plus any rows a stage adds),
 * R1's rule rewards, and a run that resumes its own checkpoints and stops at one when its budget is spent.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import type { Example } from '../rewards/types.ts';
import { prepareExamples } from '../rl/grpoData.ts';
import { grpoTrain } from '../rl/grpoTrainer.ts';
import { formatStepSummary, rewardErrorCounts, type StepMetrics } from '../rl/metrics.ts';
import { parseRecipe, type RecipeInput, type RewardSpec } from '../rl/recipe.ts';
import { scopedReward, weightedBuiltinSpecs } from '../rl/rewardRegistry.ts';
import type { RewardWeights } from './pipelineRecipe.ts';
import { defaultGeneralPerStep, mixedPromptOrder } from './promptMix.ts';
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
  /** Fail the stage when some reward fails on every call of this many consecutive steps (default 3). */
  max_failing_reward_steps?: number;
  /** LoRA options (validated by the GRPO recipe), and how the weights are held. */
  lora?: Record<string, unknown>;
  torch_dtype?: 'auto' | 'float32' | 'bfloat16' | 'float16';
}

/** The reward failures of a GRPO run, summed over its metrics.jsonl (every step, resumed runs included). */
export function runRewardErrors(runDir: string): {
  reward_errors: number;
  reward_errors_by_reward: Record<string, number>;
} {
  const by: Record<string, number> = {};
  let total = 0;
  const path = join(runDir, 'metrics.jsonl');
  if (existsSync(path))
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a torn last line
      }
      total += typeof m.reward_errors === 'number' ? m.reward_errors : 0;
      // Flat keys (reward_errors/<name>); a run logged before they were flat nests them in reward_error_counts.
      const counts = {
        ...rewardErrorCounts(m),
        ...((m.reward_error_counts ?? {}) as Record<string, { errors: number }>),
      };
      for (const [name, c] of Object.entries(counts)) by[name] = (by[name] ?? 0) + c.errors;
    }
  return { reward_errors: total, reward_errors_by_reward: by };
}

/**
 * Watches GRPO's step metrics for a reward that fails on every call: `limit` such steps in a row (the same
 * reward) give the message to stop on.
 */
export function failingRewardWatch(limit: number): { step: (m: StepMetrics) => string | null } {
  let streak: Record<string, number> = {};
  return {
    step: (m) => {
      const next: Record<string, number> = {};
      for (const [name, c] of Object.entries(rewardErrorCounts(m)))
        if (c.calls > 0 && c.errors === c.calls) next[name] = (streak[name] ?? 0) + 1;
      streak = next;
      const bad = Object.entries(streak).find(([, n]) => n >= limit);
      return bad
        ? `reward '${bad[0]}' failed on every call of ${bad[1]} consecutive steps (through step ${m.step}; see the grpo log lines for its error)`
        : null;
    },
  };
}

/**
 * The rows whose prompt leaves room for max_completion_length tokens in the input model (what GRPO would keep), by
 * the trainer's own rule; all rows when the model has no tokenizer.json or positions to check against.
 */
function fittingRows(
  ctx: StageContext,
  input: RecipeInput,
  rows: readonly Record<string, unknown>[],
  what: string,
): Record<string, unknown>[] {
  let maxPositions: unknown;
  try {
    maxPositions = (JSON.parse(readFileSync(join(ctx.inputModel, 'config.json'), 'utf8')) as Record<string, unknown>)
      .max_position_embeddings;
  } catch {
    return rows.slice();
  }
  if (rows.length === 0 || typeof maxPositions !== 'number' || !existsSync(join(ctx.inputModel, 'tokenizer.json')))
    return rows.slice();
  const recipe = parseRecipe({ ...input, dataset: rows as Example[] }, `${ctx.recipe.source}: stages.${ctx.name}`);
  try {
    return prepareExamples(recipe, recipe.dataset as Example[], {
      tokenizer: loadTokenizer(ctx.inputModel),
      modelDir: ctx.inputModel,
      maxPositions,
      maxNew: recipe.grpo.max_completion_length,
      log: (l) => ctx.log(`${ctx.name}: ${what}: ${l}`),
    }).map((p) => p.example as Record<string, unknown>);
  } catch (e) {
    if (!(e instanceof AhaError && /every prompt is too long/.test(e.message))) throw e;
    ctx.log(`${ctx.name}: warning: ${what}: ${e.message}; none is used`);
    return [];
  }
}

/**
 * GRPO from the stage's input model into `<stage>/grpo`, on the stage's draw of reasoning prompts and
 * `extra.general` (stage 4's general prompts, `generalPerStep` of them in every step, in turn: promptMix.ts), with
 * the rule rewards and `extra.rewards`; a finished run (final/) is reused as is.
 */
export async function runRlStep(
  ctx: StageContext,
  cfg: RlStepConfig,
  extra: { general?: Record<string, unknown>[]; generalPerStep?: number; rewards?: RewardSpec[] } = {},
): Promise<StageOutcome> {
  const runDir = join(ctx.dir, 'grpo');
  const finalDir = join(runDir, 'final');
  // A finished run: a whole model, or LoRA adapters on their base (final/ is written whole or not at all).
  if (existsSync(join(finalDir, 'config.json')) || existsSync(join(finalDir, 'adapter_config.json')))
    return { checkpoint: finalDir, interrupted: false, details: runRewardErrors(runDir) };
  let rows: Record<string, unknown>[] = seededDraw(ctx.data.train, cfg.prompts, `rl:${ctx.name}`, ctx.recipe.seed).map(
    (p) => ({ ...p, kind: 'reasoning' }),
  );
  const rewards = [...ruleRewards(cfg.rewards, ctx.data.verify, ctx.recipe.language), ...(extra.rewards ?? [])];
  if (rewards.length === 0) throw new AhaError(`${ctx.recipe.source}: stages.${ctx.name}.rewards: every weight is 0`);
  const input: RecipeInput = {
    model: ctx.inputModel,
    dataset: rows as Example[],
    prompt: ctx.data.chat ? 'chat' : (ex: { prompt: string }) => ex.prompt,
    ...(ctx.data.chat && ctx.recipe.system_prompt !== undefined ? { system_prompt: ctx.recipe.system_prompt } : {}),
    rewards,
    grpo: cfg.grpo,
    training: cfg.training,
    ...(cfg.lora ? { lora: cfg.lora as RecipeInput['lora'] } : {}),
    ...(cfg.torch_dtype ? { torch_dtype: cfg.torch_dtype } : {}),
  };
  let mix: Record<string, unknown> = {};
  let mixed = false;
  if ((extra.general ?? []).length > 0) {
    // The trainer would leave out prompts too long for the model, and break the per-step mix: left out here.
    const reasoning = fittingRows(ctx, input, rows, 'reasoning prompts');
    const general = fittingRows(ctx, input, extra.general!, 'general prompts');
    const parsed = parseRecipe(input, `${ctx.recipe.source}: stages.${ctx.name}`);
    const t = parsed.training;
    const perStep = extra.generalPerStep ?? defaultGeneralPerStep(reasoning.length, general.length, t.prompts_per_step);
    mixed = general.length > 0;
    if (mixed)
      rows = mixedPromptOrder(reasoning, general, {
        promptsPerStep: t.prompts_per_step,
        generalPerStep: perStep,
        seed: t.seed,
        shuffle: t.shuffle,
        maxSteps: t.max_steps * (t.dynamic_sampling ? t.dynamic_sampling_max_batches : 1),
      });
    mix = {
      general_prompts: general.length,
      general_prompts_per_step: mixed ? Math.min(perStep, t.prompts_per_step) : 0,
    };
    if (mixed)
      ctx.log(
        `${ctx.name}: ${mix.general_prompts_per_step} of ${t.prompts_per_step} prompts per step are general (${general.length} general prompts, in turn), the rest reasoning (${reasoning.length})`,
      );
  }
  const resume = existsSync(runDir) && readdirSync(runDir).some((n) => /^checkpoint-\d+$/.test(n));
  const budget = budgetSignal(ctx.signal, cfg.max_minutes);
  // A reward failing on every call stops the run through its own signal, at the step's end (metrics are saved).
  const failing = new AbortController();
  const signal = AbortSignal.any([budget.signal, failing.signal]);
  const watch = failingRewardWatch(cfg.max_failing_reward_steps ?? 3);
  let failure: string | null = null;
  const every = Number(cfg.training.logging_steps ?? 1);
  try {
    const r = await grpoTrain(
      {
        ...input,
        dataset: rows as Example[],
        // A mixed order is already in step-sized blocks (and permuted per kind): the trainer keeps it as it is.
        training: mixed ? { ...cfg.training, shuffle: false } : cfg.training,
      },
      {
        outDir: runDir,
        resume,
        signal,
        progress: ctx.progress,
        log: (l) => ctx.log(`${ctx.name}: ${l}`),
        onStep: (m) => {
          // Without a progress bar (not a terminal), one line per logging step.
          if (!ctx.progress && m.step % every === 0) ctx.log(`${ctx.name}: step ${m.step}: ${formatStepSummary(m)}`);
          failure ??= watch.step(m);
          if (failure !== null && !failing.signal.aborted) failing.abort(new Error(failure));
        },
      },
    );
    if (failure !== null && !ctx.signal.aborted)
      throw new AhaError(
        `${ctx.recipe.source}: stages.${ctx.name}: ${failure}: fix it (or raise max_failing_reward_steps), then rerun with --resume`,
      );
    const details = {
      ...mix,
      rl_steps: r.step,
      last_reward: r.metrics?.reward ?? null,
      last_accuracy: r.metrics?.accuracy ?? null,
      ...runRewardErrors(runDir),
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
