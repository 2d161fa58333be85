/**
 * The evaluation core, the same for every sample source: k samples per problem, answers extracted and verified
 * with `mathEqual`, then DeepSeek-R1's metrics: pass@1 as the mean correctness over the k samples (averaged over
 * problems), the unbiased pass@k, and cons@k (majority vote over the k extracted answers).
 */
import { AhaError } from '../errors.ts';
import { DEFAULT_STRATEGIES, extractAnswer, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { majorityVote } from './majorityVote.ts';
import { mathEqual } from '../verify/mathEquivalence.ts';
import { passAtK } from './passAtK.ts';
import type { BenchmarkExample } from './benchmarks.ts';
import type { Generation, Generator } from './generators.ts';
import { promptOpensThink } from './promptTemplates.ts';

/** One scored sample: a line of the generations JSONL. */
export interface SampleRecord {
  problem_id: string;
  sample: number;
  prompt: string;
  completion: string;
  /** The extracted answer, null when none was found. */
  extracted: string | null;
  /** The extraction rule that fired (extractAnswer.ts), null when none did. */
  rule: AnswerStrategy | null;
  equal: boolean;
  /** Why: the verifier's reason, or why no answer was extracted. */
  reason: string | null;
  tokens: number | null;
  finish_reason: string;
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
  if (r.rule === null || !FORMAT_RULES.has(r.rule)) return false;
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
  /** Majority-vote answer (null when no sample had one) and whether it is correct. */
  vote: string | null;
  voteCorrect: boolean;
  formatted: number;
  meta: BenchmarkExample['meta'];
}

/** Metrics over a set of problems. */
export interface Metrics {
  problems: number;
  pass_at_1: number;
  pass_at_k: number;
  cons_at_k: number;
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
}

/** Scores one problem's k samples. */
export function scoreProblem(problem: BenchmarkExample, records: readonly SampleRecord[]): ProblemScore {
  const vote = majorityVote(
    records.map((r) => r.extracted),
    problem.answer,
  );
  return {
    id: problem.id,
    n: records.length,
    c: records.filter((r) => r.equal).length,
    vote: vote.answer,
    voteCorrect: vote.correct === true,
    formatted: records.filter(formatOk).length,
    meta: problem.meta,
  };
}

function metrics(scores: readonly ProblemScore[], k: number): Metrics {
  const m = scores.length;
  if (m === 0) return { problems: 0, pass_at_1: 0, pass_at_k: 0, cons_at_k: 0 };
  let p1 = 0,
    pk = 0,
    cons = 0;
  for (const s of scores) {
    p1 += s.c / s.n;
    pk += passAtK(s.n, s.c, Math.min(k, s.n));
    if (s.voteCorrect) cons++;
  }
  return { problems: m, pass_at_1: p1 / m, pass_at_k: pk / m, cons_at_k: cons / m };
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

/** The summary of scored problems; `records` are all their samples (for format rate and lengths). */
export function summarize(scores: readonly ProblemScore[], records: readonly SampleRecord[], k: number): EvalSummary {
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
    format_rate: records.length ? records.filter(formatOk).length / records.length : 0,
    mean_length: lengths.length ? lengths.reduce((a, b) => a + b, 0) / lengths.length : null,
    truncated_rate: records.length ? records.filter((r) => r.finish_reason === 'length').length / records.length : 0,
    prompts_too_long: tooLong.size,
  };
  const bySubject = breakdown(scores, k, 'subject');
  const byLevel = breakdown(scores, k, 'level');
  if (bySubject) out.by_subject = bySubject;
  if (byLevel) out.by_level = byLevel;
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
    const finish = async (i: number, outs: Generation[]) => {
      const p = pending[i];
      if (byProblem.has(p.id)) return;
      if (!Array.isArray(outs) || outs.length !== k)
        throw new AhaError(`generator returned ${outs?.length ?? 0} samples for problem ${p.id}, expected ${k}`);
      const recs = outs.map((g, j) => scoreSample(p, j, prompts[i], g, o));
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
    return scoreProblem(p, recs);
  });
  return { summary: summarize(scores, records, k), scores, records, generated: pending.length };
}
