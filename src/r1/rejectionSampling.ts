/**
 * Rejection sampling, DeepSeek-R1's third stage (and the data step of distillation): sample several completions per
 * prompt from a checkpoint, keep only the correct ones that pass the readability filters, deduplicate, cap how many
 * each prompt contributes, mix in non-reasoning SFT data at a chosen ratio, and write an SFT dataset with a report
 * of where every sample went.
 *
 * Samples are appended to `samples.jsonl` as each prompt completes, so an interrupted run (a kill, a teacher server
 * that keeps failing) keeps what it gathered and a rerun samples only the prompts still missing.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import { readJsonlObjects } from '../data/jsonl.ts';
import { extractAnswer, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { mathEqual } from '../verify/mathEquivalence.ts';
import type { Generation, Generator } from '../eval/generators.ts';
import type { ChatMessage } from '../model/chatTemplate.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { isWriter, mapShared, writeOnce } from '../parallel/dataParallel.ts';
import { applyFilters, type SampleFilter } from './filters.ts';

/** A problem with a verifiable reference answer, ready to sample. */
export interface ReasoningProblem {
  /** Stable id: sampling seeds, resume and provenance use it. */
  id: string;
  question: string;
  answer: string;
  /** The text the generator continues (template applied). */
  prompt: string;
  /**
   * The prompt as the SFT record carries it, when it differs from `prompt` (a student's template in
   * distillation; chat messages for a chat model, which SFT renders with its own template).
   */
  sftPrompt?: string | ChatMessage[];
  /** The task's own example (e.g. an ArithmeticExample) for a task check. */
  example?: unknown;
}

/** Decides whether a completion answers a problem correctly. */
export type Verifier = (completion: string, problem: ReasoningProblem) => boolean | Promise<boolean>;

/**
 * Answer rules for R1-style outputs: the `<answer>` tag (R1-Zero), `\boxed{}` (R1's math instruction), "the answer
 * is X" (the readable summary). No bare last number: a summary must state its answer.
 */
export const SUMMARY_STRATEGIES: readonly AnswerStrategy[] = ['answerTag', 'boxed', 'answerIs'];

/**
 * The final answer of a completion: looked for after the last `</think>` when there is one (R1 states it in the
 * summary; numbers in the reasoning do not count), else in the whole text. Null when none is found.
 */
export function finalAnswer(
  completion: string,
  strategies: readonly AnswerStrategy[] = SUMMARY_STRATEGIES,
): string | null {
  const close = completion.lastIndexOf('</think>');
  const text = close >= 0 ? completion.slice(close + '</think>'.length) : completion;
  return extractAnswer(text, { strategies }).answer;
}

/**
 * A verifier that extracts the final answer ({@link finalAnswer}) and compares it with the problem's reference with
 * `check` (e.g. a Task's check on the problem's example) or, by default, mathEqual.
 */
export function answerVerifier(
  o: { check?: (answer: string, problem: ReasoningProblem) => boolean; strategies?: readonly AnswerStrategy[] } = {},
): Verifier {
  return (completion, problem) => {
    const got = finalAnswer(completion, o.strategies);
    if (got === null) return false;
    if (o.check) return o.check(got, problem);
    return mathEqual(problem.answer, got).equal;
  };
}

/** Whitespace-normalised text: the deduplication key. */
export function normalizeWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Gathering samples, incrementally

/** One sampled completion as samples.jsonl stores it. */
export interface SampleLine {
  problem_id: string;
  sample: number;
  completion: string;
  tokens: number | null;
  finish_reason: string;
}

/**
 * Reads the samples gathered so far: lines of prompts whose `n` samples are all there. A torn last line (the
 * process was killed mid-write) and lines of unfinished prompts are dropped, and the file rewritten without them.
 */
