/**
 * The GRPO recipe: one YAML or JSON file that says everything a run needs (model, data, prompt, rewards, GRPO and
 * training hyper-parameters), validated in full before any work starts. GRPO options keep TRL's GRPOConfig names
 * (src/rl/grpoOptions.ts); training options keep transformers' TrainingArguments names where one exists.
 *
 * Example (R1-Zero on GSM8K):
 *
 *     model: models/qwen2.5-0.5b
 *     dataset: { path: data/gsm8k, split: train, question_field: question, answer_field: answer, answer_extraction: gsm8k }
 *     prompt: r1-zero
 *     rewards:
 *       - { name: accuracy, weight: 1 }
 *       - { name: format, weight: 1 }
 *     grpo: { num_generations: 16, beta: 0.001, max_completion_length: 1024, temperature: 1.0 }
 *     training: { learning_rate: 3.0e-6, max_steps: 500, prompts_per_step: 32, ref_model_sync_steps: 400 }
 *
 * Relative paths (model, dataset.path, reward modules) are resolved against the recipe file's directory.
 */
import { parseConfig } from '../config/configError.ts';
import { datasetSpecSchema } from '../data/datasetSpec.ts';
import { NAMED_PROMPTS } from '../data/promptRenderer.ts';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { AhaError } from '../errors.ts';
import { DEFAULT_REPORT_TO, reportToSchema } from '../train/metricsLog.ts';
import { saveDtypeSchema } from '../model/saveDtype.ts';
import { grpoOptionsSchema, type GrpoOptions } from './grpoOptions.ts';
import { loraOptionsSchema, resolveLora, type LoraConfig, type LoraOptionsInput } from '../engine/lora.ts';
import type { Example, RewardFn } from '../rewards/types.ts';

/** Prompt templates by name; any other string must contain `{question}` and is used as a template. */
export const PROMPT_TEMPLATES = NAMED_PROMPTS;

const isFunction = (v: unknown) => typeof v === 'function';

/** A prompt built in code from the example (e.g. a Task's `prompt`), instead of a named or {question} template. */
export type PromptFn = (example: any) => string; // eslint-disable-line @typescript-eslint/no-explicit-any

/** An accuracy check on an extracted answer, e.g. a Task's `check` (src/data/tasks/task.ts). */
export type AnswerCheck = (answer: string, example: any) => boolean | Promise<boolean>; // eslint-disable-line @typescript-eslint/no-explicit-any

const rewardSchema = z
  .object({
    /** 'accuracy', 'format', 'length', 'overlong', or a module reward './file.ts#export' (default export without #). */
    name: z.string().min(1),
    /** Weight in the total reward (default 1; grpo.reward_weights, when set, overrides every weight). */
    weight: z.number().finite().optional(),
    /** Options of the reward (see rewardRegistry.ts); for a module reward, given to its export as a factory. */
    options: z.record(z.string(), z.unknown()).optional(),
    /** Name the reward is logged under (default: the built-in name, or the module's export name). */
    label: z.string().min(1).optional(),
    /** Programmatic use: the reward function itself (then `name` is only its label). */
    fn: z.custom<RewardFn<any>>(isFunction, { error: 'expected a function' }).optional(), // eslint-disable-line @typescript-eslint/no-explicit-any
    /** Programmatic use, accuracy only: decides an extracted answer (a Task's check) instead of mathEqual. */
    check: z.custom<AnswerCheck>(isFunction, { error: 'expected a function' }).optional(),
  })
  .strict();

const datasetFileSchema = datasetSpecSchema;

