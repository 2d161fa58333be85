/**
 * Turns a recipe's reward list into named, weighted reward functions: built-ins by name, user rewards from a module
 * (`./my_rewards.ts#myReward`, loaded with a dynamic import), or functions given in code.
 *
 * Built-ins and their options:
 * - accuracy: src/rewards/accuracy.ts; 1 when the answer read from the completion (src/verify/extractAnswer.ts,
 *   `strategies`, default ['answerTag', 'boxed']: the `<answer>` block of the R1 format, else the last \boxed{})
 *   verifies equal to the example's reference answer (src/verify/verify.ts, options `rtol`, `timeout_ms`), or by
 *   the spec's `check` function (a Task's check) when given.
 * - format: src/rewards/format.ts; options `mode` ('strict' R1-Zero tags, default; 'think'), `prefilled_think`,
 *   `require_answer`.
 * - length: src/rewards/length.ts; options `target_length` (required), `unit` ('tokens' | 'chars').
 * - overlong: DAPO's soft overlong penalty (0 down to -1) over the last `cache_length` tokens before
 *   grpo.max_completion_length (default cache_length: a fifth of it, DAPO's 4,096 of 20,480).
 * - code: src/rewards/code.ts; runs the completion's last fenced code block against the example's tests in the
 *   sandbox (src/judge/); options `language` ('python' | 'javascript' | 'cpp'; default: the fence's tag),
 *   `mode` ('fraction' of tests passed, default; 'all'), `timeout_s` (per test, default 5), `memory_mb` (default
 *   512), `float_tolerance`, `sandbox` ('bwrap', default; 'none' runs unsandboxed and warns on every run).
 * - judge: src/rewards/llmJudge.ts; an LLM judge over an OpenAI-compatible server (`base_url`, `model`, `template`
 *   'equivalence' | 'rating' | inline, `on` 'response' | 'summary', `cache`, ...: llmJudgeOptionsSchema); a call with
 *   no readable reply throws, so it is scored 0 and counted. Its dispose cancels requests in flight.
 * - reward_model: src/rewards/rewardModel.ts; a local sequence-classification checkpoint scores the chat-rendered
 *   prompt and completion at the last token (`model`, `on`, `normalize`, `batch_size`: rewardModelOptionsSchema).
 * A module reward's export is the reward function itself, or, when the spec has `options`, a factory called once
 * with them that returns the reward function. It runs in a worker thread (src/rewards/isolatedReward.ts), terminated
 * when a call times out, so a stuck call cannot hold the trainer; call `dispose` (disposeRewards) when done.
 *
 * Recipes that weight built-ins by name (the R1 pipeline's `rewards: { accuracy: 1, format: 1, language: 1 }`) and
 * runs that score different prompts with different rewards (its general prompts) build their specs here too, so a
 * reward's name, and with it its kind and metric, is decided in one place.
 */
