/**
 * The accuracy reward: the whole learning signal of R1-style RL. The answer is read from the completion with
 * the one answer reader (src/verify/extractAnswer.ts; default rules: the `<answer>` block of the R1 format,
 * else the last \boxed{}), then compared with the example's reference by the verifier (src/verify/verify.ts),
 * or decided by a task's own `check`.
 */
import { readAnswer, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { verifyAnswer } from '../verify/verify.ts';
import type { Example, RewardFn } from './types.ts';

/** Rules the reward reads answers with unless told otherwise: R1's tag, else a box (a format-following answer). */
export const DEFAULT_ACCURACY_STRATEGIES: readonly AnswerStrategy[] = ['answerTag', 'boxed'];

/** A task's own decision on an extracted answer (a Task's check). */
export type AccuracyCheck = (answer: string, example: any) => boolean | Promise<boolean>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Options of {@link accuracyReward}. */
export type AccuracyOptions = {
  strategies?: readonly AnswerStrategy[];
  rtol?: number;
  timeoutMs?: number;
  check?: AccuracyCheck;
};

/**
 * 1 when the answer read from the completion equals the example's `answer`, else 0. No answer found scores 0;
 * an example without a reference answer is an error (reported per call by scoreCompletions).
 */
export function accuracyReward(opts: AccuracyOptions = {}): RewardFn<Example> {
  const strategies = opts.strategies ?? DEFAULT_ACCURACY_STRATEGIES;
  return async (completion, example) => {
    const got = readAnswer(completion, { strategies });
    if (got.answer === null) return 0;
    if (opts.check) return (await opts.check(got.answer, example)) ? 1 : 0;
    const gold = example.answer;
    if (typeof gold !== 'string' && typeof gold !== 'number') throw new Error('the example has no reference answer');
    const v = verifyAnswer(String(gold), got.answer, {
      predExtraction: 'answer',
      rtol: opts.rtol,
      timeoutMs: opts.timeoutMs,
    });
    return v.equal ? 1 : 0;
  };
}
