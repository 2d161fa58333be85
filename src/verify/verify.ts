/**
 * Verify a model's answer against a reference: read both with the one answer reader (extractAnswer.ts),
 * then compare them with `mathEqual` (mathEquivalence.ts). What the accuracy reward, `aha verify`, `aha eval`
 * and rejection sampling share. Never throws on content; every comparison runs under a time budget.
 */
import { readAnswer, type AnswerMode, type AnswerStrategy } from './extractAnswer.ts';
import { mathEqual, type MathEqualOptions, type MathEqualResult } from './mathEquivalence.ts';

/** Options of `verifyAnswer`. */
export type VerifyAnswerOptions = MathEqualOptions & {
  /** How to read the prediction: a whole completion (default) or a bare answer. The reference is always bare. */
  predExtraction?: AnswerMode;
  /** Completion-mode rules in priority order (default `DEFAULT_STRATEGIES`). */
  strategies?: readonly AnswerStrategy[];
};

/** `mathEqual`'s verdict plus what was read from each side and the reading rule that found the prediction. */
export type VerifyAnswerResult = MathEqualResult & {
  goldAnswer: string | null;
  predAnswer: string | null;
  rule: AnswerStrategy | 'whole' | null;
};

/** Is the answer in `pred` (a completion, or a bare answer) equivalent to the reference `gold`? */
export function verifyAnswer(gold: string, pred: string, opts: VerifyAnswerOptions = {}): VerifyAnswerResult {
  const g = readAnswer(gold, { mode: 'answer' });
  const p = readAnswer(pred, { mode: opts.predExtraction ?? 'completion', strategies: opts.strategies });
  const base = { goldAnswer: g.answer, predAnswer: p.answer, rule: p.rule };
  if (g.answer === null)
    return {
      ...base,
      equal: false,
      goldParsed: null,
      predParsed: null,
      reason: `gold: ${'reason' in g ? g.reason : ''}`,
    };
  if (p.answer === null) {
    const r = mathEqual(g.answer, '', opts);
    return { ...base, equal: false, goldParsed: r.goldParsed, predParsed: null, reason: `pred: ${p.reason}` };
  }
  return { ...base, ...mathEqual(g.answer, p.answer, opts) };
}
