/**
 * The evaluation core, the same for every sample source: k samples per problem, each scored by the benchmark's
 * {@link SampleScorer} (math: the answer extracted and verified with `mathEqual`; code: the program judged, see
 * codeScorer.ts), then DeepSeek-R1's metrics: pass@1 as the mean correctness over the k samples (averaged over
 * problems), the unbiased pass@k, and cons@k (majority vote over the k extracted answers; math only).
 */
import { AhaError } from '../errors.ts';
import { DEFAULT_STRATEGIES, extractAnswer, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { majorityVote } from './majorityVote.ts';
import { mathEqual } from '../verify/mathEquivalence.ts';
import { passAtK } from './passAtK.ts';
import type { BenchmarkExample } from './benchmarks.ts';
import type { Generation, Generator } from './generators.ts';
import { promptOpensThink } from './promptTemplates.ts';

/** How a code sample's program was found (codeScorer.ts): its last code block, or the question continued. */
export type CodeRule = 'code_block' | 'prompt_completion';

/** One scored sample: a line of the generations JSONL. */
export interface SampleRecord {
  problem_id: string;
  sample: number;
  prompt: string;
  completion: string;
  /** The extracted answer (code: the code judged), null when none was found. */
  extracted: string | null;
  /** The extraction rule that fired (extractAnswer.ts; code: how the program was found), null when none did. */
  rule: AnswerStrategy | CodeRule | null;
  equal: boolean;
  /** Why: the verifier's reason, or why no answer was extracted; code: the judge's verdict, or why nothing ran. */
  reason: string | null;
  tokens: number | null;
  finish_reason: string;
  /** Code: the first lines of the failing program's stderr (absent when empty). */
  stderr?: string;
}

/**
 * Where answers are looked for. 'after-think': when the completion closes a `</think>`, only the text after the
 * last one (R1 writes its answer in the summary; boxed intermediate results inside the reasoning do not count);
 * otherwise the whole completion. 'all': always the whole completion.
 */
export type AnswerScope = 'after-think' | 'all';

/** Rules whose answer counts as well-formatted: the answer the prompt asked for (\boxed{}) or R1-Zero's tag. */
export const FORMAT_RULES: ReadonlySet<AnswerStrategy> = new Set(['boxed', 'answerTag']);

/** Scores one completion of a problem. */
export function scoreSample(
  problem: Pick<BenchmarkExample, 'id' | 'answer'>,
  sample: number,
  prompt: string,
  gen: Generation,
  opts: { strategies?: readonly AnswerStrategy[]; answerScope?: AnswerScope } = {},
): SampleRecord {
  const scope = opts.answerScope ?? 'after-think';
  let text = gen.text;
  if (scope === 'after-think') {
    const close = text.lastIndexOf('</think>');
    if (close >= 0) text = text.slice(close + '</think>'.length);
  }
  const e = extractAnswer(text, { strategies: opts.strategies ?? DEFAULT_STRATEGIES });
  let equal = false;
  let reason: string | null;
  if (e.answer === null) reason = e.reason;
  else {
    const v = mathEqual(problem.answer, e.answer);
    equal = v.equal;
    reason = v.reason ?? null;
  }
  return {
    problem_id: problem.id,
    sample,
    prompt,
    completion: gen.text,
    extracted: e.answer,
    rule: e.rule,
    equal,
    reason,
    tokens: gen.tokens,
    finish_reason: gen.finishReason,
  };
}

/**
 * Whether a sample is well-formatted: its answer came from a \boxed{} or an <answer> tag, and, when it is a
 * reasoning output (the prompt left a `<think>` open, or the completion opens one), the reasoning was closed with
 * `</think>`.
 */
export function formatOk(r: Pick<SampleRecord, 'prompt' | 'completion' | 'rule'>): boolean {
  if (r.rule === null || !(FORMAT_RULES as ReadonlySet<string>).has(r.rule)) return false;
  return thinkClosed(r);
}

/** Whether a reasoning output (the prompt or the completion opens `<think>`) closed it; true for other outputs. */
export function thinkClosed(r: Pick<SampleRecord, 'prompt' | 'completion'>): boolean {
  const open = r.completion.lastIndexOf('<think>');
  const thinking = open >= 0 || promptOpensThink(r.prompt);
  if (!thinking) return true;
  return r.completion.indexOf('</think>', Math.max(0, open)) >= 0;
}

/** Per-problem results. */
export interface ProblemScore {
  id: string;
  /** Samples, and how many were correct. */
  n: number;
  c: number;
  /** Majority-vote answer (null when no sample had one) and whether it is correct (null: the scorer does not vote). */
  vote: string | null;
  voteCorrect: boolean | null;
  formatted: number;
  meta: BenchmarkExample['meta'];
}

/** Metrics over a set of problems. */
export interface Metrics {
  problems: number;
  pass_at_1: number;
  pass_at_k: number;
  /** null where majority voting does not apply (code benchmarks). */
  cons_at_k: number | null;
}

/** Summary of an evaluation (snake_case: it is written as JSON as is). */
export interface EvalSummary extends Metrics {
  /** k: samples per problem. */
  samples: number;
  /** Unbiased pass@k' for k' = 1, 2, 4, ... up to k (and k itself), keyed by k'. */
  pass_at: Record<string, number>;
  /** Fraction of samples that are well-formatted ({@link formatOk}). */
  format_rate: number;
  /** Mean completion length in tokens over the generated samples whose length is known; null when none is. */
  mean_length: number | null;
  /** Fraction of samples cut off by the token limit (finish reason 'length'). */
  truncated_rate: number;
  /** Problems whose prompt did not fit the model's context (their samples count as wrong). */
  prompts_too_long: number;
  by_subject?: Record<string, Metrics>;
  by_level?: Record<string, Metrics>;
  /** Code benchmarks: how many samples got each reason (judge verdict, no_code_block, wrong_language). */
  reasons?: Record<string, number>;
}

/** How a benchmark's samples are scored: math answers verified ({@link mathScorer}) or programs judged (codeScorer.ts). */
export interface SampleScorer {
  kind: 'math' | 'code';
  /** Scores one completion of a problem. */
  score(
    problem: BenchmarkExample,
    sample: number,
    prompt: string,
    gen: Generation,
  ): SampleRecord | Promise<SampleRecord>;
  /** Whether a sample is well-formatted (counted in format_rate). */
  formatOk(r: SampleRecord): boolean;
  /** Whether cons@k (majority vote over the extracted answers) applies. */
  votes: boolean;
}

/** The math scorer: {@link scoreSample} with these extraction options, {@link formatOk}, majority vote. */
export function mathScorer(
  opts: { strategies?: readonly AnswerStrategy[]; answerScope?: AnswerScope } = {},
): SampleScorer {
  return { kind: 'math', score: (p, j, prompt, gen) => scoreSample(p, j, prompt, gen, opts), formatOk, votes: true };
}

/** Scores one problem's k samples. */
export function scoreProblem(
  problem: BenchmarkExample,
  records: readonly SampleRecord[],
  scorer: SampleScorer = mathScorer(),
): ProblemScore {
  const vote = scorer.votes
    ? majorityVote(
        records.map((r) => r.extracted),
        problem.answer,
      )
    : null;
  return {
    id: problem.id,
    n: records.length,
    c: records.filter((r) => r.equal).length,
    vote: vote?.answer ?? null,
    voteCorrect: vote === null ? null : vote.correct === true,
    formatted: records.filter((r) => scorer.formatOk(r)).length,
    meta: problem.meta,
  };
}

function metrics(scores: readonly ProblemScore[], k: number): Metrics {
  const m = scores.length;
  const votes = scores.every((s) => s.voteCorrect !== null);
  if (m === 0) return { problems: 0, pass_at_1: 0, pass_at_k: 0, cons_at_k: votes ? 0 : null };
  let p1 = 0,
    pk = 0,
    cons = 0;
  for (const s of scores) {
    p1 += s.c / s.n;
    pk += passAtK(s.n, s.c, Math.min(k, s.n));
    if (s.voteCorrect === true) cons++;
  }
  return { problems: m, pass_at_1: p1 / m, pass_at_k: pk / m, cons_at_k: votes ? cons / m : null };
}

function breakdown(
  scores: readonly ProblemScore[],
  k: number,
  key: 'subject' | 'level',
): Record<string, Metrics> | undefined {
  const groups = new Map<string, ProblemScore[]>();
  for (const s of scores) {
    const v = s.meta[key];
    if (v === undefined) continue;
    let g = groups.get(v);
    if (!g) groups.set(v, (g = []));
    g.push(s);
  }
  if (groups.size === 0) return undefined;
  const keys = [...groups.keys()].sort((a, b) => {
    const na = Number(a),
      nb = Number(b);
    return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a < b ? -1 : a > b ? 1 : 0;
  });
  return Object.fromEntries(keys.map((key) => [key, metrics(groups.get(key)!, k)]));
}

/** The summary of scored problems; `records` are all their samples (for lengths, truncation and code's reasons). */
export function summarize(
  scores: readonly ProblemScore[],
  records: readonly SampleRecord[],
  k: number,
  scorer: Pick<SampleScorer, 'kind'> = { kind: 'math' },
): EvalSummary {
  if (scores.length === 0) throw new AhaError('evaluation: no problems to summarise');
  const base = metrics(scores, k);
  const passAt: Record<string, number> = {};
  const n = Math.min(...scores.map((s) => s.n));
  for (let kk = 1; kk <= n; kk *= 2) passAt[kk] = scores.reduce((a, s) => a + passAtK(s.n, s.c, kk), 0) / scores.length;
  if (!(n in passAt)) passAt[n] = scores.reduce((a, s) => a + passAtK(s.n, s.c, n), 0) / scores.length;
  // Prompts that did not fit produced nothing: they would drag the mean length down.
  const lengths = records
    .filter((r) => r.finish_reason !== 'prompt_too_long')
    .map((r) => r.tokens)
    .filter((t): t is number => typeof t === 'number');
  const tooLong = new Set(records.filter((r) => r.finish_reason === 'prompt_too_long').map((r) => r.problem_id));
  const out: EvalSummary = {
    ...base,
    samples: k,
    pass_at: passAt,
    format_rate: records.length ? scores.reduce((a, s) => a + s.formatted, 0) / records.length : 0,
    mean_length: lengths.length ? lengths.reduce((a, b) => a + b, 0) / lengths.length : null,
    truncated_rate: records.length ? records.filter((r) => r.finish_reason === 'length').length / records.length : 0,
    prompts_too_long: tooLong.size,
  };
  const bySubject = breakdown(scores, k, 'subject');
  const byLevel = breakdown(scores, k, 'level');
  if (bySubject) out.by_subject = bySubject;
  if (byLevel) out.by_level = byLevel;
  if (scorer.kind === 'code') {
    const reasons = new Map<string, number>();
    for (const r of records) reasons.set(r.reason ?? 'none', (reasons.get(r.reason ?? 'none') ?? 0) + 1);
    out.reasons = Object.fromEntries([...reasons].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return out;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  problems: readonly BenchmarkExample[];
  generator: Generator;
  /** k: samples per problem. */
  samples: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Run seed (samples are seeded per problem id and sample index). Default 0. */
  seed?: number;
  /** The prompt of a question (promptTemplates.ts). */
  prompt: (question: string) => string;
  strategies?: readonly AnswerStrategy[];
  answerScope?: AnswerScope;
  /** How samples are scored; default: the math scorer with `strategies` and `answerScope`. */
  scorer?: SampleScorer;
  /** Samples of problems already done (a resumed run), by problem id: they are used as they are. */
  completed?: ReadonlyMap<string, readonly SampleRecord[]>;
  /** Called (and awaited) with each newly completed problem's records, in completion order. */
  onProblem?: (problem: BenchmarkExample, records: SampleRecord[]) => void | Promise<void>;
  /** Progress: problems done (resumed ones included) out of all, and the running pass@1. */
  onProgress?: (done: number, total: number, passAt1: number) => void;
  signal?: AbortSignal;
}

/** What {@link evaluate} returns. */
export interface EvaluateResult {
  summary: EvalSummary;
  scores: ProblemScore[];
  /** Every sample, problem-major in benchmark order. */
  records: SampleRecord[];
  /** Problems generated by this call (the rest came from `completed`). */
  generated: number;
}

/** Runs the evaluation: generates the samples of every problem not in `completed`, scores, summarises. */
export async function evaluate(o: EvaluateOptions): Promise<EvaluateResult> {
  const k = o.samples;
  if (!Number.isInteger(k) || k < 1) throw new AhaError(`samples must be a positive integer (got ${k})`);
  const scorer = o.scorer ?? mathScorer(o);
  if (o.problems.length === 0) throw new AhaError('evaluation: no problems');
  const byProblem = new Map<string, SampleRecord[]>();
  const ids = new Set<string>();
  for (const p of o.problems) {
    if (ids.has(p.id)) throw new AhaError(`evaluation: duplicate problem id ${JSON.stringify(p.id)}`);
    ids.add(p.id);
    const done = o.completed?.get(p.id);
    if (done !== undefined) {
      if (done.length !== k)
        throw new AhaError(`evaluation: problem ${p.id} has ${done.length} saved samples, expected ${k}`);
      byProblem.set(p.id, [...done]);
    }
  }
  const pending = o.problems.filter((p) => !byProblem.has(p.id));
  let doneCount = byProblem.size;
  let p1Sum = 0;
  for (const recs of byProblem.values()) p1Sum += recs.filter((r) => r.equal).length / recs.length;
  o.onProgress?.(doneCount, o.problems.length, doneCount ? p1Sum / doneCount : 0);

  if (pending.length > 0) {
    const prompts = pending.map((p) => o.prompt(p.question));
    // Scoring may be async (the judge): a problem is claimed before its samples are scored, so it is scored once.
    const claimed = new Set<string>();
    const finish = async (i: number, outs: Generation[]) => {
      const p = pending[i];
      if (claimed.has(p.id)) return;
      if (!Array.isArray(outs) || outs.length !== k)
        throw new AhaError(`generator returned ${outs?.length ?? 0} samples for problem ${p.id}, expected ${k}`);
      claimed.add(p.id);
      const recs = await Promise.all(outs.map((g, j) => scorer.score(p, j, prompts[i], g)));
      byProblem.set(p.id, recs);
      await o.onProblem?.(p, recs);
      doneCount++;
      p1Sum += recs.filter((r) => r.equal).length / k;
      o.onProgress?.(doneCount, o.problems.length, p1Sum / doneCount);
    };
    const all = await o.generator.generate(prompts, {
      n: k,
      temperature: o.temperature,
      topP: o.topP,
      maxNewTokens: o.maxNewTokens,
      seed: o.seed ?? 0,
      ids: pending.map((p) => p.id),
      signal: o.signal,
      onPrompt: finish,
    });
    // Generators that do not report prompts as they finish are scored from their return value.
    for (let i = 0; i < pending.length; i++) if (!byProblem.has(pending[i].id)) await finish(i, all?.[i]);
  }
  const missing = o.problems.filter((p) => !byProblem.has(p.id));
  if (missing.length)
    throw new AhaError(`generator never completed problem ${missing[0].id} (${missing.length} missing)`);
  const records: SampleRecord[] = [];
  const scores = o.problems.map((p) => {
    const recs = byProblem.get(p.id)!;
    records.push(...recs);
    return scoreProblem(p, recs, scorer);
  });
  return { summary: summarize(scores, records, k, scorer), scores, records, generated: pending.length };
}