const trainingSchema = z
  .object({
    learning_rate: z.number().positive().default(1e-6),
    /** Trainer steps; one step = one rollout (sampling and scoring) and its policy updates. */
    max_steps: z.number().int().positive().default(100),
    /** Questions (prompts) per step; each gets num_generations completions. Default 8 (R1-Zero: 32). */
    prompts_per_step: z.number().int().positive().optional(),
    /**
     * TRL's units instead (give one of the three): completions per optimizer step, so that a step samples
     * per_device_train_batch_size * steps_per_generation completions...
     */
    per_device_train_batch_size: z.number().int().positive().optional(),
    /** ...or completions sampled per step (prompts_per_step * num_generations), as TRL's generation_batch_size. */
    generation_batch_size: z.number().int().positive().optional(),
    /** Optimizer updates each rollout is split into (mini-batches by prompt; R1-Zero: 16), per num_iterations pass. */
    steps_per_generation: z.number().int().positive().default(1),
    /** Token budget of one forward/backward micro-batch (sequences packed, at least one per micro-batch). */
    micro_batch_tokens: z.number().int().positive().default(8192),
    /**
     * Keep only each layer's input in a training forward and recompute the layer in backward (transformers'
     * gradient_checkpointing): activation memory of one layer instead of all, for one more forward of the layers.
     */
    gradient_checkpointing: z.boolean().default(false),
    /** Completions sampled per engine call (bounds the KV cache); not a TRL option. */
    sampling_batch_size: z.number().int().positive().default(64),
    max_grad_norm: z.number().min(0).default(1.0),
    weight_decay: z.number().min(0).default(0),
    adam_beta1: z.number().min(0).lt(1).default(0.9),
    adam_beta2: z.number().min(0).lt(1).default(0.99),
    warmup_steps: z.number().int().min(0).default(0),
    /** Alternative to warmup_steps: a share of max_steps. */
    warmup_ratio: z.number().min(0).lt(1).default(0),
    lr_scheduler_type: z.enum(['constant', 'linear', 'cosine']).default('constant'),
    seed: z.number().int().min(0).default(0),
    /** Shuffle the questions each epoch (seeded); false keeps file order. */
    shuffle: z.boolean().default(true),
    /** Deprecated here: sampling options sit in `grpo` with temperature, as in TRL. */
    top_p: z.number().gt(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    /** Checkpoint every N steps (0: only at the end and on interruption). */
    save_steps: z.number().int().min(0).default(50),
    /** Keep at most this many checkpoint-N directories (oldest removed); null keeps all. */
    save_total_limit: z.number().int().positive().nullable().default(null),
    /** Weight type of final/ (auto: the model's own); checkpoints keep float32, LoRA adapters are float32. */
    save_dtype: saveDtypeSchema,
    /** Print a summary line every N steps when stderr is not a terminal (metrics.jsonl always has every step). */
    logging_steps: z.number().int().positive().default(1),
    /**
     * Where metrics go besides metrics.jsonl (transformers' report_to): csv (metrics.csv), tensorboard (event files
     * in runs/); a list, a comma-separated string, or none.
     */
    report_to: reportToSchema.default([...DEFAULT_REPORT_TO]),
    /** Write sample completions to samples.jsonl every N steps (0: never); step 1 is always written. */
    sample_log_steps: z.number().int().min(0).default(10),
    num_samples_logged: z.number().int().min(0).default(4),
    /** Replace the reference model by the current policy every N steps (R1: 400); 0 never. */
    ref_model_sync_steps: z.number().int().min(0).default(0),
    /** DAPO dynamic sampling: drop groups whose rewards are all equal and sample more prompts to fill the step. */
    dynamic_sampling: z.boolean().default(false),
    /** Most rollout batches per step under dynamic sampling (the first included). */
    dynamic_sampling_max_batches: z.number().int().positive().default(4),
  })
  .strict();

const recipeSchema = z
  .object({
    /** Hugging Face model directory (config.json, safetensors, tokenizer.json). */
    model: z.string().min(1),
    dataset: z.unknown().optional(),
    /**
     * 'r1-zero' (the paper's template), 'r1-zero-short', 'chat' (the model's chat template), or text with {question};
     * in code also a function of the example (e.g. a Task's prompt).
     */
    prompt: z
      .union([z.string().min(1), z.custom<PromptFn>(isFunction)], {
        error: 'expected a template name, a string with {question}, or a function',
      })
      .default('r1-zero'),
    /** System message for prompt 'chat'. */
    system_prompt: z.string().optional(),
    rewards: z.array(rewardSchema).min(1),
    grpo: z.unknown().optional(),
    training: z.unknown().optional(),
    /** Per-call reward time limit (async rewards; see scoreCompletions). */
    reward_timeout_ms: z.number().int().positive().default(10_000),
    /** Run directory (the CLI's --out overrides it). */
    output_dir: z.string().min(1).optional(),
    /** LoRA adapters instead of every weight (PEFT's LoraConfig names); checkpoints are then PEFT adapters. */
    lora: z.unknown().optional(),
    /** Weights in memory (transformers' torch_dtype): auto keeps a LoRA base as its checkpoint stores it. */
    torch_dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
    /** Extra chat-template variables for prompt: chat (TRL's chat_template_kwargs, e.g. {enable_thinking: false}). */
    chat_template_kwargs: z.record(z.string(), z.unknown()).optional(),
    /** The KL reference copy of full fine-tuning: auto keeps it in the checkpoint's 16-bit type, if it has one. */
    ref_model_dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
  })
  .strict();

/** One reward of a recipe, validated. */
export type RewardSpec = z.output<typeof rewardSchema>;
/** A dataset given by file. */
export type DatasetFileSpec = z.output<typeof datasetFileSchema>;
export type TrainingOptions = z.output<typeof trainingSchema> & { prompts_per_step: number };

/** A validated recipe with every default applied. */
export interface Recipe {
  model: string;
  /** A file spec, or in-memory examples (programmatic use: each row has `question` and usually `answer`). */
  dataset: DatasetFileSpec | readonly Example[];
  prompt: string | PromptFn;
  system_prompt?: string;
  rewards: RewardSpec[];
  grpo: GrpoOptions;
  training: TrainingOptions;
  reward_timeout_ms: number;
  output_dir?: string;
  /** LoRA adapters to train (absent: full fine-tuning). */
  lora?: LoraConfig;
  torch_dtype: 'auto' | 'float32' | 'bfloat16' | 'float16';
  /** Extra variables of the chat template (prompt: chat). */
  chat_template_kwargs?: Record<string, unknown>;
  /** The type of full fine-tuning's reference copy (beta > 0). */
  ref_model_dtype: 'auto' | 'float32' | 'bfloat16' | 'float16';
  /** Directory relative paths are resolved against (the recipe file's, else the working directory). */
  baseDir: string;
  /** Where the recipe came from (its file), for messages about its fields; 'recipe' when built in code. */
  source?: string;
  /** Notices about deprecated spellings the recipe used (the trainer logs them). */
  deprecations?: string[];
}

/** A recipe as written (every default optional); `dataset` may be an array of examples in programmatic use. */
export interface RecipeInput {
  model: string;
  dataset: Record<string, unknown> | readonly Record<string, unknown>[];
  prompt?: string | PromptFn;
  system_prompt?: string;
  rewards: z.input<typeof rewardSchema>[];
  grpo?: Record<string, unknown>;
  training?: Record<string, unknown>;
  reward_timeout_ms?: number;
  output_dir?: string;
  lora?: LoraOptionsInput;
  torch_dtype?: 'auto' | 'float32' | 'bfloat16' | 'float16';
  ref_model_dtype?: 'auto' | 'float32' | 'bfloat16' | 'float16';
  chat_template_kwargs?: Record<string, unknown>;
}

function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: string,
  prefix: (string | number)[],
): z.output<S> {
  return parseConfig(schema, value, source, { prefix });
}

