/**
 * The code reward (DeepSeek-R1's rule-based reward for code): the completion's last fenced code block is run
 * against the example's tests by the judge (src/judge/), in the sandbox. Scores the fraction of tests passed
 * (`mode: 'fraction'`) or 1 only when all pass (`mode: 'all'`, which stops at the first failure). A completion
 * without a code block, or with one in another language than the reward's, scores 0; the reason of every score
 * (a verdict, 'no_code_block', 'wrong_language') goes to `onScore` and to the context's `note`, which GRPO counts
 * in its step metrics (`reward_reasons`).
 */
import { testsOfExample } from '../judge/exampleTests.ts';
import { judge, type JudgeOptions } from '../judge/judge.ts';
import { languageOfFence } from '../judge/languages.ts';
import type { JudgeResult, Language, Verdict } from '../judge/types.ts';
import type { Example, RewardFn } from './types.ts';

/** The last complete fenced code block of a text: its info string (```python) and its code; null when none. */
export function lastCodeBlock(text: string): { info: string; code: string } | null {
  let last: { info: string; code: string } | null = null;
  for (const m of text.matchAll(/(^|\n)[ \t]*```([^\n`]*)\n([\s\S]*?)\n?[ \t]*```/g))
    last = { info: m[2].trim(), code: m[3] };
  return last;
}

/** Why a completion got its code score. */
export type CodeScoreReason = Verdict | 'no_code_block' | 'wrong_language';

/** A code score with its reason and, when the program ran, the judge's result. */
export interface CodeScore {
  score: number;
  reason: CodeScoreReason;
  result?: JudgeResult;
}

/** Options of the code reward. */
export interface CodeRewardOptions {
  /**
   * The language programs must be in. Unset: the fence's tag decides (```python, ```js, ```cpp), and an untagged
   * fence is the example's `language`, else Python.
   */
  language?: Language;
  /** 'fraction' of tests passed (default) or 'all' (1 or 0). */
  mode?: 'fraction' | 'all';
  /** Judge options: limits, sandbox ('none' only when asked explicitly), float tolerance, pool. */
  judge?: JudgeOptions;
  /** Called with every score's reason (for metrics). */
  onScore?: (score: CodeScore, example: Example) => void;
}

/** Scores one completion (see the module comment); throws when the example carries no usable tests. */
export async function scoreCode(
  completion: string,
  example: Example,
  opts: CodeRewardOptions = {},
): Promise<CodeScore> {
  const tests = testsOfExample(example);
  const block = lastCodeBlock(completion);
  if (block === null) return { score: 0, reason: 'no_code_block' };
  const tagged = languageOfFence(block.info);
  const fallback = typeof example.language === 'string' ? languageOfFence(example.language) : null;
  const language = tagged ?? (block.info === '' ? (opts.language ?? fallback ?? 'python') : null);
  if (language === null || (opts.language !== undefined && language !== opts.language))
    return { score: 0, reason: 'wrong_language' };
  const all = opts.mode === 'all';
  const result = await judge(
    { language, program: block.code, tests },
    { ...opts.judge, stopOnFirstFailure: all || opts.judge?.stopOnFirstFailure },
  );
  const score = all ? (result.verdict === 'accepted' ? 1 : 0) : result.passed / result.total;
  return { score, reason: result.verdict, result };
}

/** The code reward as a {@link RewardFn}. */
export function codeReward(opts: CodeRewardOptions = {}): RewardFn<Example> {
  return async (completion, example, ctx) => {
    const s = await scoreCode(completion, example, opts);
    opts.onScore?.(s, example);
    ctx.note?.(s.reason);
    return s.score;
  };
}