import { parseConfig } from '../config/configError.ts';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { AhaError } from '../errors.ts';
import { DEFAULT_STRATEGIES, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { accuracyReward } from '../rewards/accuracy.ts';
import { formatReward } from '../rewards/format.ts';
import { lengthReward, overlongPenalty } from '../rewards/length.ts';
import { languageRewardFromOptions } from '../rewards/languageConsistency.ts';
import { codeReward } from '../rewards/code.ts';
import { llmJudgeFromOptions, llmJudgeOptionsSchema } from '../rewards/llmJudge.ts';
import { rewardModelFromOptions, rewardModelOptionsSchema } from '../rewards/rewardModel.ts';
import { isolatedReward, RewardLoadError } from '../rewards/isolatedReward.ts';
import { messageOf } from '../rewards/loadRewardExport.ts';
import { LANGUAGES } from '../judge/types.ts';
import type { Example, NamedReward, RewardFn } from '../rewards/types.ts';
import type { GrpoOptions } from './grpoOptions.ts';
import type { RewardSpec } from './recipe.ts';

/** Names of the built-in rewards. */
export const BUILTIN_REWARDS = [
  'accuracy',
  'format',
  'length',
  'overlong',
  'language',
  'code',
  'judge',
  'reward_model',
] as const;
export type BuiltinReward = (typeof BUILTIN_REWARDS)[number];

/** A reward ready for scoreCompletions, with what the trainer needs to know about it. */
export interface ResolvedReward extends NamedReward<Example> {
  weight: number;
  /** The built-in it is ('accuracy' feeds the accuracy metric, 'format' the format rate), or 'custom'. */
  kind: BuiltinReward | 'custom';
  /** Where the recipe declares it ("recipe.yaml: rewards[1]"), for error lines. */
  where?: string;
  /** Stops what the reward holds (a module reward's worker thread); the trainer calls it when training ends. */
  dispose?: () => Promise<void>;
}

/** What building a reward may depend on. */
export interface RewardBuildContext {
  grpo: GrpoOptions;
  /** Directory module paths are resolved against. */
  baseDir: string;
  /** Name of the recipe file, for messages. */
  source?: string;
  /** Where warnings go (default: stderr). */
  log?: (line: string) => void;
}

const accuracyOptions = z
  .object({
    strategies: z
      .array(z.enum(DEFAULT_STRATEGIES as unknown as [AnswerStrategy, ...AnswerStrategy[]]))
      .min(1)
      .optional(),
    rtol: z.number().positive().optional(),
    timeout_ms: z.number().int().positive().optional(),
  })
  .strict();
const formatOptions = z
  .object({
    mode: z.enum(['strict', 'think']).default('strict'),
    prefilled_think: z.boolean().default(false),
    require_answer: z.boolean().default(false),
  })
  .strict();
const lengthOptions = z
  .object({ target_length: z.number().positive(), unit: z.enum(['tokens', 'chars']).default('tokens') })
  .strict();
const overlongOptions = z.object({ cache_length: z.number().int().min(0).optional() }).strict();
const codeOptions = z
  .object({
    language: z.enum(LANGUAGES).optional(),
    mode: z.enum(['fraction', 'all']).default('fraction'),
    timeout_s: z.number().positive().max(600).default(5),
    memory_mb: z.number().int().min(16).max(65536).default(512),
    float_tolerance: z.number().min(0).optional(),
    sandbox: z.enum(['bwrap', 'none']).default('bwrap'),
  })
  .strict();

function options<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  return parseConfig(schema, value ?? {}, where, { prefix: ['options'], noun: 'option', sourceIsPath: true });
}

/** The accuracy reward now lives in src/rewards/accuracy.ts; re-exported for existing importers. */
export { accuracyReward };

function isModuleSpec(name: string): boolean {
  return name.includes('#') || /^(\.{1,2}\/|\/)/.test(name) || /\.(ts|js|mjs|mts)$/.test(name);
}

