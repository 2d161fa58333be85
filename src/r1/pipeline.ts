/**
 * `aha r1`: DeepSeek-R1's four-stage pipeline as one resumable run.
 *
 *  1. cold_start_sft: samples (the base model's own, an R1-Zero checkpoint's, or a file) kept when correct and
 *     readable, rewritten as `<think>reasoning</think> summary`; SFT of the base model on them.
 *  2. reasoning_rl: GRPO from stage 1's model with accuracy + format + language-consistency rewards.
 *  3. rejection_sft: rejection sampling from stage 2's checkpoint (correct, readable, deduplicated, capped), mixed
 *     with non-reasoning data; SFT of the BASE model on it.
 *  4. all_scenarios_rl: GRPO from stage 3's model; rule rewards for reasoning prompts, user reward modules for the
 *     rest (general prompts).
 *
 * Run directory:
 *
 *     pipeline.json               the recipe as run (rewritten at each start)
 *     base_eval.json              the base model's evaluation
 *     <stage>/                    one directory per stage: samples.jsonl, data.jsonl, report.json, sft/ or grpo/
 *     <stage>/eval.json           pass@1 on held-out problems, format rate, language consistency, mean length
 *     <stage>/stage_done.json     the marker of a finished stage (checkpoint, evaluation), written atomically last
 *     summary.json                every stage so far
 *
 * A finished stage (its marker exists) is skipped on resume; an unfinished one continues from its own checkpoints
 * (SFT and GRPO runs resume exactly; gathered samples are kept). `stage` runs one stage, whose earlier stages must
 * be finished. Stage runners and the evaluation can be replaced through the options (tests use stubs).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { AhaError } from '../errors.ts';
import { arithmeticTask, type ArithmeticExample } from '../data/tasks/arithmetic.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import { loadQuestionDataset, type QuestionRow } from '../data/questionDataset.ts';
import { r1ZeroPrompt, r1ZeroShortPrompt } from '../data/r1ZeroTemplate.ts';
import { LocalEngineGenerator, type Generator } from '../eval/generators.ts';
import { promptOpensThink } from '../eval/promptTemplates.ts';
import { renderChat, type ChatMessage } from '../model/chatTemplate.ts';
import { loadPretrained } from '../model/pretrained.ts';
import { hasValidFormat } from '../rewards/format.ts';
import { languageConsistency, languageConsistencyReward, resolveLanguageTarget } from '../rewards/languageConsistency.ts';
import type { Example, RewardFn } from '../rewards/types.ts';
import { grpoTrain } from '../rl/grpoTrainer.ts';
import { parseGrpoOptions } from '../rl/grpoOptions.ts';
import type { RewardSpec } from '../rl/recipe.ts';
import { buildRewards } from '../rl/rewardRegistry.ts';
import { formatStepSummary } from '../rl/metrics.ts';
import { latestCheckpoint as latestSftCheckpoint } from '../sft/runDir.ts';
import { resolveSftOptions } from '../sft/sftConfig.ts';
import { sftTrain } from '../sft/trainer.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { buildColdStartData } from './coldStart.ts';
import { buildFilters } from './filters.ts';
import {
  parsePipelineRecipe, pipelinePath, recipeStages, STAGE_NAMES,
  type AllScenariosConfig, type DatasetSpec, type PipelineRecipe, type PipelineRecipeInput, type RewardWeights, type StageName,
} from './pipelineRecipe.ts';
import {
  answerVerifier, gatherSamples, rejectionFiles, runRejectionSampling, type ReasoningProblem, type RejectionSamplingReport, type Verifier,
} from './rejectionSampling.ts';

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

/**
 * R1's readable format: the completion opens `<think>` (or the prompt did), closes it exactly once, and a non-empty
 * summary follows. The format reward of the RL stages and the format rate of the evaluations. Stricter than TRL's
 * think-format check on one point: a second `</think>` fails, or a small policy learns to keep "summarising" in
 * loops after the first one and is still paid for its format.
 */
export function readableFormat(completion: string, prompt: string): boolean {
  if (!hasValidFormat(completion, { mode: 'think', requireAnswer: true, prefilledThink: promptOpensThink(prompt) })) return false;
  return completion.indexOf('</think>') === completion.lastIndexOf('</think>');
}

/** A stage's evaluation on held-out problems (R1's protocol in miniature: k samples at T=0.6, top-p 0.95). */
export interface StageEval {
  problems: number;
  /** Samples per problem. */
  samples: number;
  /** Mean correctness over every sample (= the mean over problems of each one's share correct). */
  pass_at_1: number;
  /** Share of samples in R1's format ({@link readableFormat}): `<think>` reasoning `</think>` then a summary. */
  format_rate: number;
  /** Mean language consistency of the chains of thought that have words; null when none has. */
  language_consistency: number | null;
  /** Samples whose chain of thought has at least one counted word. */
  samples_with_words: number;
  /** Mean completion length in tokens (samples whose length is known); null when none is. */
  mean_length: number | null;
  examples: { prompt: string; completion: string; correct: boolean }[];
}

