import type { Rng } from '../rng.ts';

/** Which side of the train/test split a question belongs to. */
export type Split = 'train' | 'test';

/** One problem: the question as shown to the model and its gold answer (a string, compared by the task). */
export interface Example {
  question: string;
  answer: string;
}

/**
 * A verifiable reasoning task: what RL and evaluation need. `check` receives the answer already extracted from a
 * completion (e.g. the text between <answer> and </answer>) and says whether it is right; it never sees the rest.
 */
export interface Task<E extends Example = Example> {
  readonly name: string;
  /** `n` distinct examples from `split`, deterministic given the state of `rng`. Splits never share a question. */
  generate(rng: Rng, n: number, split: Split): E[];
  /** Rule-based accuracy check of an extracted answer against the example's gold answer. */
  check(completionAnswer: string, example: E): boolean;
  /** The full prompt text (template included) that the model continues. */
  prompt(example: E): string;
}

/**
 * Whether a written solution slips (writes a wrong intermediate result) and, if so, whether it notices: 'corrected'
 * is followed by a reflection ("wait, 21-9=12, not 13.") and the fixed step; 'uncorrected' carries the error to
 * a wrong final answer.
 */
export type SlipKind = 'none' | 'corrected' | 'uncorrected';

export interface SolutionOptions {
  slip: SlipKind;
  /** Append a self-check that re-derives every step ("let me check: ..."). */
  verify: boolean;
}

/** A step-by-step solution as lines of plain text (no tags), and the final answer it arrives at. */
export interface Solution {
  reasoning: string;
  answer: string;
  /** Whether `answer` equals the gold answer. */
  correct: boolean;
  /** The slip actually written; 'uncorrected' may fall back to 'none' if no wrong value keeps the chain valid. */
  slip: SlipKind;
}

/** A task that can also write the pre-training corpus for its own base model (see src/data/tasks/corpus.ts). */
export interface PretrainableTask<E extends Example = Example> extends Task<E> {
  /** Every character this task's questions and solutions may contain. */
  readonly alphabet: string;
  /** The split a question belongs to, from its text alone. */
  splitOf(question: string): Split;
  /** Number of reasoning steps the problem needs; sets how often a one-shot (direct) answer is right. */
  steps(example: E): number;
  /** Train-split examples for pre-training, over a wider difficulty range than `generate` (easy ones included). */
  pretrainExamples(rng: Rng, n: number): E[];
  /** A plausible wrong answer close to the gold one (what a one-shot guess gets wrong). */
  nearMiss(example: E, rng: Rng): string;
  /** A written step-by-step solution. */
  solve(example: E, rng: Rng, options: SolutionOptions): Solution;
  /** The question as the first line of a worked solution (the restatement a direct answer also starts with). */
  restate(example: E): string;
}

/**
 * Parse an integer answer ("42", " -7 ", "+3") to a bigint; null when the text is not exactly one integer.
 * Tasks with integer answers compare through this so "042" equals "42" but "42.5", "4 2" and "" never match.
 */
export function parseIntegerAnswer(text: string): bigint | null {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) return null;
  return BigInt(t);
}