export function readGatheredSamples(path: string, n: number): Map<string, Generation[]> {
  const done = new Map<string, Generation[]>();
  if (!existsSync(path)) return done;
  const lines = readFileSync(path, 'utf8').split('\n');
  const byId = new Map<string, SampleLine[]>();
  let bad = 0;
  for (const raw of lines) {
    if (raw.trim() === '') continue;
    let v: SampleLine;
    try {
      v = JSON.parse(raw) as SampleLine;
    } catch {
      bad++;
      continue;
    }
    if (typeof v.problem_id !== 'string' || typeof v.completion !== 'string' || !Number.isInteger(v.sample)) {
      bad++;
      continue;
    }
    const list = byId.get(v.problem_id) ?? [];
    list[v.sample] = v;
    byId.set(v.problem_id, list);
  }
  const kept: SampleLine[] = [];
  for (const [id, list] of byId) {
    if (list.length < n || list.slice(0, n).some((x) => x === undefined)) continue;
    const first = list.slice(0, n);
    done.set(
      id,
      first.map((x) => ({ text: x.completion, tokens: x.tokens, finishReason: x.finish_reason })),
    );
    kept.push(...first);
  }
  if (isWriter() && (bad > 0 || kept.length !== lines.filter((l) => l.trim() !== '').length)) {
    writeFileAtomic(path, kept.map((x) => JSON.stringify(x) + '\n').join(''));
  }
  return done;
}

/** Sampling settings. */
export interface SamplingSettings {
  /** Samples per prompt. */
  n: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
}

/** What {@link gatherSamples} got: every prompt's samples gathered so far, and the error that stopped it, if any. */
export interface GatherResult {
  samples: Map<string, Generation[]>;
  /** Prompts sampled by this call (the rest came from the file). */
  newlySampled: number;
  error: Error | null;
}

/**
 * Samples `n` completions of every problem not yet in `samplesPath`, appending each prompt's samples as soon as
 * they are complete. A generator error (e.g. a server still failing after its retries) does not throw: it is
 * returned with everything gathered so far. An abort (`signal`) does throw, after the finished prompts are saved.
 */
export async function gatherSamples(o: {
  generator: Generator;
  problems: readonly ReasoningProblem[];
  sampling: SamplingSettings;
  samplesPath: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}): Promise<GatherResult> {
  const ids = new Set<string>();
  for (const p of o.problems) {
    if (ids.has(p.id)) throw new AhaError(`two problems have the id '${p.id}'`);
    ids.add(p.id);
  }
  mkdirSync(join(o.samplesPath, '..'), { recursive: true });
  const samples = readGatheredSamples(o.samplesPath, o.sampling.n);
  for (const id of [...samples.keys()]) if (!ids.has(id)) samples.delete(id);
  const todo = o.problems.filter((p) => !samples.has(p.id));
  if (samples.size > 0)
    o.log?.(
      `${samples.size} of ${o.problems.length} prompts already sampled (${o.samplesPath}); sampling ${todo.length}`,
    );
  if (todo.length === 0) return { samples, newlySampled: 0, error: null };
  let newly = 0;
  try {
    await o.generator.generate(
      todo.map((p) => p.prompt),
      {
        n: o.sampling.n,
        temperature: o.sampling.temperature,
        topP: o.sampling.topP,
        maxNewTokens: o.sampling.maxNewTokens,
        seed: o.sampling.seed,
        ids: todo.map((p) => p.id),
        signal: o.signal,
        onPrompt: (i, outputs) => {
          const p = todo[i];
          const lines = outputs.map(
            (g, j) =>
              JSON.stringify({
                problem_id: p.id,
                sample: j,
                completion: g.text,
                tokens: g.tokens,
                finish_reason: g.finishReason,
              } satisfies SampleLine) + '\n',
          );
          // Under mpirun every rank gets every prompt's samples (src/parallel/shardedGenerator.ts); rank 0 saves them.
          if (isWriter()) appendFileSync(o.samplesPath, lines.join(''));
          samples.set(p.id, outputs.slice());
          newly++;
        },
      },
    );
  } catch (e) {
    if (o.signal?.aborted) throw e;
    const err = e instanceof Error ? e : new Error(String(e));
    o.log?.(`sampling stopped after ${newly} new prompts: ${err.message}`);
    return { samples, newlySampled: newly, error: err };
  }
  return { samples, newlySampled: newly, error: null };
}

// ---------------------------------------------------------------------------------------------------------------
// Selecting samples