/**
 * Validates a recipe object (from a file or built in code) and applies defaults. Throws a one-line AhaError naming
 * the source and the offending field ("recipe.yaml: training.learning_rate: expected number, received string").
 */
export function parseRecipe(raw: unknown, source = 'recipe', baseDir = process.cwd()): Recipe {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new AhaError(`${source}: expected a mapping of fields (model, dataset, rewards, ...)`);
  const top = parseWith(recipeSchema, raw, source, []);
  const grpo = parseWith(grpoOptionsSchema, top.grpo ?? {}, source, ['grpo']);
  const trainingRaw = parseWith(trainingSchema, top.training ?? {}, source, ['training']);
  let lora: LoraConfig | undefined;
  if (top.lora !== undefined && top.lora !== null) {
    parseWith(loraOptionsSchema, top.lora, source, ['lora']);
    try {
      lora = resolveLora(top.lora as LoraOptionsInput);
    } catch (e) {
      throw new AhaError(`${source}: ${(e as Error).message}`);
    }
    if (trainingRaw.ref_model_sync_steps > 0)
      throw new AhaError(
        `${source}: training.ref_model_sync_steps: under LoRA the reference is the base model with the adapters off, which does not move; set it to 0`,
      );
  }
  if (top.torch_dtype !== 'auto' && top.torch_dtype !== 'float32' && !lora)
    throw new AhaError(
      `${source}: torch_dtype: ${top.torch_dtype} weights are frozen; full fine-tuning needs float32 (or add lora)`,
    );

  let dataset: Recipe['dataset'];
  if (Array.isArray(top.dataset)) {
    if (top.dataset.length === 0) throw new AhaError(`${source}: dataset: no examples`);
    top.dataset.forEach((ex: unknown, i: number) => {
      if (typeof ex !== 'object' || ex === null || typeof (ex as Example).question !== 'string') {
        throw new AhaError(`${source}: dataset[${i}]: expected an object with a string 'question'`);
      }
    });
    dataset = top.dataset as Example[];
  } else if (top.dataset === undefined) {
    throw new AhaError(`${source}: dataset: required`);
  } else {
    dataset = parseWith(datasetFileSchema, top.dataset, source, ['dataset']);
  }

  if (
    typeof top.prompt === 'string' &&
    !(PROMPT_TEMPLATES as readonly string[]).includes(top.prompt) &&
    !top.prompt.includes('{question}')
  ) {
    throw new AhaError(
      `${source}: prompt: expected ${PROMPT_TEMPLATES.map((p) => `'${p}'`).join(', ')} or a template containing {question}`,
    );
  }
  if (top.system_prompt !== undefined && top.prompt !== 'chat') {
    throw new AhaError(`${source}: system_prompt: only used with prompt 'chat'`);
  }
  if (top.chat_template_kwargs !== undefined && top.prompt !== 'chat') {
    throw new AhaError(`${source}: chat_template_kwargs: only used with prompt 'chat'`);
  }

  const G = grpo.num_generations;
  const t = trainingRaw;
  const sizes = (['prompts_per_step', 'per_device_train_batch_size', 'generation_batch_size'] as const).filter(
    (k) => t[k] !== undefined,
  );
  if (sizes.length > 1) throw new AhaError(`${source}: training: give one of ${sizes.join(', ')}, not ${sizes.length}`);
  let promptsPerStep = t.prompts_per_step ?? 8;
  const completionsPerStep =
    t.generation_batch_size ??
    (t.per_device_train_batch_size !== undefined ? t.per_device_train_batch_size * t.steps_per_generation : undefined);
  if (completionsPerStep !== undefined) {
    if (completionsPerStep % G !== 0) {
      const key = t.generation_batch_size !== undefined ? 'generation_batch_size' : 'per_device_train_batch_size';
      throw new AhaError(
        `${source}: training.${key}: ${completionsPerStep} completions per step is not a multiple of grpo.num_generations ${G}`,
      );
    }
    promptsPerStep = completionsPerStep / G;
  }
  const deprecations: string[] = [];
  for (const k of ['top_p', 'top_k'] as const) {
    if (t[k] === undefined) continue;
    if ((top.grpo as Record<string, unknown> | undefined)?.[k] !== undefined)
      throw new AhaError(`${source}: training.${k}: also given as grpo.${k}; keep grpo.${k}`);
    grpo[k] = t[k] as number;
    deprecations.push(
      `${source}: training.${k} is deprecated: write it as grpo.${k} (next to temperature, as TRL's GRPOConfig has it)`,
    );
  }
  if (t.steps_per_generation > promptsPerStep) {
    throw new AhaError(
      `${source}: training.steps_per_generation: ${t.steps_per_generation} mini-batches for ${promptsPerStep} prompts per step`,
    );
  }
  if (grpo.reward_weights !== null && grpo.reward_weights.length !== top.rewards.length) {
    throw new AhaError(
      `${source}: grpo.reward_weights: ${grpo.reward_weights.length} weights for ${top.rewards.length} rewards`,
    );
  }
  top.rewards.forEach((r, i) => {
    if (r.check && r.name !== 'accuracy')
      throw new AhaError(`${source}: rewards[${i}].check: only the accuracy reward takes a check`);
    if (grpo.reward_weights !== null && r.weight !== undefined) {
      throw new AhaError(
        `${source}: rewards[${i}].weight: set either per-reward weights or grpo.reward_weights, not both`,
      );
    }
  });
  if (!Array.isArray(top.dataset) && (dataset as DatasetFileSpec).answer_field === null) {
    const i = top.rewards.findIndex((r) => r.name === 'accuracy' && !r.fn);
    if (i >= 0)
      throw new AhaError(
        `${source}: rewards[${i}]: the accuracy reward needs reference answers, but dataset.answer_field is null`,
      );
  }

  return {
    model: top.model,
    dataset,
    prompt: top.prompt,
    system_prompt: top.system_prompt,
    rewards: top.rewards,
    grpo,
    training: { ...t, prompts_per_step: promptsPerStep },
    reward_timeout_ms: top.reward_timeout_ms,
    output_dir: top.output_dir,
    ...(lora ? { lora } : {}),
    torch_dtype: top.torch_dtype,
    ref_model_dtype: top.ref_model_dtype,
    ...(top.chat_template_kwargs ? { chat_template_kwargs: top.chat_template_kwargs } : {}),
    baseDir,
    source,
    ...(deprecations.length > 0 ? { deprecations } : {}),
  };
}

