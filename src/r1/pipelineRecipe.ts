/**
 * The recipe of `aha r1`: DeepSeek-R1's four stages in one YAML/JSON file, validated in full before any work
 * starts (an unknown stage or field is an error naming it, with the file).
 *
 *     base_model: models/demo-base          # stages 1 and 3 fine-tune this model
 *     task: arithmetic                      # the synthetic task, or dataset: {path, question_field, answer_field, ...}
 *     language: en
 *     max_new_tokens: 200
 *     eval: { problems: 64, samples: 2 }
 *     stages:
 *       cold_start_sft:   { prompts: 256, samples_per_prompt: 4, sft: { learning_rate: 1.0e-4, max_steps: 60 } }
 *       reasoning_rl:     { rewards: { accuracy: 1, format: 1, language: 1 }, grpo: {...}, training: {...} }
 *       rejection_sft:    { prompts: 256, samples_per_prompt: 4, max_per_prompt: 2, sft: {...} }
 *       all_scenarios_rl: { general_dataset: {...}, general_rewards: [{ name: ./helpful.ts#reward }], grpo: {...} }
 *
 * A stage written with no body (`cold_start_sft:` alone) takes all its defaults.
 * Stages run in that order; a recipe may leave any out. `sft` sections take aha sft's options (src/sft/sftConfig.ts;
 * the pipeline sets model, data and out), `grpo`/`training` sections aha grpo's (src/rl/recipe.ts). Relative paths
 * resolve against the recipe file's directory.
 */