/** A rewritten completion, or the reason (a drop-count key) it was dropped. */
export type TransformResult = { completion: string } | { drop: string };

/** One kept sample. */
export interface SelectedSample {
  problem: ReasoningProblem;
  sample: number;
  completion: string;
  tokens: number | null;
}

/** Where the samples went: every sample is counted once, at the first step that dropped it. */
export interface SelectionCounts {
  samples: number;
  /** Wrong or no answer. */
  incorrect: number;
  /** Per filter name (the first filter that failed). */
  dropped: Record<string, number>;
  /** Same text as an earlier kept sample of the same prompt (after whitespace normalisation). */
  duplicates: number;
  /** Correct, readable and new, but the prompt already had max_per_prompt samples. */
  over_cap: number;
  kept: number;
}

/**
 * The correct, readable, distinct samples, at most `maxPerPrompt` per prompt (the first ones in sample order).
 * `transform` may rewrite a correct sample before it is filtered (the cold-start rewrite) or drop it (null, with a
 * reason counted under `dropped[reason]`).
 */
export async function selectSamples(o: {
  problems: readonly ReasoningProblem[];
  samples: ReadonlyMap<string, readonly Generation[]>;
  verify: Verifier;
  filters: readonly SampleFilter[];
  maxPerPrompt: number;
  transform?: (completion: string, problem: ReasoningProblem) => TransformResult | Promise<TransformResult>;
}): Promise<{ selected: SelectedSample[]; counts: SelectionCounts; perPrompt: Record<string, number> }> {
  if (!(Number.isInteger(o.maxPerPrompt) && o.maxPerPrompt >= 1))
    throw new AhaError(`max per prompt must be a positive integer, got ${o.maxPerPrompt}`);
  const counts: SelectionCounts = { samples: 0, incorrect: 0, dropped: {}, duplicates: 0, over_cap: 0, kept: 0 };
  for (const f of o.filters) counts.dropped[f.name] = 0;
  const selected: SelectedSample[] = [];
  const perPrompt: Record<string, number> = {};
  // Verified first, each rank its share under mpirun (a verifier may run code or ask a judge).
  const pairs = o.problems.flatMap((p) => (o.samples.get(p.id) ?? []).map((g) => ({ p, g })));
  const verdicts = await mapShared(pairs, ({ p, g }) => o.verify(g.text, p));
  let v = 0;
  for (const problem of o.problems) {
    const gens = o.samples.get(problem.id);
    if (!gens) continue;
    perPrompt[problem.id] = 0;
    const seen = new Set<string>();
    for (let j = 0; j < gens.length; j++) {
      const g = gens[j];
      counts.samples++;
      if (!verdicts[v++]) {
        counts.incorrect++;
        continue;
      }
      let text = g.text;
      let tokens = g.tokens;
      if (o.transform) {
        const t = await o.transform(text, problem);
        if ('drop' in t) {
          counts.dropped[t.drop] = (counts.dropped[t.drop] ?? 0) + 1;
          continue;
        }
        if (t.completion !== text) tokens = null;
        text = t.completion;
      }
      const f = applyFilters(o.filters, { completion: text, tokens });
      if (!f.keep) {
        counts.dropped[f.filter!]++;
        continue;
      }
      const key = normalizeWhitespace(text);
      if (seen.has(key)) {
        counts.duplicates++;
        continue;
      }
      seen.add(key);
      if (perPrompt[problem.id] >= o.maxPerPrompt) {
        counts.over_cap++;
        continue;
      }
      perPrompt[problem.id]++;
      counts.kept++;
      selected.push({ problem, sample: j, completion: text, tokens });
    }
  }
  return { selected, counts, perPrompt };
}

// ---------------------------------------------------------------------------------------------------------------
// SFT records and the non-reasoning mix

/** One line of an SFT dataset (prompt/completion, or TRL's conversational prompt/completion), with provenance. */
export type SftRecord = Record<string, unknown>;

/** The SFT line of a kept sample: the prompt as the SFT record carries it, the completion, and where it came from. */
export function sftRecordOf(s: SelectedSample, provenance: Record<string, unknown>): SftRecord {
  const prompt = s.problem.sftPrompt ?? s.problem.prompt;
  const pc = Array.isArray(prompt)
    ? { prompt, completion: [{ role: 'assistant', content: s.completion }] }
    : { prompt, completion: s.completion };
  return { ...pc, problem_id: s.problem.id, sample: s.sample, ...provenance };
}