/** Options of {@link evaluateReasoning}. */
export interface EvaluateReasoningOptions {
  generator: Generator;
  problems: readonly ReasoningProblem[];
  verify: Verifier;
  /** Target language of the consistency metric. */
  language: string;
  samples: number;
  temperature?: number;
  topP?: number;
  maxNewTokens: number;
  seed?: number;
  signal?: AbortSignal;
}

/** Samples k completions per held-out problem and scores pass@1, format, language consistency and length. */
export async function evaluateReasoning(o: EvaluateReasoningOptions): Promise<StageEval> {
  const target = resolveLanguageTarget(o.language);
  const out = await o.generator.generate(o.problems.map((p) => p.prompt), {
    n: o.samples, temperature: o.temperature ?? 0.6, topP: o.topP ?? 0.95, maxNewTokens: o.maxNewTokens, seed: o.seed ?? 0,
    ids: o.problems.map((p) => p.id), signal: o.signal,
  });
  let correct = 0, formatted = 0, total = 0, lenSum = 0, lenN = 0, langSum = 0, langN = 0;
  const examples: StageEval['examples'] = [];
  for (let i = 0; i < o.problems.length; i++) {
    const p = o.problems[i];
    for (const g of out[i]) {
      total++;
      const ok = await o.verify(g.text, p);
      if (ok) correct++;
      if (readableFormat(g.text, p.prompt)) formatted++;
      const lc = languageConsistency(g.text, { target });
      if (lc.score !== null) {
        langSum += lc.score;
        langN++;
      }
      if (g.tokens !== null) {
        lenSum += g.tokens;
        lenN++;
      }
      if (examples.length < 3 && examples.every((e) => e.prompt !== p.prompt)) examples.push({ prompt: p.prompt, completion: g.text, correct: ok });
    }
  }
  return {
    problems: o.problems.length,
    samples: o.samples,
    pass_at_1: total > 0 ? correct / total : 0,
    format_rate: total > 0 ? formatted / total : 0,
    language_consistency: langN > 0 ? langSum / langN : null,
    samples_with_words: langN,
    mean_length: lenN > 0 ? lenSum / lenN : null,
    examples,
  };
}