import { configErrorMessage, fieldPath } from '../config/configError.ts';
import { datasetSpecSchema } from '../data/datasetSpec.ts';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { AhaError } from '../errors.ts';
import { DEFAULT_STRATEGIES, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { PROMPT_TEMPLATES, parseRecipe, type RecipeInput } from '../rl/recipe.ts';
import { sftOptionsSchema } from '../sft/sftConfig.ts';
import { resolveLanguageTarget } from '../rewards/languageConsistency.ts';
import { filtersConfigSchema } from './filters.ts';
import { SUMMARY_STRATEGIES } from './rejectionSampling.ts';
import { DEFAULT_SUMMARY_TEMPLATE } from './coldStart.ts';

/** The stages, in the order they run. */
export const STAGE_NAMES = ['cold_start_sft', 'reasoning_rl', 'rejection_sft', 'all_scenarios_rl'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

const posInt = () => z.number().int().positive();
const options = () => z.record(z.string(), z.unknown());

const datasetSchema = datasetSpecSchema;

const rewardWeightsSchema = z
  .object({
    accuracy: z.number().min(0).default(1),
    format: z.number().min(0).default(1),
    /** R1's language-consistency reward (src/rewards/languageConsistency.ts), target `language`. */
    language: z.number().min(0).default(1),
  })
  .strict();

/** Sampling of the data stages; unset max_new_tokens means the recipe's. */
const samplingFields = {
  prompts: posInt(),
  samples_per_prompt: posInt(),
  max_per_prompt: posInt(),
  temperature: z.number().min(0),
  top_p: z.number().gt(0).max(1),
  max_new_tokens: posInt().optional(),
};

const coldStartSchema = z
  .object({
    /** Ready-made cold-start SFT data (JSONL); when given, nothing is sampled. */
    data: z.string().min(1).optional(),
    /** The model whose samples are filtered and rewritten (R1-Zero or any teacher); default the base model. */
    source_model: z.string().min(1).optional(),
    ...samplingFields,
    prompts: samplingFields.prompts.default(256),
    samples_per_prompt: samplingFields.samples_per_prompt.default(4),
    max_per_prompt: samplingFields.max_per_prompt.default(1),
    temperature: samplingFields.temperature.default(1.0),
    top_p: samplingFields.top_p.default(1.0),
    /** Overrides the recipe's summary_template. */
    summary_template: z.string().min(1).optional(),
    sft: options().default({}),
    max_minutes: z.number().positive().optional(),
  })
  .strict();

const rlFields = {
  /** Training problems drawn from (default: all). */
  prompts: posInt().optional(),
  rewards: rewardWeightsSchema.default({ accuracy: 1, format: 1, language: 1 }),
  /**
   * The stage fails (resumable) when some reward fails on every call of this many consecutive steps: a broken reward
   * scores 0 everywhere and would otherwise train on nothing and end as done.
   */
  max_failing_reward_steps: posInt().default(3),
  grpo: options().default({}),
  training: options().default({}),
  /** LoRA adapters instead of every weight for this stage (PEFT's names, as in an aha grpo recipe). */
  lora: options().optional(),
  /** Weights in memory (auto keeps a LoRA base as its checkpoint stores it), as in an aha grpo recipe. */
  torch_dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
  /**
   * Wall-clock budget of the GRPO run: it stops cleanly there (at a checkpoint) and the stage counts as finished.
   * The clock is per invocation: a resumed stage gets the budget again.
   */
  max_minutes: z.number().positive().optional(),
};

const reasoningRlSchema = z.object(rlFields).strict();

const rejectionSchema = z
  .object({
    ...samplingFields,
    prompts: samplingFields.prompts.default(512),
    samples_per_prompt: samplingFields.samples_per_prompt.default(4),
    max_per_prompt: samplingFields.max_per_prompt.default(2),
    temperature: samplingFields.temperature.default(0.7),
    top_p: samplingFields.top_p.default(0.95),
    /** Non-reasoning SFT lines (writing, QA, ...) mixed in, and their share of the final data (R1: about 0.25). */
    non_reasoning_data: z.string().min(1).optional(),
    non_reasoning_ratio: z.number().min(0).lt(1).optional(),
    sft: options().default({}),
    max_minutes: z.number().positive().optional(),
  })
  .strict();

const moduleRewardSchema = z
  .object({
    /** './module.ts#export' (a reward function, or with options a factory of one). */
    name: z.string().min(1),
    weight: z.number().finite().default(1),
    options: options().optional(),
    label: z.string().min(1).optional(),
  })
  .strict();

const allScenariosSchema = z
  .object({
    ...rlFields,
    /** Prompts without a verifiable answer (helpfulness, harmlessness, ...), scored by general_rewards only. */
    general_dataset: datasetSchema.optional(),
    general_rewards: z.array(moduleRewardSchema).default([]),
    /**
     * General prompts in each step's prompts_per_step (the rest are reasoning prompts); they are drawn in turn, each
     * general prompt once before any twice. Default: their share of all the stage's prompts, at least 1.
     */
    general_prompts_per_step: posInt().optional(),
  })
  .strict();

const stagesSchema = z
  .object({
    cold_start_sft: coldStartSchema.optional(),
    reasoning_rl: reasoningRlSchema.optional(),
    rejection_sft: rejectionSchema.optional(),
    all_scenarios_rl: allScenariosSchema.optional(),
  })
  .strict();

const evalSchema = z
  .object({
    /** Held-out problems per evaluation. */
    problems: posInt().default(100),
    /** Samples per problem (pass@1 is their mean correctness). */
    samples: posInt().default(4),
    temperature: z.number().min(0).default(0.6),
    top_p: z.number().gt(0).max(1).default(0.95),
    max_new_tokens: posInt().optional(),
    /** Evaluate the base model too, before the first stage. */
    evaluate_base: z.boolean().default(true),
  })
  .strict();

const pipelineSchema = z
  .object({
    /** The base model: cold-start SFT and rejection-sampling SFT both start from it, as in the paper. */
    base_model: z.string().min(1),
    output_dir: z.string().min(1).optional(),
    /** A built-in synthetic task (questions generated, split by hash, checked by rule) ... */
    task: z.enum(['arithmetic']).optional(),
    /** ... with these options (src/data/tasks/arithmetic.ts), */
    task_options: z
      .object({
        min_terms: posInt().optional(),
        max_terms: posInt().optional(),
        max_operand: posInt().optional(),
        ops: z.string().min(1).optional(),
        max_value: posInt().optional(),
      })
      .strict()
      .default({}),
    /** ... and this many training problems, */
    task_train_size: posInt().default(5000),
    /** ... or a dataset of questions with reference answers (JSONL, Parquet, HF datasets directory). */
    dataset: datasetSchema.optional(),
    /** Held-out problems; default: eval.problems rows held out from dataset (by the seed). */
    eval_dataset: datasetSchema.optional(),
    /** 'r1-zero', 'r1-zero-short', 'chat', or a template with {question}; default the task's prompt or 'r1-zero'. */
    prompt: z.string().min(1).optional(),
    system_prompt: z.string().optional(),
    /** Target language of the chain of thought (reward and filter). */
    language: z.string().min(1).default('en'),
    /** How final answers are read (after </think>). */
    answer_strategies: z
      .array(z.enum(DEFAULT_STRATEGIES as unknown as [AnswerStrategy, ...AnswerStrategy[]]))
      .min(1)
      .default([...SUMMARY_STRATEGIES]),
    /** Summary of the readable format, with {answer} and {final_line}. */
    summary_template: z.string().min(1).default(DEFAULT_SUMMARY_TEMPLATE),
    /** Generation limit of every sampling step unless a stage sets its own. */
    max_new_tokens: posInt().default(1024),
    filters: filtersConfigSchema.default(filtersConfigSchema.parse({})),
    eval: evalSchema.default(evalSchema.parse({})),
    seed: z.number().int().min(0).default(0),
    stages: stagesSchema,
  })
  .strict();

export type PipelineRecipeInput = z.input<typeof pipelineSchema>;
export type DatasetSpec = z.output<typeof datasetSchema>;
export type ColdStartConfig = z.output<typeof coldStartSchema>;
export type ReasoningRlConfig = z.output<typeof reasoningRlSchema>;
export type RejectionConfig = z.output<typeof rejectionSchema>;
export type AllScenariosConfig = z.output<typeof allScenariosSchema>;
export type RewardWeights = z.output<typeof rewardWeightsSchema>;
export type ModuleRewardSpec = z.output<typeof moduleRewardSchema>;

/** A validated pipeline recipe, defaults applied, paths still as written (see {@link pipelinePath}). */
export type PipelineRecipe = z.output<typeof pipelineSchema> & {
  /** Directory relative paths resolve against. */
  baseDir: string;
  /** Where the recipe came from, for messages. */
  source: string;
};

/** The stages a recipe holds, in run order. */
export function recipeStages(r: Pick<PipelineRecipe, 'stages'>): StageName[] {
  return STAGE_NAMES.filter((s) => r.stages[s] !== undefined);
}

/** A path of the recipe resolved against its directory. */
export function pipelinePath(r: Pick<PipelineRecipe, 'baseDir'>, p: string): string {
  return resolve(r.baseDir, p);
}

function fail(source: string, error: z.ZodError, prefix: readonly PropertyKey[] = []): never {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0];
  if (issue.code === 'unrecognized_keys' && prefix.length === 0 && fieldPath(issue.path) === 'stages') {
    const keys = issue.keys.map((k) => `'${k}'`).join(', ');
    throw new AhaError(
      `${source}: stages: unknown stage${issue.keys.length > 1 ? 's' : ''} ${keys} (stages: ${STAGE_NAMES.join(', ')})`,
    );
  }
  throw new AhaError(configErrorMessage(error, source, { prefix }));
}

/** The aha sft options a stage's `sft` section may set (the pipeline sets model, data, out and resume itself). */
const stageSftSchema = sftOptionsSchema
  .omit({ model: true, data: true, out: true, resume_from_checkpoint: true, overwrite_output_dir: true })
  .partial();

function checkSft(raw: Record<string, unknown>, source: string, where: string): void {
  const r = stageSftSchema.safeParse(raw);
  if (!r.success) fail(source, r.error, where.split('.'));
}

/** Validates an RL stage's grpo and training sections; returns the prompts per step they give. */
function checkGrpo(stage: Parameters<typeof stagePromptsPerStep>[0], source: string, where: string): number {
  if ('reward_weights' in stage.grpo)
    throw new AhaError(`${source}: ${where}.grpo.reward_weights: set the stage's rewards: weights instead`);
  return stagePromptsPerStep(stage, `${source}: ${where}`);
}

/** The prompts per step of an RL stage's training section (prompts_per_step, or TRL's batch units). */
export function stagePromptsPerStep(
  stage: {
    grpo: Record<string, unknown>;
    training: Record<string, unknown>;
    lora?: Record<string, unknown>;
    torch_dtype?: 'auto' | 'float32' | 'bfloat16' | 'float16';
  },
  source: string,
): number {
  // The GRPO recipe's own validation (LoRA options included), with a stand-in dataset and reward.
  return parseRecipe(
    {
      model: '-',
      dataset: [{ question: 'q' }],
      rewards: [{ name: 'r', fn: () => 0 }],
      grpo: stage.grpo,
      training: stage.training,
      ...(stage.lora ? { lora: stage.lora as RecipeInput['lora'] } : {}),
      ...(stage.torch_dtype ? { torch_dtype: stage.torch_dtype } : {}),
    },
    source,
  ).training.prompts_per_step;
}

/** A stage written with no body (`reasoning_rl:` in YAML, null) means all its defaults. */
function nullStagesAsDefaults(raw: object): object {
  const stages = (raw as { stages?: unknown }).stages;
  if (typeof stages !== 'object' || stages === null || Array.isArray(stages)) return raw;
  const out = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, v === null ? {} : v]));
  return { ...raw, stages: out };
}