async function loadModuleReward(
  spec: RewardSpec,
  where: string,
  baseDir: string,
  log: ((line: string) => void) | undefined,
): Promise<{ fn: RewardFn<Example>; label: string; dispose: () => Promise<void> }> {
  const hash = spec.name.lastIndexOf('#');
  const file = hash >= 0 ? spec.name.slice(0, hash) : spec.name;
  const exportName = hash >= 0 ? spec.name.slice(hash + 1) : 'default';
  if (file === '' || exportName === '')
    throw new AhaError(`${where}.name: expected 'path/to/module.ts#exportName', got '${spec.name}'`);
  const abs = file.startsWith('/') ? file : `${baseDir}/${file}`;
  if (!existsSync(abs)) throw new AhaError(`${where}.name: reward module ${file} not found (resolved to ${abs})`);
  const label = exportName === 'default' ? file.replace(/^.*\//, '').replace(/\.[^.]+$/, '') : exportName;
  try {
    // In a worker thread, so that a call that times out is stopped for good (src/rewards/isolatedReward.ts).
    const r = await isolatedReward({
      file: abs,
      exportName,
      factory: spec.options !== undefined ? { options: spec.options } : undefined,
      name: spec.label ?? label,
      warn: log,
    });
    return { ...r, label };
  } catch (e) {
    if (!(e instanceof RewardLoadError)) throw new AhaError(`${where}.name: cannot load ${file}: ${messageOf(e)}`);
    const f = e.failure;
    if (f.stage === 'import') throw new AhaError(`${where}.name: cannot import ${file}: ${f.message}`);
    if (f.stage === 'export')
      throw new AhaError(
        `${where}.name: ${file} has no function export '${exportName}' (functions exported: ${f.functions.join(', ') || 'none'})`,
      );
    if (f.stage === 'factory') throw new AhaError(`${where}.options: the factory ${exportName} threw: ${f.message}`);
    throw new AhaError(`${where}.options: ${exportName}(options) must return a reward function`);
  }
}

/** Builds every reward of a recipe, with weights resolved (grpo.reward_weights, else each spec's weight, else 1). */
export async function buildRewards(specs: readonly RewardSpec[], ctx: RewardBuildContext): Promise<ResolvedReward[]> {
  const out: ResolvedReward[] = [];
  try {
    await addRewards(specs, ctx, out);
  } catch (e) {
    // The workers of the rewards built before the bad one.
    await disposeRewards(out);
    throw e;
  }
  return out;
}

async function addRewards(specs: readonly RewardSpec[], ctx: RewardBuildContext, out: ResolvedReward[]): Promise<void> {
  const src = ctx.source ?? 'recipe';
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i];
    const where = `${src}: rewards[${i}]`;
    const weight = ctx.grpo.reward_weights?.[i] ?? spec.weight ?? 1;
    let fn: RewardFn<Example>;
    let label = spec.label ?? spec.name;
    let kind: ResolvedReward['kind'] = 'custom';
    let dispose: ResolvedReward['dispose'];
    if (spec.fn) {
      fn = spec.fn;
      if ((BUILTIN_REWARDS as readonly string[]).includes(spec.name)) kind = spec.name as BuiltinReward;
    } else if (spec.name === 'accuracy') {
      const o = options(accuracyOptions, spec.options, where);
      fn = accuracyReward({ strategies: o.strategies, rtol: o.rtol, timeoutMs: o.timeout_ms, check: spec.check });
      kind = 'accuracy';
    } else if (spec.name === 'format') {
      const o = options(formatOptions, spec.options, where);
      fn = formatReward({ mode: o.mode, prefilledThink: o.prefilled_think, requireAnswer: o.require_answer });
      kind = 'format';
    } else if (spec.name === 'length') {
      const o = options(lengthOptions, spec.options, where);
      fn = lengthReward({ targetLength: o.target_length, unit: o.unit });
      kind = 'length';
    } else if (spec.name === 'overlong') {
      const o = options(overlongOptions, spec.options, where);
      const maxLength = ctx.grpo.max_completion_length;
      const cacheLength = o.cache_length ?? Math.floor(maxLength / 5);
      if (cacheLength > maxLength)
        throw new AhaError(
          `${where}.options.cache_length: ${cacheLength} is over grpo.max_completion_length ${maxLength}`,
        );
      fn = overlongPenalty({ maxLength, cacheLength });
      kind = 'overlong';
    } else if (spec.name === 'language') {
      fn = languageRewardFromOptions(spec.options, where);
      kind = 'language';
    } else if (spec.name === 'code') {
      const o = options(codeOptions, spec.options, where);
      fn = codeReward({
        language: o.language,
        mode: o.mode,
        judge: {
          limits: { timeoutS: o.timeout_s, memoryMb: o.memory_mb },
          floatTolerance: o.float_tolerance,
          sandbox: o.sandbox,
        },
      });
      kind = 'code';
    } else if (spec.name === 'judge') {
      const judge = llmJudgeFromOptions(spec.options, where, { baseDir: ctx.baseDir });
      fn = judge.reward;
      dispose = () => judge.dispose();
      kind = 'judge';
    } else if (spec.name === 'reward_model') {
      fn = rewardModelFromOptions(spec.options, where, { baseDir: ctx.baseDir }).reward;
      kind = 'reward_model';
    } else if (isModuleSpec(spec.name)) {
      const m = await loadModuleReward(spec, where, ctx.baseDir, ctx.log);
      fn = m.fn;
      dispose = m.dispose;
      label = spec.label ?? m.label;
    } else {
      throw new AhaError(
        `${where}.name: unknown reward '${spec.name}' (built-ins: ${BUILTIN_REWARDS.join(', ')}; or './module.ts#export')`,
      );
    }
    if (out.some((r) => r.name === label)) {
      await dispose?.();
      throw new AhaError(`${where}: two rewards are logged as '${label}'; give one a label`);
    }
    out.push({ name: label, fn, weight, kind, where, ...(dispose && { dispose }) });
  }
}

