import type { Example, RewardFn } from './types.ts';

/** Options of {@link formatReward} and {@link hasValidFormat}. */
export interface FormatRewardOptions {
  /**
   * 'strict': the R1-Zero template's output, `<think> reasoning </think> <answer> answer </answer>` and nothing else
   * but whitespace around and between the blocks, each tag exactly once, both blocks non-empty.
   * 'think': the R1 paper's format reward (as TRL's think_format_reward): the completion opens with `<think>`, has
   * no second `<think>`, and closes it with `</think>`; whatever follows is the answer.
   */
  mode: 'strict' | 'think';
  /**
   * The chat template already put `<think>` (usually "<think>\n", as DeepSeek-R1's template does) at the end of the
   * prompt, so the completion starts inside the reasoning: the check runs on "<think>" + completion. With the plain
   * R1-Zero template (prompt ends with "Assistant:") leave it false: the model must write `<think>` itself.
   */
  prefilledThink?: boolean;
  /** 'think' mode only: also require non-whitespace text after `</think>` (TRL accepts an empty answer). */
  requireAnswer?: boolean;
}

function count(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

const STRICT = /^\s*<think>([\s\S]*?)<\/think>\s*<answer>([\s\S]*?)<\/answer>\s*$/;
const THINK = /^\s*<think>([\s\S]*?)<\/think>([\s\S]*)$/;

/** Whether a completion has the required format (the predicate behind {@link formatReward}). */
export function hasValidFormat(completion: string, opts: FormatRewardOptions): boolean {
  const text = opts.prefilledThink ? '<think>' + completion : completion;
  if (opts.mode === 'strict') {
    for (const tag of ['<think>', '</think>', '<answer>', '</answer>']) if (count(text, tag) !== 1) return false;
    const m = STRICT.exec(text);
    return m !== null && m[1].trim() !== '' && m[2].trim() !== '';
  }
  if (count(text, '<think>') !== 1) return false;
  const m = THINK.exec(text);
  if (m === null) return false;
  return !opts.requireAnswer || m[2].trim() !== '';
}

/** Format reward: 1 when the completion has the format of `opts.mode`, else 0. */
export function formatReward<E = Example>(opts: FormatRewardOptions): RewardFn<E> {
  return (completion) => (hasValidFormat(completion, opts) ? 1 : 0);
}

/**
 * The trimmed text of the last complete `<answer>...</answer>` block (the innermost one if tags are nested), or null
 * when there is none. The last block, because models that revise ("wait, ...") restate their answer.
 */
export function extractTaggedAnswer(completion: string): string | null {
  const end = completion.lastIndexOf('</answer>');
  if (end === -1) return null;
  const start = completion.lastIndexOf('<answer>', end);
  if (start === -1) return null;
  return completion.slice(start + '<answer>'.length, end).trim();
}