/**
 * Validates a recipe object and applies defaults. Errors are one line naming the source and the field:
 * `r1.yaml: stages: unknown stage 'rejection'`, `r1.yaml: stages.reasoning_rl.training: unknown field 'lr'`.
 */
export function parsePipelineRecipe(raw: unknown, source = 'recipe', baseDir = process.cwd()): PipelineRecipe {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new AhaError(`${source}: expected a mapping of fields (base_model, stages, ...)`);
  const r = pipelineSchema.safeParse(nullStagesAsDefaults(raw));
  // Unknown stages and fields are reported before other problems: they are the likeliest typo.
  if (!r.success) fail(source, r.error);
  const recipe: PipelineRecipe = { ...r.data, baseDir, source };
  const stages = recipeStages(recipe);
  if (stages.length === 0) throw new AhaError(`${source}: stages: no stage (give some of ${STAGE_NAMES.join(', ')})`);
  if (recipe.task === undefined && recipe.dataset === undefined)
    throw new AhaError(`${source}: give task (arithmetic) or dataset`);
  if (recipe.task !== undefined && recipe.dataset !== undefined)
    throw new AhaError(`${source}: give task or dataset, not both`);
  if (recipe.dataset && recipe.dataset.answer_field === null)
    throw new AhaError(`${source}: dataset.answer_field: reasoning problems need reference answers`);
  if (recipe.eval_dataset && recipe.eval_dataset.answer_field === null)
    throw new AhaError(`${source}: eval_dataset.answer_field: held-out problems need reference answers`);
  if (recipe.task === undefined && Object.keys(recipe.task_options).length > 0)
    throw new AhaError(`${source}: task_options: only with task`);
  if (recipe.task !== undefined && recipe.eval_dataset !== undefined)
    throw new AhaError(`${source}: eval_dataset: the task generates its own held-out problems`);
  if (
    recipe.prompt !== undefined &&
    !(PROMPT_TEMPLATES as readonly string[]).includes(recipe.prompt) &&
    !recipe.prompt.includes('{question}')
  ) {
    throw new AhaError(
      `${source}: prompt: expected ${PROMPT_TEMPLATES.map((p) => `'${p}'`).join(', ')} or a template containing {question}`,
    );
  }
  if (recipe.system_prompt !== undefined && recipe.prompt !== 'chat')
    throw new AhaError(`${source}: system_prompt: only used with prompt 'chat'`);
  try {
    resolveLanguageTarget(recipe.language);
  } catch (e) {
    throw new AhaError(`${source}: language: ${(e as Error).message}`);
  }
  for (const [i, t] of [recipe.summary_template, recipe.stages.cold_start_sft?.summary_template].entries()) {
    if (t !== undefined && !t.includes('{answer}'))
      throw new AhaError(
        `${source}: ${i === 0 ? '' : 'stages.cold_start_sft.'}summary_template: must contain {answer}`,
      );
  }
  const s = recipe.stages;
  if (s.cold_start_sft) checkSft(s.cold_start_sft.sft, source, 'stages.cold_start_sft.sft');
  if (s.rejection_sft) {
    checkSft(s.rejection_sft.sft, source, 'stages.rejection_sft.sft');
    if (
      s.rejection_sft.non_reasoning_ratio !== undefined &&
      s.rejection_sft.non_reasoning_ratio > 0 &&
      s.rejection_sft.non_reasoning_data === undefined
    ) {
      throw new AhaError(`${source}: stages.rejection_sft.non_reasoning_ratio: needs non_reasoning_data`);
    }
  }
  if (s.reasoning_rl) checkGrpo(s.reasoning_rl, source, 'stages.reasoning_rl');
  if (s.all_scenarios_rl) {
    const perStep = checkGrpo(s.all_scenarios_rl, source, 'stages.all_scenarios_rl');
    const a = s.all_scenarios_rl;
    if (a.general_prompts_per_step !== undefined && !a.general_dataset)
      throw new AhaError(`${source}: stages.all_scenarios_rl.general_prompts_per_step: needs general_dataset`);
    if (a.general_prompts_per_step !== undefined && a.general_prompts_per_step > perStep)
      throw new AhaError(
        `${source}: stages.all_scenarios_rl.general_prompts_per_step: ${a.general_prompts_per_step} is more than the ${perStep} prompts per step (training)`,
      );
    if (a.general_dataset && a.general_rewards.length === 0)
      throw new AhaError(
        `${source}: stages.all_scenarios_rl.general_rewards: general_dataset needs reward modules to score it`,
      );
    if (!a.general_dataset && a.general_rewards.length > 0)
      throw new AhaError(`${source}: stages.all_scenarios_rl.general_dataset: general_rewards need prompts to score`);
  }
  return recipe;
}

/** Reads and validates a recipe file (.yaml, .yml or .json); its directory is the base of relative paths. */
export function loadPipelineRecipe(path: string): { recipe: PipelineRecipe; text: string } {
  if (!existsSync(path)) throw new AhaError(`${path}: recipe not found`);
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const line = e.linePos?.[0]?.line;
      throw new AhaError(`${path}${line ? `:${line}` : ''}: invalid YAML (${e.message.split('\n')[0]})`);
    }
    throw new AhaError(
      `${path}: invalid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`,
    );
  }
  return { recipe: parsePipelineRecipe(raw, path, dirname(resolve(path))), text };
}

/** The recipe's schemas, read by the recipe reference and `--set` (src/config/recipeSchemas.ts). */
export const pipelineRecipeSchemas = { pipeline: pipelineSchema, stageSft: stageSftSchema } as const;