/** Stops what the rewards hold (their worker threads), once training with them is over. */
export async function disposeRewards(rewards: readonly ResolvedReward[]): Promise<void> {
  await Promise.all(rewards.map((r) => r.dispose?.()));
}

/** Weights of built-in rewards by name; a weight of 0 leaves the reward out. */
export type BuiltinRewardWeights = Readonly<Partial<Record<BuiltinReward, number>>>;

/** How a weighted built-in is built: its options, or a function of its own that keeps the built-in's name and kind. */
export type BuiltinRewardOverride = Pick<RewardSpec, 'options' | 'fn' | 'check'>;

/** The specs of built-ins weighted by name, in {@link BUILTIN_REWARDS} order: one per positive weight. */
export function weightedBuiltinSpecs(
  weights: BuiltinRewardWeights,
  overrides: Partial<Record<BuiltinReward, BuiltinRewardOverride>> = {},
): RewardSpec[] {
  return BUILTIN_REWARDS.filter((name) => (weights[name] ?? 0) > 0).map((name) => ({
    name,
    weight: weights[name],
    ...overrides[name],
  }));
}

/** `fn` on the examples `applies` accepts and 0 on the rest: a mixed dataset whose rows need different rewards. */
export function scopedReward(fn: RewardFn<Example>, applies: (example: Example) => boolean): RewardFn<Example> {
  const scoped: RewardFn<Example> = (completion, example, rc) => (applies(example) ? fn(completion, example, rc) : 0);
  return Object.assign(scoped, { [REWARD_SCOPE]: applies });
}

const REWARD_SCOPE = Symbol('reward scope');

/** The examples a {@link scopedReward} applies to (undefined: every example), so its calls can be counted. */
export function rewardScope(fn: RewardFn<Example>): ((example: Example) => boolean) | undefined {
  return (fn as { [REWARD_SCOPE]?: (example: Example) => boolean })[REWARD_SCOPE];
}

/**
 * Builds `specs` ({@link buildRewards}) scoped to the examples `applies` accepts, as specs to join another reward
 * list. Built now, so a module that fails to load fails before any training.
 */
export async function buildScopedRewardSpecs(
  specs: readonly RewardSpec[],
  ctx: RewardBuildContext,
  applies: (example: Example) => boolean,
): Promise<RewardSpec[]> {
  return (await buildRewards(specs, ctx)).map((r) => ({
    name: r.name,
    weight: r.weight,
    fn: scopedReward(r.fn, applies),
  }));
}

/** The options of the built-in rewards built here, read by the recipe reference (src/config/recipeSchemas.ts). */
export const REWARD_OPTION_SCHEMAS = {
  accuracy: accuracyOptions,
  format: formatOptions,
  length: lengthOptions,
  overlong: overlongOptions,
  code: codeOptions,
  judge: llmJudgeOptionsSchema,
  reward_model: rewardModelOptionsSchema,
} as const;
