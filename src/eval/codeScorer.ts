/**
 * Scoring code benchmarks (HumanEval, or a file of code problems): each sample's program runs against the problem's
 * tests in the judge's sandbox (src/judge/), and the sample is correct when every test passes. The program is the
 * completion's last fenced code block; a completion without one, on a problem whose question is a function header
 * (HumanEval), is judged as HumanEval scores base models: the question followed by the completion, cut at Codex's
 * stop sequences.
 */
import { AhaError } from '../errors.ts';
import { judge, type JudgeOptions } from '../judge/judge.ts';
import { languageOfFence } from '../judge/languages.ts';
import type { Language } from '../judge/types.ts';
import { lastCodeBlock } from '../rewards/code.ts';
import type { BenchmarkExample, CodeProblem } from './benchmarks.ts';
import { thinkClosed, type AnswerScope, type CodeRule, type SampleRecord, type SampleScorer } from './evaluate.ts';
import type { Generation } from './generators.ts';

/** Where HumanEval's Codex protocol stops a base model's continuation of a function (Chen et al. 2021). */
export const HUMANEVAL_STOPS = ['\nclass', '\ndef', '\n#', '\nif', '\nprint'] as const;

/** A sample's program, or why there is none. */
export type CodeProgram =
  | { program: string; code: string; language: Language; rule: CodeRule }
  | { program: null; reason: 'no_code_block' | 'wrong_language' };

/**
 * The program of a completion. A code block's language is its fence tag (untagged: the problem's language, else
 * Python) and must be the problem's language when it has one. On a function-completion problem the block follows the
 * question, whose imports and helper functions the tests may need (the header's docstring is a valid body, and the
 * block's definition replaces it; a block holding only the body continues it).
 */
export function codeProgram(problem: Pick<BenchmarkExample, 'question'>, code: CodeProblem, text: string): CodeProgram {
  const block = lastCodeBlock(text);
  if (block === null) {
    if (!code.completesPrompt) return { program: null, reason: 'no_code_block' };
    let body = text;
    for (const stop of HUMANEVAL_STOPS) {
      const at = body.indexOf(stop);
      if (at >= 0) body = body.slice(0, at);
    }
    return { program: problem.question + body, code: body, language: 'python', rule: 'prompt_completion' };
  }
  const tagged = languageOfFence(block.info);
  const language = tagged ?? (block.info === '' ? (code.language ?? 'python') : null);
  if (language === null || (code.language !== undefined && language !== code.language))
    return { program: null, reason: 'wrong_language' };
  const program = code.completesPrompt ? `${problem.question}\n${block.code}\n` : block.code;
  return { program, code: block.code, language, rule: 'code_block' };
}

/** Options of {@link codeScorer}. */
export interface CodeScorerOptions {
  /** Judge options (limits, sandbox, pool); every test runs until one fails. */
  judge?: JudgeOptions;
  /** 'after-think' (default): look for the code block after the last `</think>`, when there is one. */
  answerScope?: AnswerScope;
}

/**
 * The code benchmarks' scorer: `extracted` is the code judged, `rule` how it was found, `reason` the judge's verdict
 * (or no_code_block, wrong_language), `stderr` the failing run's first lines. Well-formatted: a code block, and a
 * closed `<think>` in a reasoning output. No majority vote (cons@k is null).
 */
export function codeScorer(opts: CodeScorerOptions = {}): SampleScorer {
  const score = async (p: BenchmarkExample, sample: number, prompt: string, gen: Generation): Promise<SampleRecord> => {
    if (p.code === undefined) throw new AhaError(`${p.source}: problem ${p.id} has no tests to judge code with`);
    let text = gen.text;
    if ((opts.answerScope ?? 'after-think') === 'after-think') {
      const close = text.lastIndexOf('</think>');
      if (close >= 0) text = text.slice(close + '</think>'.length);
    }
    const base = {
      problem_id: p.id,
      sample,
      prompt,
      completion: gen.text,
      tokens: gen.tokens,
      finish_reason: gen.finishReason,
    };
    const found = codeProgram(p, p.code, text);
    if (found.program === null) return { ...base, extracted: null, rule: null, equal: false, reason: found.reason };
    const result = await judge(
      { language: found.language, program: found.program, tests: p.code.tests },
      { ...opts.judge, stopOnFirstFailure: true },
    );
    const rec: SampleRecord = {
      ...base,
      extracted: found.code,
      rule: found.rule,
      equal: result.verdict === 'accepted',
      reason: result.verdict,
    };
    if (result.stderr !== '') rec.stderr = result.stderr;
    return rec;
  };
  return {
    kind: 'code',
    score,
    formatOk: (r) => r.rule === 'code_block' && thinkClosed(r),
    votes: false,
  };
}