/** Reads non-reasoning SFT lines (any aha sft format: text, prompt/completion, messages). */
export function readSftRecords(path: string): SftRecord[] {
  return readJsonlObjects(path).map(({ value, line }) => {
    if (!('text' in value) && !('messages' in value) && !('prompt' in value && 'completion' in value)) {
      throw new AhaError(`${path}:${line}: expected an SFT line ("text", "prompt" + "completion", or "messages")`);
    }
    return value;
  });
}

/**
 * Adds non-reasoning lines so that they make `ratio` of the mixed dataset (R1: about 200k of 800k, 0.25): as many as
 * round(ratio / (1 - ratio) * reasoning), drawn without replacement by the seed, or all of them when there are too
 * few (the report says so).
 */
export function mixNonReasoning(
  reasoning: readonly SftRecord[],
  pool: readonly SftRecord[],
  ratio: number,
  seed: number,
): { records: SftRecord[]; used: number; wanted: number } {
  if (!(ratio >= 0 && ratio < 1)) throw new AhaError(`non-reasoning ratio must be in [0, 1), got ${ratio}`);
  const wanted = ratio === 0 ? 0 : Math.round((ratio / (1 - ratio)) * reasoning.length);
  const order = new Rng(fnv1a32(`non-reasoning:${seed}`)).shuffle(Array.from({ length: pool.length }, (_, i) => i));
  const picked = order
    .slice(0, Math.min(wanted, pool.length))
    .sort((a, b) => a - b)
    .map((i) => ({ ...pool[i], source: pool[i].source ?? 'non_reasoning' }));
  return { records: [...reasoning, ...picked], used: picked.length, wanted };
}

// ---------------------------------------------------------------------------------------------------------------
// The whole step

