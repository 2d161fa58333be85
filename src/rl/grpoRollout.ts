/**
 * GRPO's first phase: draw prompts_per_step questions, sample num_generations completions of each, decode and score
 * them with the weighted rewards (a failing or hanging reward is reported and scored 0), and, under DAPO's dynamic
 * sampling, drop all-equal groups and sample more until the step is full or the batch budget is spent.
 */
import type { Model } from '../engine/model.ts';
import type { DataParallel } from '../parallel/dataParallel.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { scoreCompletions } from '../rewards/combine.ts';
import type { RewardErrorEvent } from '../rewards/types.ts';
import { dynamicSamplingFilter } from './advantages.ts';
import type { PreparedExample, PromptStream } from './grpoData.ts';
import type { Recipe } from './recipe.ts';
import { rewardScope, type ResolvedReward } from './rewardRegistry.ts';
import { completionSeed, sampleCompletions, type Completion } from './rollout.ts';

/** One prompt's completions and their scores. */
export interface RolloutGroup {
  prepared: PreparedExample;
  completions: Completion[];
  /** Decoded completions (the stop token left out). */
  texts: string[];
  /** Weighted total reward per completion. */
  totals: number[];
  /** perReward[k][j]: reward k of completion j. */
  perReward: number[][];
  /** reasons[k][j]: the reason reward k noted for completion j (RewardContext.note), null when none. */
  reasons: (string | null)[][];
}

/** What a rollout produced. */
export interface Rollout {
  /** Every group sampled this step (metrics are over these). */
  sampled: RolloutGroup[];
  /** The groups the update learns from (all of them, or under dynamic sampling those with unequal rewards). */
  used: RolloutGroup[];
  zeroVarianceGroups: number;
  batches: number;
  rewardErrors: number;
  /**
   * Per reward name, the calls that failed (only rewards that failed), and the calls each reward got (a scoped
   * reward's: on the examples it applies to).
   */
  rewardErrorsByName: Record<string, number>;
  rewardCallsByName: Record<string, number>;
  generatedTokens: number;
  /** The data stream's position after this rollout. */
  cursor: number;
  /** Seconds spent sampling and scoring. */
  time: { sample: number; score: number };
  /** The signal fired mid-rollout: the step is to be redone on resume (same prompts, same seeds). */
  abandoned: boolean;
}

/** What a rollout reads. */
export interface RolloutContext {
  recipe: Recipe;
  model: Model;
  tokenizer: Tokenizer;
  rewards: readonly ResolvedReward[];
  prepared: readonly PreparedExample[];
  stream: PromptStream;
  stopTokenIds: number[];
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Data-parallel run: this rank samples and scores its share of each batch's prompts, then all ranks swap. */
  parallel?: DataParallel | null;
}

/** One rank's share of a batch, sampled and scored (plain data: it travels between ranks). */
interface BatchPart {
  completions: Completion[];
  texts: string[];
  totals: number[];
  perReward: { scores: number[]; reasons: (string | null)[] }[];
  errors: number;
  failures: [string, number][];
  calls: Record<string, number>;
}

/** The ranks' parts of one batch, in rank order: the whole batch, as one process would have scored it. */
function joinParts(parts: BatchPart[]): BatchPart {
  const sum = (a: Record<string, number>, b: Iterable<[string, number]>) => {
    for (const [k, v] of b) a[k] = (a[k] ?? 0) + v;
    return a;
  };
  const failures = parts.reduce((a, p) => sum(a, p.failures), {} as Record<string, number>);
  return {
    completions: parts.flatMap((p) => p.completions),
    texts: parts.flatMap((p) => p.texts),
    totals: parts.flatMap((p) => p.totals),
    perReward: parts[0].perReward.map((_, k) => ({
      scores: parts.flatMap((p) => p.perReward[k].scores),
      reasons: parts.flatMap((p) => p.perReward[k].reasons),
    })),
    errors: parts.reduce((a, p) => a + p.errors, 0),
    failures: Object.entries(failures),
    calls: parts.reduce((a, p) => sum(a, Object.entries(p.calls)), {} as Record<string, number>),
  };
}

/**
 * Logs the first two failures of each reward in full, then counts the rest for one summary line per batch
 * ({@link RewardErrorLog.flush}).
 */
class RewardErrorLog {
  readonly failures = new Map<string, number>();
  private hidden = 0;
  count = 0;
  constructor(
    private readonly step: number,
    private readonly log: (line: string) => void,
    private readonly describe: (index: number) => { question: string; completion: string },
    private readonly rewards: readonly ResolvedReward[] = [],
  ) {}
  onError = (e: RewardErrorEvent): void => {
    this.count++;
    const n = (this.failures.get(e.rewardName) ?? 0) + 1;
    this.failures.set(e.rewardName, n);
    if (n > 2) {
      this.hidden++;
      return;
    }
    const d = this.describe(e.exampleIndex);
    const q = d.question.replace(/\s+/g, ' ').slice(0, 60);
    const what = e.kind === 'timeout' ? 'timed out' : e.kind === 'throw' ? 'threw' : 'returned a non-number';
    // Name where the recipe declares the reward, so the line leads to the file to fix.
    const where = this.rewards.find((r) => r.name === e.rewardName)?.where;
    this.log(
      `grpo: step ${this.step}: reward '${e.rewardName}'${where ? ` (${where})` : ''} ${what} on completion ${e.exampleIndex} (question "${q}", completion "${d.completion.replace(/\s+/g, ' ').slice(0, 40)}"): ${e.message}`,
    );
  };
  flush(completions: number): void {
    if (this.hidden === 0) return;
    const counts = [...this.failures].map(([name, n]) => `${name}: ${n}`).join(', ');
    this.log(
      `grpo: step ${this.step}: ... and ${this.hidden} more reward errors (of ${completions} completions: ${counts})`,
    );
  }
}

