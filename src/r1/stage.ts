/**
 * What every stage of `aha r1` shares: the runner contract (what a stage gets and returns), its wall-clock budget,
 * its own draw of the training problems, its filters, and a local generator to sample from a checkpoint.
 */
import type { ProgressSink } from '../train/progress.ts';
import { LocalEngineGenerator, type Generator } from '../eval/generators.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import { loadPretrained } from '../model/pretrained.ts';
import { buildFilters, type SampleFilter } from './filters.ts';
import { shardedGenerator } from '../parallel/shardedGenerator.ts';
import { agreedSignal } from '../parallel/dataParallel.ts';
import type { PipelineData } from './pipelineData.ts';
import type { PipelineRecipe, StageName } from './pipelineRecipe.ts';

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
  progress?: ProgressSink;
}

/** What a stage runner returns: its model, or that it was interrupted (its partial work stays on disk). */
export interface StageOutcome {
  checkpoint: string;
  interrupted: boolean;
  details?: Record<string, unknown>;
}

/** Runs one stage (src/r1/stages/); the pipeline evaluates and records what it returns. */
export type StageRunner = (ctx: StageContext) => Promise<StageOutcome>;

/**
 * A signal that fires on the caller's abort or when `minutes` have passed (which `expired` then says). Under
 * mpirun the budget ends on every rank at the same point, when the first rank's clock runs out ({@link agreedSignal};
 * the caller's signal is agreed on already).
 */
export function budgetSignal(
  outer: AbortSignal,
  minutes: number | undefined,
): { signal: AbortSignal; expired: () => boolean; dispose: () => void } {
  const c = new AbortController();
  const onAbort = () => c.abort(outer.reason);
  if (outer.aborted) c.abort(outer.reason);
  else outer.addEventListener('abort', onAbort, { once: true });
  const timer =
    minutes === undefined ? undefined : setTimeout(() => c.abort(new Error('time budget')), minutes * 60_000);
  timer?.unref?.();
  const agreed = agreedSignal(c.signal);
  return {
    signal: agreed.signal,
    // Aborted, and not by the caller: by the clock (of some rank).
    expired: () => agreed.signal.aborted && !outer.aborted,
    dispose: () => {
      if (timer) clearTimeout(timer);
      outer.removeEventListener('abort', onAbort);
      agreed.dispose();
    },
  };
}

/** A budget as log lines say it ("the 1.5-minute budget"). */
export function minutesText(m: number): string {
  return `${Number(m.toFixed(2))}-minute`;
}

/** The first `n` problems of a seeded permutation (a stage's own draw), or all of them. */
export function seededDraw<T>(items: readonly T[], n: number | undefined, salt: string, seed: number): T[] {
  if (n === undefined || n >= items.length) return items.slice();
  const order = new Rng(fnv1a32(`${salt}:${seed}`)).shuffle(items.map((_, i) => i));
  return order
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i]);
}

/** The recipe's sample filters, counting tokens with the sampled model's tokenizer when given. */
export function stageFilters(ctx: StageContext, countTokens?: (t: string) => number): SampleFilter[] {
  return buildFilters(ctx.recipe.filters, {
    language: ctx.recipe.language,
    countTokens,
    answerStrategies: ctx.recipe.answer_strategies,
  });
}

/**
 * A local-engine generator over a model directory (under mpirun, each rank sampling its share of the prompts:
 * src/parallel/shardedGenerator.ts), and a token counter with its tokenizer.
 */
export function localGenerator(
  dir: string,
  chat: boolean,
): { generator: Generator; countTokens: (t: string) => number } {
  const p = loadPretrained(dir, { requireTokenizer: true });
  return {
    generator: shardedGenerator(
      new LocalEngineGenerator({
        model: p.model,
        tokenizer: p.tokenizer!,
        addSpecialTokens: !chat,
        name: dir,
      }),
    ),
    countTokens: (t) => p.tokenizer!.encode(t, { addSpecialTokens: false }).length,
  };
}

/** A sampling stage's settings (cold start, rejection sampling) as the sampler takes them, defaults from the recipe. */
export function stageSampling(
  ctx: StageContext,
  cfg: { samples_per_prompt: number; temperature: number; top_p: number; max_new_tokens?: number | null },
): { n: number; temperature: number; topP: number; maxNewTokens: number; seed: number } {
  return {
    n: cfg.samples_per_prompt,
    temperature: cfg.temperature,
    topP: cfg.top_p,
    maxNewTokens: cfg.max_new_tokens ?? ctx.recipe.max_new_tokens,
    seed: ctx.recipe.seed,
  };
}