/** Options of {@link runRejectionSampling}. */
export interface RejectionSamplingOptions {
  generator: Generator;
  /** The checkpoint (or teacher) sampled, for provenance. */
  checkpoint: string;
  problems: readonly ReasoningProblem[];
  verify: Verifier;
  filters: readonly SampleFilter[];
  sampling: SamplingSettings;
  /** Kept samples per prompt at most. */
  maxPerPrompt: number;
  /** Non-reasoning SFT lines (a file, or lines in memory) and their share of the final dataset. */
  nonReasoning?: { path?: string; records?: readonly SftRecord[]; ratio: number };
  /** Writes samples.jsonl (incremental), data.jsonl and report.json here. */
  outDir: string;
  /** `source` of the records and the report ('rejection_sampling', 'distillation'). */
  source?: string;
  /** More provenance for every record (e.g. the teacher and its sampling settings). */
  provenance?: Record<string, unknown>;
  /** With a generator error: write the data from the samples gathered and report it (true), or throw (default). */
  allowPartial?: boolean;
  /** Rewrites each correct sample before filtering (e.g. a teacher's output into the student's format). */
  transform?: (completion: string, problem: ReasoningProblem) => TransformResult | Promise<TransformResult>;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** report.json of a rejection-sampling run. */
export interface RejectionSamplingReport {
  source: string;
  status: 'complete' | 'partial';
  checkpoint: string;
  generator: string;
  created: string;
  settings: {
    samples_per_prompt: number;
    max_per_prompt: number;
    temperature: number;
    top_p: number;
    max_new_tokens: number;
    seed: number;
    filters: string[];
    non_reasoning_ratio: number;
  };
  prompts: number;
  prompts_sampled: number;
  prompt_ids: string[];
  counts: SelectionCounts & {
    prompts_with_data: number;
    non_reasoning: number;
    non_reasoning_wanted: number;
    records: number;
  };
  per_prompt_kept: Record<string, number>;
  generation_error: string | null;
  /** What the data lacks that was asked for (e.g. fewer non-reasoning lines than the ratio wants). */
  warnings: string[];
  files: { samples: string; data: string };
}

/** Files of a rejection-sampling directory. */
export function rejectionFiles(outDir: string): { samples: string; data: string; report: string } {
  return {
    samples: join(outDir, 'samples.jsonl'),
    data: join(outDir, 'data.jsonl'),
    report: join(outDir, 'report.json'),
  };
}

/**
 * Samples, selects, mixes and writes the SFT dataset (data.jsonl, written atomically) and report.json. A generator
 * that fails for good leaves its samples in samples.jsonl; the call then throws an AhaError saying how far it got,
 * after writing a report with status 'partial' (and, with allowPartial, the data of the samples gathered).
 */
export async function runRejectionSampling(o: RejectionSamplingOptions): Promise<RejectionSamplingReport> {
  const files = rejectionFiles(o.outDir);
  const source = o.source ?? 'rejection_sampling';
  const pool = o.nonReasoning
    ? (o.nonReasoning.records ?? (o.nonReasoning.path ? readSftRecords(o.nonReasoning.path) : []))
    : [];
  const g = await gatherSamples({
    generator: o.generator,
    problems: o.problems,
    sampling: o.sampling,
    samplesPath: files.samples,
    signal: o.signal,
    log: o.log,
  });
  const sel = await selectSamples({
    problems: o.problems,
    samples: g.samples,
    verify: o.verify,
    filters: o.filters,
    maxPerPrompt: o.maxPerPrompt,
    transform: o.transform,
  });
  const provenance = { source, checkpoint: o.checkpoint, ...o.provenance };
  const reasoning = sel.selected.map((s) => sftRecordOf(s, provenance));
  const ratio = o.nonReasoning?.ratio ?? 0;
  const mixed = mixNonReasoning(reasoning, pool, ratio, o.sampling.seed);
  const warnings: string[] = [];
  if (mixed.used < mixed.wanted) {
    const share = mixed.records.length > 0 ? mixed.used / mixed.records.length : 0;
    warnings.push(
      `non-reasoning lines: ${mixed.wanted} wanted for a share of ${ratio} next to ${reasoning.length} reasoning lines, but ${o.nonReasoning?.path ?? 'the pool'} has ${pool.length}: all used, a share of ${Number(share.toFixed(3))}`,
    );
  }
  const report: RejectionSamplingReport = {
    source,
    status: g.error ? 'partial' : 'complete',
    checkpoint: o.checkpoint,
    generator: o.generator.description,
    created: new Date().toISOString(),
    settings: {
      samples_per_prompt: o.sampling.n,
      max_per_prompt: o.maxPerPrompt,
      temperature: o.sampling.temperature,
      top_p: o.sampling.topP,
      max_new_tokens: o.sampling.maxNewTokens,
      seed: o.sampling.seed,
      filters: o.filters.map((f) => f.name),
      non_reasoning_ratio: o.nonReasoning?.ratio ?? 0,
    },
    prompts: o.problems.length,
    prompts_sampled: g.samples.size,
    prompt_ids: o.problems.map((p) => p.id),
    counts: {
      ...sel.counts,
      prompts_with_data: Object.values(sel.perPrompt).filter((n) => n > 0).length,
      non_reasoning: mixed.used,
      non_reasoning_wanted: mixed.wanted,
      records: mixed.records.length,
    },
    per_prompt_kept: sel.perPrompt,
    generation_error: g.error ? g.error.message : null,
    warnings,
    files: { samples: files.samples, data: files.data },
  };
  if (g.error && !o.allowPartial) {
    writeOnce(() => writeFileAtomic(files.report, JSON.stringify(report, null, 2) + '\n'));
    throw new AhaError(
      `${o.generator.description}: sampling failed after ${g.samples.size} of ${o.problems.length} prompts (${g.samples.size * o.sampling.n} samples kept in ${files.samples}; ` +
        `rerun to continue): ${g.error.message}`,
    );
  }
  for (const w of warnings) o.log?.(`warning: ${w}`);
  writeOnce(() => {
    writeFileAtomic(files.data, mixed.records.map((r) => JSON.stringify(r) + '\n').join(''));
    writeFileAtomic(files.report, JSON.stringify(report, null, 2) + '\n');
  });
  return report;
}