/** Reads and validates a recipe file (.yaml, .yml or .json); relative paths in it resolve against its directory. */
export function loadRecipe(path: string): { recipe: Recipe; text: string } {
  if (!existsSync(path)) throw new AhaError(`${path}: recipe not found`);
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  if (path.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new AhaError(`${path}: invalid JSON (${(e as Error).message.replace(/\s*\n\s*/g, ' ')})`);
    }
  } else {
    try {
      raw = parseYaml(text);
    } catch (e) {
      if (e instanceof YAMLParseError) {
        const line = e.linePos?.[0]?.line;
        throw new AhaError(`${path}${line ? `:${line}` : ''}: invalid YAML (${e.message.split('\n')[0]})`);
      }
      throw new AhaError(`${path}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return { recipe: parseRecipe(raw, path, dirname(resolve(path))), text };
}

/** A path of the recipe resolved against its base directory. */
export function recipePath(recipe: Pick<Recipe, 'baseDir'>, p: string): string {
  return resolve(recipe.baseDir, p);
}

/**
 * The recipe as JSON for the run directory: functions and in-memory examples (programmatic use) become
 * placeholders, so the copy is always serialisable.
 */
export function recipeToJson(recipe: Recipe): string {
  const plain = {
    ...recipe,
    dataset: Array.isArray(recipe.dataset) ? `<${recipe.dataset.length} in-memory examples>` : recipe.dataset,
    prompt: typeof recipe.prompt === 'function' ? '<function>' : recipe.prompt,
    rewards: recipe.rewards.map((r) => ({
      ...r,
      ...(r.fn ? { fn: '<function>' } : {}),
      ...(r.check ? { check: '<function>' } : {}),
    })),
  };
  return JSON.stringify(plain, null, 2) + '\n';
}

/** The recipe's schemas, read by the recipe reference and `--set` (src/config/recipeSchemas.ts). */
export const grpoRecipeSchemas = { recipe: recipeSchema, reward: rewardSchema, training: trainingSchema } as const;