/** One line of the per-stage table: pass@1, format, language consistency, mean length. */
export function formatStageEval(name: string, e: StageEval): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lang = e.language_consistency === null ? 'n/a (no words)' : `${e.language_consistency.toFixed(3)} (${e.samples_with_words} with words)`;
  const len = e.mean_length === null ? 'n/a' : `${e.mean_length.toFixed(1)} tok`;
  return `${name.padEnd(18)} pass@1 ${pct(e.pass_at_1).padStart(6)}   format ${pct(e.format_rate).padStart(6)}   language ${lang}   mean length ${len}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Problems and prompts

/** The problems, prompts and verifier a recipe describes, ready for every stage. */
export interface PipelineData {
  train: ReasoningProblem[];
  eval: ReasoningProblem[];
  verify: Verifier;
  /** Whether prompts are chat-rendered (then encoded without added special tokens, SFT lines are messages). */
  chat: boolean;
  /** Renders a question's prompt (general prompts of stage 4 use it too). */
  render(question: string, example?: unknown): { text: string; sft: string | ChatMessage[] };
}

function datasetRows(recipe: PipelineRecipe, d: DatasetSpec, answers: boolean): Promise<QuestionRow[]> {
  return loadQuestionDataset({
    path: pipelinePath(recipe, d.path), questionField: d.question_field, answerField: answers ? d.answer_field : null,
    answerExtraction: d.answer_extraction, split: d.split, limit: d.limit,
  });
}

/** Loads (or generates) the recipe's problems and builds its prompt renderer and verifier. */
export async function preparePipelineData(recipe: PipelineRecipe): Promise<PipelineData> {
  const base = pipelinePath(recipe, recipe.base_model);
  const chat = recipe.prompt === 'chat';
  let taskPrompt: ((ex: ArithmeticExample) => string) | undefined;
  const render = (question: string, example?: unknown): { text: string; sft: string | ChatMessage[] } => {
    if (recipe.prompt === undefined && taskPrompt && example) {
      const t = taskPrompt(example as ArithmeticExample);
      return { text: t, sft: t };
    }
    switch (recipe.prompt ?? 'r1-zero') {
      case 'r1-zero': { const t = r1ZeroPrompt(question); return { text: t, sft: t }; }
      case 'r1-zero-short': { const t = r1ZeroShortPrompt(question); return { text: t, sft: t }; }
      case 'chat': {
        const messages: ChatMessage[] = recipe.system_prompt !== undefined ? [{ role: 'system', content: recipe.system_prompt }] : [];
        messages.push({ role: 'user', content: question });
        return { text: renderChat(base, messages, { addGenerationPrompt: true }), sft: messages };
      }
      default: { const t = recipe.prompt!.split('{question}').join(question); return { text: t, sft: t }; }
    }
  };
  const problem = (id: string, question: string, answer: string, example?: unknown): ReasoningProblem => {
    const r = render(question, example);
    return { id, question, answer, prompt: r.text, ...(r.sft !== r.text ? { sftPrompt: r.sft } : {}), ...(example !== undefined ? { example } : {}) };
  };
  if (recipe.task === 'arithmetic') {
    const to = recipe.task_options;
    const task = arithmeticTask({ minTerms: to.min_terms, maxTerms: to.max_terms, maxOperand: to.max_operand, ops: to.ops, maxValue: to.max_value });
    taskPrompt = (ex) => task.prompt(ex);
    const train = task.generate(new Rng(recipe.seed + 1), recipe.task_train_size, 'train');
    const test = task.generate(new Rng(recipe.seed + 7), recipe.eval.problems, 'test');
    const verify = answerVerifier({ strategies: recipe.answer_strategies, check: (a, p) => task.check(a, p.example as ArithmeticExample) });
    return {
      train: train.map((ex) => problem(ex.question, ex.question, ex.answer, ex)),
      eval: test.map((ex) => problem(ex.question, ex.question, ex.answer, ex)),
      verify, chat, render,
    };
  }
  const toProblem = (r: QuestionRow) => problem(r.source, r.question, r.answer!, undefined);
  const rows = await datasetRows(recipe, recipe.dataset!, true);
  let train = rows.map(toProblem);
  let evalSet: ReasoningProblem[];
  if (recipe.eval_dataset) {
    evalSet = (await datasetRows(recipe, recipe.eval_dataset, true)).map(toProblem).slice(0, recipe.eval.problems);
  } else {
    const k = recipe.eval.problems;
    if (k >= train.length) throw new AhaError(`${recipe.source}: eval.problems ${k} leaves no training problem of ${train.length} (give eval_dataset or fewer)`);
    const order = new Rng(fnv1a32(`r1-holdout:${recipe.seed}`)).shuffle(train.map((_, i) => i));
    const held = new Set(order.slice(0, k));
    evalSet = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
  }
  for (const p of [...train, ...evalSet]) if (!p.answer) throw new AhaError(`${p.id}: no reference answer`);
  return { train, eval: evalSet, verify: answerVerifier({ strategies: recipe.answer_strategies }), chat, render };
}

/** The first `n` problems of a seeded permutation (a stage's own draw), or all of them. */
function draw<T>(items: readonly T[], n: number | undefined, salt: string, seed: number): T[] {
  if (n === undefined || n >= items.length) return items.slice();
  const order = new Rng(fnv1a32(`${salt}:${seed}`)).shuffle(items.map((_, i) => i));
  return order.slice(0, n).sort((a, b) => a - b).map((i) => items[i]);
}

// ---------------------------------------------------------------------------------------------------------------
// Stage runners

/** What a stage runner gets. */
export interface StageContext {
  name: StageName;
  /** The stage's directory (created). */
  dir: string;
  /** The model the stage trains from: the previous stage's checkpoint (the base model for rejection_sft). */
  inputModel: string;
  /** The previous stage's checkpoint, or the base model: what rejection_sft samples from. */
  previousCheckpoint: string;
  baseModel: string;
  recipe: PipelineRecipe;
  data: PipelineData;
  /** The stage directory holds an unfinished attempt: continue it. */
  resume: boolean;
  signal: AbortSignal;
  log: (line: string) => void;
  progress: boolean;
}

/** What a stage runner returns: its model, or that it was interrupted (its partial work stays on disk). */
export interface StageOutcome {
  checkpoint: string;
  interrupted: boolean;
  details?: Record<string, unknown>;
}

export type StageRunner = (ctx: StageContext) => Promise<StageOutcome>;

/** A signal that fires on the caller's abort or when `minutes` have passed (which `expired` then says). */
export function budgetSignal(outer: AbortSignal, minutes: number | undefined): { signal: AbortSignal; expired: () => boolean; dispose: () => void } {
  const c = new AbortController();
  let expired = false;
  const onAbort = () => c.abort(outer.reason);
  if (outer.aborted) c.abort(outer.reason);
  else outer.addEventListener('abort', onAbort, { once: true });
  const timer = minutes === undefined ? undefined : setTimeout(() => {
    expired = true;
    c.abort(new Error('time budget'));
  }, minutes * 60_000);
  timer?.unref?.();
  return {
    signal: c.signal,
    expired: () => expired && !outer.aborted,
    dispose: () => {
      if (timer) clearTimeout(timer);
      outer.removeEventListener('abort', onAbort);
    },
  };
}

function minutesText(m: number): string {
  return `${Number(m.toFixed(2))}-minute`;
}

/** aha sft defaults of the pipeline's SFT stages (R1 v2: 2-3 epochs, cosine from 5e-5 to a tenth). */
export const PIPELINE_SFT_DEFAULTS: Record<string, unknown> = {
  num_train_epochs: 2, learning_rate: 5e-5, lr_scheduler_type: 'cosine', min_lr_ratio: 0.1, save_steps: 50, save_total_limit: 1, logging_steps: 10,
};

/** Options of {@link trainSftStep}. */
export interface SftStepOptions {
  model: string;
  data: string;
  /** aha sft options (over {@link PIPELINE_SFT_DEFAULTS}); model, data, out and resume are set here. */
  sft: Record<string, unknown>;
  runDir: string;
  /** Wall-clock budget: the run stops at a checkpoint there, and that checkpoint is the result. */
  maxMinutes?: number;
  /** Names the sft options in errors ("r1.yaml: stages.rejection_sft.sft"). */
  configName: string;
  signal: AbortSignal;
  log: (line: string) => void;
  progress?: boolean;
  defaults?: Record<string, unknown>;
}

/**
 * SFT of `model` on `data` into `runDir` (an aha sft run directory), resuming its newest checkpoint when there is
 * one; a finished run (final/) is reused as is.
 */
export async function trainSftStep(o: SftStepOptions): Promise<StageOutcome> {
  const finalDir = join(o.runDir, 'final');
  if (existsSync(join(finalDir, 'config.json'))) return { checkpoint: finalDir, interrupted: false };
  const resume = latestSftCheckpoint(o.runDir) !== undefined;
  const opts = resolveSftOptions({
    config: { ...(o.defaults ?? PIPELINE_SFT_DEFAULTS), ...o.sft },
    configName: o.configName,
    cli: { model: o.model, data: o.data, out: o.runDir, resume_from_checkpoint: resume, overwrite_output_dir: !resume },
  });
  const budget = budgetSignal(o.signal, o.maxMinutes);
  try {
    const r = await sftTrain(opts, { log: (m) => o.log(`sft: ${m}`), progress: o.progress, shouldStop: () => budget.signal.aborted });
    if (r.status === 'completed') return { checkpoint: r.finalDir!, interrupted: false, details: { sft_steps: r.globalStep, sft_loss: r.lastLoss } };
    if (budget.expired()) {
      o.log(`sft stopped by the ${minutesText(o.maxMinutes!)} budget at step ${r.globalStep}/${r.totalSteps}`);
      return { checkpoint: r.checkpoint!, interrupted: false, details: { sft_steps: r.globalStep, sft_loss: r.lastLoss, stopped_by_budget: true } };
    }
    return { checkpoint: r.checkpoint ?? o.model, interrupted: true };
  } finally {
    budget.dispose();
  }
}

function runSftStep(ctx: StageContext, o: { model: string; data: string; sft: Record<string, unknown>; runDir: string; maxMinutes?: number }): Promise<StageOutcome> {
  return trainSftStep({
    ...o, configName: `${ctx.recipe.source}: stages.${ctx.name}.sft`, signal: ctx.signal, log: (l) => ctx.log(`${ctx.name}: ${l}`), progress: ctx.progress,
  });
}

/** A local-engine generator over a model directory, and a token counter with its tokenizer. */
export function localGenerator(dir: string, chat: boolean): { generator: Generator; countTokens: (t: string) => number } {
  const p = loadPretrained(dir, { requireTokenizer: true });
  return {
    generator: new LocalEngineGenerator({ model: p.model, tokenizer: p.tokenizer!, addSpecialTokens: !chat, name: dir }),
    countTokens: (t) => p.tokenizer!.encode(t, { addSpecialTokens: false }).length,
  };
}

function filtersOf(ctx: StageContext, countTokens?: (t: string) => number) {
  return buildFilters(ctx.recipe.filters, { language: ctx.recipe.language, countTokens, answerStrategies: ctx.recipe.answer_strategies });
}

/** Stage 1: the cold-start data (sampled, verified, rewritten, filtered) and SFT of the base model on it. */
export const runColdStartStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.cold_start_sft!;
  let data: string;
  let dataDetails: Record<string, unknown> = {};
  if (cfg.data !== undefined) {
    data = pipelinePath(ctx.recipe, cfg.data);
  } else {
    data = join(ctx.dir, 'data.jsonl');
    const reportPath = join(ctx.dir, 'data_report.json');
    if (!existsSync(reportPath)) {
      const sourceModel = cfg.source_model !== undefined ? pipelinePath(ctx.recipe, cfg.source_model) : ctx.baseModel;
      const problems = draw(ctx.data.train, cfg.prompts, 'cold-start', ctx.recipe.seed);
      ctx.log(`cold_start_sft: sampling ${problems.length} prompts x ${cfg.samples_per_prompt} from ${sourceModel}`);
      const { generator, countTokens } = localGenerator(sourceModel, ctx.data.chat);
      const g = await gatherSamples({
        generator, problems, samplesPath: join(ctx.dir, 'samples.jsonl'), signal: ctx.signal, log: (l) => ctx.log(`cold_start_sft: ${l}`),
        sampling: { n: cfg.samples_per_prompt, temperature: cfg.temperature, topP: cfg.top_p, maxNewTokens: cfg.max_new_tokens ?? ctx.recipe.max_new_tokens, seed: ctx.recipe.seed },
      });
      if (g.error) throw g.error;
      const r = await buildColdStartData({
        problems, samples: g.samples, verify: ctx.data.verify, filters: filtersOf(ctx, countTokens), maxPerPrompt: cfg.max_per_prompt,
        summaryTemplate: cfg.summary_template ?? ctx.recipe.summary_template, strategies: ctx.recipe.answer_strategies,
        source: `samples of ${sourceModel}`, out: data, reportPath,
      });
      ctx.log(`cold_start_sft: ${r.counts.kept} readable correct samples of ${r.counts.samples} (incorrect ${r.counts.incorrect}, dropped ${JSON.stringify(r.counts.dropped)}, duplicates ${r.counts.duplicates}, over cap ${r.counts.over_cap})`);
    }
    const rep = JSON.parse(readFileSync(reportPath, 'utf8')) as { counts: { kept: number; samples: number } };
    dataDetails = { cold_start_samples: rep.counts.samples, cold_start_kept: rep.counts.kept };
    if (rep.counts.kept === 0) {
      throw new AhaError(`cold_start_sft: no sample of ${rep.counts.samples} was correct and readable (see ${reportPath}): sample more prompts, raise the temperature, or loosen the filters`);
    }
  }
  const r = await runSftStep(ctx, { model: ctx.inputModel, data, sft: cfg.sft, runDir: join(ctx.dir, 'sft'), maxMinutes: cfg.max_minutes });
  return { ...r, details: { ...dataDetails, ...r.details } };
};

function grpoRewards(ctx: StageContext, w: RewardWeights): RewardSpec[] {
  const verify = ctx.data.verify;
  const out: RewardSpec[] = [];
  const isGeneral = (ex: Example) => ex.kind === 'general';
  if (w.accuracy > 0) {
    out.push({ name: 'accuracy', weight: w.accuracy, fn: async (c: string, ex: Example) => (isGeneral(ex) ? 0 : (await verify(c, ex as unknown as ReasoningProblem)) ? 1 : 0) });
  }
  if (w.format > 0) {
    out.push({ name: 'format', weight: w.format, fn: (c: string, _ex: Example, rc: { prompt: string }) => (readableFormat(c, rc.prompt) ? 1 : 0) });
  }
  if (w.language > 0) out.push({ name: 'language', weight: w.language, fn: languageConsistencyReward({ target: ctx.recipe.language }) });
  return out;
}

/** The general rewards of stage 4, loaded from their modules and scoring only general prompts. */
async function generalRewards(recipe: PipelineRecipe, a: AllScenariosConfig): Promise<RewardSpec[]> {
  if (a.general_rewards.length === 0) return [];
  const grpo = parseGrpoOptions(a.grpo, `${recipe.source}: stages.all_scenarios_rl.grpo`);
  const built = await buildRewards(a.general_rewards.map((r) => ({ name: r.name, weight: r.weight, options: r.options, label: r.label })), {
    grpo: { ...grpo, reward_weights: null }, baseDir: recipe.baseDir, source: `${recipe.source}: stages.all_scenarios_rl.general_rewards`,
  });
  return built.map((r) => {
    const fn: RewardFn<Example> = (c, ex, rc) => (ex.kind === 'general' ? r.fn(c, ex, rc) : 0);
    return { name: r.name, weight: r.weight, fn };
  });
}

async function runRlStep(ctx: StageContext, cfg: { prompts?: number; rewards: RewardWeights; grpo: Record<string, unknown>; training: Record<string, unknown>; max_minutes?: number }, extra: { rows?: Record<string, unknown>[]; rewards?: RewardSpec[] } = {}): Promise<StageOutcome> {
  const runDir = join(ctx.dir, 'grpo');
  const finalDir = join(runDir, 'final');
  if (existsSync(join(finalDir, 'trainer_state.json'))) return { checkpoint: finalDir, interrupted: false };
  const rows: Record<string, unknown>[] = draw(ctx.data.train, cfg.prompts, `rl:${ctx.name}`, ctx.recipe.seed).map((p) => ({ ...p, kind: 'reasoning' }));
  rows.push(...(extra.rows ?? []));
  const rewards = [...grpoRewards(ctx, cfg.rewards), ...(extra.rewards ?? [])];
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
        outDir: runDir, resume, signal: budget.signal, progress: ctx.progress, log: (l) => ctx.log(`${ctx.name}: ${l}`),
        // Without a progress bar (not a terminal), one line per logging step.
        onStep: ctx.progress ? undefined : (m) => {
          const every = Number(cfg.training.logging_steps ?? 1);
          if (m.step % every === 0) ctx.log(`${ctx.name}: step ${m.step}: ${formatStepSummary(m)}`);
        },
      },
    );
    const details = { rl_steps: r.step, last_reward: r.metrics?.reward.mean ?? null, last_accuracy: r.metrics?.accuracy ?? null };
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

/** Stage 2: GRPO with accuracy, format and language-consistency rewards. */
export const runReasoningRlStage: StageRunner = (ctx) => runRlStep(ctx, ctx.recipe.stages.reasoning_rl!);

/** Stage 3: rejection sampling from the RL checkpoint, then SFT of the base model on it. */
export const runRejectionStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.rejection_sft!;
  const files = rejectionFiles(ctx.dir);
  let report: RejectionSamplingReport | null = existsSync(files.report) ? (JSON.parse(readFileSync(files.report, 'utf8')) as RejectionSamplingReport) : null;
  if (report?.status !== 'complete') {
    const problems = draw(ctx.data.train, cfg.prompts, 'rejection', ctx.recipe.seed);
    ctx.log(`rejection_sft: sampling ${problems.length} prompts x ${cfg.samples_per_prompt} from ${ctx.previousCheckpoint}`);
    const { generator, countTokens } = localGenerator(ctx.previousCheckpoint, ctx.data.chat);
    const ratio = cfg.non_reasoning_ratio ?? (cfg.non_reasoning_data !== undefined ? 0.25 : 0);
    report = await runRejectionSampling({
      generator, checkpoint: ctx.previousCheckpoint, problems, verify: ctx.data.verify, filters: filtersOf(ctx, countTokens),
      sampling: { n: cfg.samples_per_prompt, temperature: cfg.temperature, topP: cfg.top_p, maxNewTokens: cfg.max_new_tokens ?? ctx.recipe.max_new_tokens, seed: ctx.recipe.seed },
      maxPerPrompt: cfg.max_per_prompt,
      nonReasoning: cfg.non_reasoning_data !== undefined ? { path: pipelinePath(ctx.recipe, cfg.non_reasoning_data), ratio } : undefined,
      outDir: ctx.dir, signal: ctx.signal, log: (l) => ctx.log(`rejection_sft: ${l}`),
    });
    const c = report.counts;
    ctx.log(`rejection_sft: kept ${c.kept} of ${c.samples} samples (incorrect ${c.incorrect}, dropped ${JSON.stringify(c.dropped)}, duplicates ${c.duplicates}, over cap ${c.over_cap}) + ${c.non_reasoning} non-reasoning`);
  }
  if (report.counts.kept === 0) {
    throw new AhaError(`rejection_sft: no sample of ${report.counts.samples} from ${report.checkpoint} was correct and readable (see ${files.report})`);
  }
  // As in the paper: the rejection-sampled data fine-tunes the base model, not the RL checkpoint.
  const r = await runSftStep(ctx, { model: ctx.baseModel, data: files.data, sft: cfg.sft, runDir: join(ctx.dir, 'sft'), maxMinutes: cfg.max_minutes });
  return { ...r, details: { rejection_samples: report.counts.samples, rejection_kept: report.counts.kept, non_reasoning: report.counts.non_reasoning, ...r.details } };
};

/** Stage 4: GRPO on reasoning prompts (rule rewards) and general prompts (reward modules). */
export const runAllScenariosStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.all_scenarios_rl!;
  const rows: Record<string, unknown>[] = [];
  if (cfg.general_dataset) {
    const general = await datasetRows(ctx.recipe, cfg.general_dataset, false);
    for (const g of general) {
      const r = ctx.data.render(g.question);
      rows.push({ ...g.fields, question: g.question, prompt: r.text, id: g.source, kind: 'general' });
    }
  }
  return runRlStep(ctx, cfg, { rows, rewards: await generalRewards(ctx.recipe, cfg) });
};

/** The stage runners by name. */
export const DEFAULT_STAGE_RUNNERS: Record<StageName, StageRunner> = {
  cold_start_sft: runColdStartStage,
  reasoning_rl: runReasoningRlStage,
  rejection_sft: runRejectionStage,
  all_scenarios_rl: runAllScenariosStage,
};

// ---------------------------------------------------------------------------------------------------------------
// The run

/** stage_done.json: a finished stage. */
export interface StageMarker {
  stage: StageName;
  /** Relative to the run directory when inside it. */
  checkpoint: string;
  eval: StageEval | null;
  seconds: number;
  finished_at: string;
  details?: Record<string, unknown>;
}

/** What each stage of a call did. */
export interface StageResult {
  name: StageName;
  status: 'done' | 'skipped' | 'interrupted' | 'not_run';
  checkpoint: string | null;
  eval: StageEval | null;
  seconds: number;
  details?: Record<string, unknown>;
}

/** Options of {@link runR1Pipeline}. */
export interface PipelineOptions {
  /** Run directory; overrides the recipe's output_dir. */
  outDir?: string;
  /** Continue a run: finished stages are skipped, an unfinished one continues. */
  resume?: boolean;
  /** Run only this stage (earlier stages of the recipe must be finished). */
  stage?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  progress?: boolean;
  /** Replace stage runners (tests: stubs). */
  runners?: Partial<Record<StageName, StageRunner>>;
  /** Replace the evaluation of a checkpoint (tests: stubs). */
  evaluate?: (modelDir: string, ctx: { recipe: PipelineRecipe; data: PipelineData; stage: StageName | 'base'; signal: AbortSignal }) => Promise<StageEval>;
}

/** What {@link runR1Pipeline} returns. */
export interface PipelineResult {
  outDir: string;
  interrupted: boolean;
  base: StageEval | null;
  stages: StageResult[];
}

const MARKER = 'stage_done.json';

/** The marker of a finished stage, or null. */
export function readStageMarker(outDir: string, stage: StageName): StageMarker | null {
  const p = join(outDir, stage, MARKER);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as StageMarker;
  } catch (e) {
    throw new AhaError(`${p}: unreadable stage marker (${(e as Error).message}); delete it to redo the stage`);
  }
}

function abs(outDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(outDir, p);
}

function rel(outDir: string, p: string): string {
  const r = relative(resolve(outDir), resolve(p));
  return r.startsWith('..') || isAbsolute(r) ? resolve(p) : r;
}

/** Files a recipe names must exist before any work starts. */
function checkInputs(recipe: PipelineRecipe): void {
  const need = (p: string, what: string, file: string | null = null) => {
    const full = pipelinePath(recipe, p);
    if (!existsSync(file ? join(full, file) : full)) throw new AhaError(`${recipe.source}: ${what}: ${full}${file ? ` has no ${file}` : ' not found'}`);
  };
  need(recipe.base_model, 'base_model', 'config.json');
  if (recipe.dataset) need(recipe.dataset.path, 'dataset.path');
  if (recipe.eval_dataset) need(recipe.eval_dataset.path, 'eval_dataset.path');
  const s = recipe.stages;
  if (s.cold_start_sft?.data) need(s.cold_start_sft.data, 'stages.cold_start_sft.data');
  if (s.cold_start_sft?.source_model) need(s.cold_start_sft.source_model, 'stages.cold_start_sft.source_model', 'config.json');
  if (s.rejection_sft?.non_reasoning_data) need(s.rejection_sft.non_reasoning_data, 'stages.rejection_sft.non_reasoning_data');
  if (s.all_scenarios_rl?.general_dataset) need(s.all_scenarios_rl.general_dataset.path, 'stages.all_scenarios_rl.general_dataset.path');
}

/**
 * Runs the pipeline (or one stage of it) into the run directory; see the file comment. Everything that can be
 * checked is checked before any stage starts: the recipe, its files, reward modules, the run directory's state.
 */
export async function runR1Pipeline(recipeIn: PipelineRecipe | PipelineRecipeInput, o: PipelineOptions = {}): Promise<PipelineResult> {
  const recipe: PipelineRecipe = 'baseDir' in recipeIn ? (recipeIn as PipelineRecipe) : parsePipelineRecipe(recipeIn, 'recipe');
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const outDir = resolve(o.outDir ?? (recipe.output_dir !== undefined ? pipelinePath(recipe, recipe.output_dir) : ''));
  if (o.outDir === undefined && recipe.output_dir === undefined) throw new AhaError(`${recipe.source}: no run directory: give --out DIR or output_dir`);
  const stages = recipeStages(recipe);
  let only: StageName | undefined;
  if (o.stage !== undefined) {
    if (!(STAGE_NAMES as readonly string[]).includes(o.stage)) throw new AhaError(`--stage ${o.stage}: unknown stage (stages: ${STAGE_NAMES.join(', ')})`);
    only = o.stage as StageName;
    if (!stages.includes(only)) throw new AhaError(`--stage ${o.stage}: ${recipe.source} has no such stage (it has ${stages.join(', ')})`);
  }
  checkInputs(recipe);
  const manifest = join(outDir, 'pipeline.json');
  const started = existsSync(manifest);
  if (started && !o.resume && only === undefined) {
    throw new AhaError(`${outDir}: already holds an r1 run: pass --resume to continue it (finished stages are skipped), or choose another output directory`);
  }
  if (!started && o.resume) throw new AhaError(`${outDir}: no r1 run to resume (no pipeline.json)`);

  // Which checkpoint each stage starts from, and whether the stages it needs are finished.
  const markers = new Map<StageName, StageMarker | null>(stages.map((s) => [s, readStageMarker(outDir, s)]));
  const baseModel = pipelinePath(recipe, recipe.base_model);
  const runList = only ? [only] : stages;
  for (const s of runList) {
    const stageDir = join(outDir, s);
    const partial = !markers.get(s) && existsSync(stageDir) && readdirSync(stageDir).length > 0;
    if (partial && !o.resume) throw new AhaError(`${stageDir}: stage ${s} was interrupted: pass --resume to continue it`);
  }
  if (only) {
    const missing = stages.slice(0, stages.indexOf(only)).filter((s) => !markers.get(s));
    if (missing.length > 0) throw new AhaError(`--stage ${only}: needs ${missing.join(', ')} finished first (run them, or the whole recipe)`);
  }

  const data = await preparePipelineData(recipe);
  if (recipe.stages.all_scenarios_rl) await generalRewards(recipe, recipe.stages.all_scenarios_rl); // modules load now, not hours later
  mkdirSync(outDir, { recursive: true });
  const { baseDir: _b, ...plain } = recipe;
  if (started) {
    // A changed recipe is allowed (e.g. more steps for a stage not run yet), but said: finished stages keep theirs.
    const before = (JSON.parse(readFileSync(manifest, 'utf8')) as { recipe?: Record<string, unknown> }).recipe ?? {};
    const now = plain as unknown as Record<string, unknown>;
    const changed = [...new Set([...Object.keys(before), ...Object.keys(now)])].filter((k) => k !== 'source').flatMap((k) => {
      if (k === 'stages') {
        const a = (before.stages ?? {}) as Record<string, unknown>, b = (now.stages ?? {}) as Record<string, unknown>;
        return STAGE_NAMES.filter((st) => JSON.stringify(a[st]) !== JSON.stringify(b[st])).map((st) => `stages.${st}`);
      }
      return JSON.stringify(before[k]) !== JSON.stringify(now[k]) ? [k] : [];
    });
    if (changed.length > 0) log(`r1: note: the recipe changed since the run started (${changed.join(', ')}); finished stages are not redone`);
  }
  writeFileAtomic(manifest, JSON.stringify({ recipe: plain, updated: new Date().toISOString() }, null, 2) + '\n');

  const signal = o.signal ?? new AbortController().signal;
  const evaluate = o.evaluate ?? (async (modelDir: string, c: { recipe: PipelineRecipe; data: PipelineData; signal: AbortSignal }) => {
    const { generator } = localGenerator(modelDir, c.data.chat);
    const e = c.recipe.eval;
    return evaluateReasoning({
      generator, problems: c.data.eval, verify: c.data.verify, language: c.recipe.language, samples: e.samples, temperature: e.temperature,
      topP: e.top_p, maxNewTokens: e.max_new_tokens ?? c.recipe.max_new_tokens, seed: c.recipe.seed, signal: c.signal,
    });
  });

  const results: StageResult[] = [];
  const summaryPath = join(outDir, 'summary.json');
  let base: StageEval | null = null;
  const baseEvalPath = join(outDir, 'base_eval.json');
  const writeSummary = () => writeFileAtomic(summaryPath, JSON.stringify({ base, stages: results, updated: new Date().toISOString() }, null, 2) + '\n');
  if (existsSync(baseEvalPath)) base = JSON.parse(readFileSync(baseEvalPath, 'utf8')) as StageEval;
  else if (recipe.eval.evaluate_base && (only === undefined || only === stages[0]) && !signal.aborted) {
    log(`r1: evaluating the base model ${baseModel} on ${data.eval.length} held-out problems x ${recipe.eval.samples}`);
    try {
      base = await evaluate(baseModel, { recipe, data, stage: 'base', signal });
      writeFileAtomic(baseEvalPath, JSON.stringify(base, null, 2) + '\n');
      log(`r1: ${formatStageEval('base', base)}`);
    } catch (e) {
      if (!signal.aborted) throw e;
    }
  }

  let previous = baseModel;
  let interrupted = false;
  for (const name of stages) {
    const marker = markers.get(name) ?? null;
    if (marker) {
      previous = abs(outDir, marker.checkpoint);
      results.push({ name, status: 'skipped', checkpoint: previous, eval: marker.eval, seconds: marker.seconds, details: marker.details });
      if (runList.includes(name)) log(`r1: ${name} already finished (${join(outDir, name, MARKER)}); skipped`);
      continue;
    }
    if (!runList.includes(name) || interrupted) {
      results.push({ name, status: 'not_run', checkpoint: null, eval: null, seconds: 0 });
      continue;
    }
    if (signal.aborted) {
      interrupted = true;
      results.push({ name, status: 'not_run', checkpoint: null, eval: null, seconds: 0 });
      continue;
    }
    const dir = join(outDir, name);
    const resume = existsSync(dir) && readdirSync(dir).length > 0;
    mkdirSync(dir, { recursive: true });
    const t0 = Date.now();
    log(`r1: stage ${name}${resume ? ' (continuing)' : ''}`);
    const ctx: StageContext = {
      name, dir, recipe, data, resume, signal, log, progress: o.progress ?? false, baseModel, previousCheckpoint: previous,
      inputModel: name === 'rejection_sft' ? baseModel : name === 'cold_start_sft' ? baseModel : previous,
    };
    const runner = o.runners?.[name] ?? DEFAULT_STAGE_RUNNERS[name];
    const stopped = () => {
      interrupted = true;
      results.push({ name, status: 'interrupted', checkpoint: null, eval: null, seconds: (Date.now() - t0) / 1000 });
    };
    let outcome: StageOutcome;
    try {
      outcome = await runner(ctx);
    } catch (e) {
      // An abort surfaces as the signal's reason from whatever was sampling: the work so far is on disk.
      if (signal.aborted) {
        stopped();
        continue;
      }
      throw e;
    }
    if (outcome.interrupted || signal.aborted) {
      stopped();
      continue;
    }
    log(`r1: ${name}: evaluating ${outcome.checkpoint}`);
    let ev: StageEval;
    try {
      ev = await evaluate(outcome.checkpoint, { recipe, data, stage: name, signal });
    } catch (e) {
      if (signal.aborted) {
        stopped();
        continue;
      }
      throw e;
    }
    writeFileAtomic(join(dir, 'eval.json'), JSON.stringify(ev, null, 2) + '\n');
    const seconds = (Date.now() - t0) / 1000;
    const m: StageMarker = { stage: name, checkpoint: rel(outDir, outcome.checkpoint), eval: ev, seconds, finished_at: new Date().toISOString(), details: outcome.details };
    writeFileAtomic(join(dir, MARKER), JSON.stringify(m, null, 2) + '\n');
    log(`r1: ${formatStageEval(name, ev)}`);
    previous = outcome.checkpoint;
    results.push({ name, status: 'done', checkpoint: outcome.checkpoint, eval: ev, seconds, details: outcome.details });
    writeSummary();
  }
  writeSummary();
  return { outDir, interrupted, base, stages: results };
}