/** Samples and scores step `step`'s groups, starting at data position `cursor`. */
export async function rollout(ctx: RolloutContext, step: number, seed: number, cursor: number): Promise<Rollout> {
  const { recipe, model, tokenizer, rewards, prepared, stream } = ctx;
  const { grpo, training: t } = recipe;
  const G = grpo.num_generations;
  const aborted = () => ctx.signal?.aborted === true;
  const r: Rollout = {
    sampled: [],
    used: [],
    zeroVarianceGroups: 0,
    batches: 0,
    rewardErrors: 0,
    rewardErrorsByName: {},
    rewardCallsByName: {},
    generatedTokens: 0,
    cursor,
    time: { sample: 0, score: 0 },
    abandoned: false,
  };
  const maxBatches = t.dynamic_sampling ? t.dynamic_sampling_max_batches : 1;
  for (let b = 0; b < maxBatches && r.used.length < t.prompts_per_step; b++) {
    if (aborted()) break;
    r.batches++;
    const P = t.prompts_per_step;
    const batch = Array.from({ length: P }, (_, k) => prepared[stream.at(r.cursor + k)]);
    r.cursor += P;
    // A data-parallel rank samples and scores prompts [lo, hi) of the batch, with the seeds one process would use.
    const [lo, hi] = ctx.parallel ? ctx.parallel.share(P) : [0, P];
    const mine = batch.slice(lo, hi);
    const seeds: number[] = [];
    for (let g = lo; g < hi; g++) for (let j = 0; j < G; j++) seeds.push(completionSeed(seed, step, b, g, j));
    const t0 = performance.now();
    const completions =
      mine.length === 0
        ? []
        : await sampleCompletions(
            model,
            mine.map((p) => p.promptIds),
            {
              numGenerations: G,
              maxNewTokens: grpo.max_completion_length,
              temperature: grpo.temperature,
              topP: grpo.top_p,
              topK: grpo.top_k,
              stopTokenIds: ctx.stopTokenIds,
              seeds,
              batchSize: t.sampling_batch_size,
            },
          );
    r.time.sample += (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const texts = completions.map((c) =>
      tokenizer.decode(c.finishReason === 'stop' ? c.completionIds.slice(0, -1) : c.completionIds),
    );
    const items = completions.map((c, i) => ({
      completion: texts[i],
      example: mine[c.group].example,
      prompt: mine[c.group].promptText,
      completionIds: c.completionIds,
    }));
    const errors = new RewardErrorLog(
      step,
      ctx.log,
      (i) => ({ question: String(items[i].example.question ?? ''), completion: texts[i] }),
      rewards,
    );
    const scored = await scoreCompletions(rewards, items, {
      timeoutMs: recipe.reward_timeout_ms,
      onError: errors.onError,
    });
    errors.flush(items.length);
    const calls: Record<string, number> = {};
    for (const rw of rewards) {
      const applies = rewardScope(rw.fn);
      calls[rw.name] = applies ? items.filter((it) => applies(it.example)).length : items.length;
    }
    let part: BatchPart = {
      completions: completions.map((c) => ({ ...c, group: c.group + lo })),
      texts,
      totals: scored.total,
      perReward: rewards.map((_, k) => ({
        scores: scored.perReward[k]?.scores ?? [],
        reasons: scored.perReward[k]?.reasons ?? [],
      })),
      errors: errors.count,
      failures: [...errors.failures],
      calls,
    };
    if (ctx.parallel) part = joinParts(ctx.parallel.allgather(part));
    for (const c of part.completions) r.generatedTokens += c.completionIds.length;
    r.rewardErrors += part.errors;
    for (const [name, n] of Object.entries(part.calls))
      r.rewardCallsByName[name] = (r.rewardCallsByName[name] ?? 0) + n;
    for (const [name, n] of part.failures) r.rewardErrorsByName[name] = (r.rewardErrorsByName[name] ?? 0) + n;
    r.time.score += (performance.now() - t1) / 1000;
    const filter = dynamicSamplingFilter(part.totals, G);
    for (let g = 0; g < P; g++) {
      const sl = <T>(xs: readonly T[]): T[] => xs.slice(g * G, (g + 1) * G);
      const group: RolloutGroup = {
        prepared: batch[g],
        completions: part.completions.slice(g * G, (g + 1) * G),
        texts: sl(part.texts),
        totals: sl(part.totals),
        perReward: part.perReward.map((x) => sl(x.scores)),
        reasons: part.perReward.map((x) => sl(x.reasons)),
      };
      r.sampled.push(group);
      if (filter.allEqual[g]) r.zeroVarianceGroups++;
      if (!t.dynamic_sampling || !filter.allEqual[g]) r.used.push(group);
    }
  }
  r.abandoned = aborted();
  r.used = r.used.slice(0, t.prompts_per_step);
  return r;
}
