/**
 * Pull the final answer out of free-form model output. Several conventions are in use (R1's
 * `<answer>` block, `\boxed{}`, GSM8K's `#### N`, "the answer is ..."); the caller chooses which rules
 * apply and in what order, and learns which one fired.
 */
import { AhaError } from '../errors.ts';
import { matchBrace } from './braces.ts';

/** One extraction rule. */
export type AnswerStrategy = 'answerTag' | 'boxed' | 'gsm8k' | 'answerIs' | 'lastNumber';

/**
 * Default priority: explicit markers first, the bare last number only as a last resort. An `<answer>`
 * block wins over a `\boxed{}` elsewhere because R1-format outputs may box intermediate results in the
 * reasoning; a `\boxed{}` inside the block is still unwrapped.
 */
export const DEFAULT_STRATEGIES: readonly AnswerStrategy[] = ['answerTag', 'boxed', 'gsm8k', 'answerIs', 'lastNumber'];

/** The extracted answer and the rule that produced it, or why nothing was found. */
export type Extraction = { answer: string; rule: AnswerStrategy } | { answer: null; rule: null; reason: string };

/**
 * Content of the last complete `\boxed{...}`, `\fbox{...}` or `\framebox{...}` (nested braces allowed),
 * or of the unbraced form `\boxed 5`. An unclosed last box (truncated output) is skipped in favour of
 * the previous complete one. Returns null when there is none.
 */
export function lastBoxed(text: string): string | null {
  const re = /\\(?:boxed|fbox|framebox)(?![a-zA-Z])/g;
  const starts: { index: number; end: number }[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) starts.push({ index: m.index, end: m.index + m[0].length });
  // A box that failed to close means every earlier box must close before it does, or it cannot close
  // at all; scanning only up to there keeps this linear.
  let limit = text.length;
  for (let k = starts.length - 1; k >= 0; k--) {
    let i = starts[k].end;
    while (i < text.length && /\s/.test(text[i])) i++;
    if (text[i] === '{') {
      const end = matchBrace(text, i, limit);
      if (end < 0) {
        limit = starts[k].index;
        continue;
      }
      const content = text.slice(i + 1, end - 1).trim();
      if (content !== '') return content;
      continue;
    }
    // "\boxed 5": LaTeX takes a single token; models mean the rest of the word.
    if (i > starts[k].end) {
      const word = /^[^\s$]+/.exec(text.slice(i));
      if (word) return word[0].replace(/[.,;]+$/, '');
    }
  }
  return null;
}

function answerTag(text: string): string | null {
  // The last closed block; searched backwards so that many unclosed tags cannot make this quadratic.
  const close = text.toLowerCase().lastIndexOf('</answer>');
  if (close < 0) return null;
  const open = text.toLowerCase().lastIndexOf('<answer>', close);
  if (open < 0) return null;
  const last = text.slice(open + '<answer>'.length, close);
  const inner = last.trim();
  if (inner === '') return null;
  return lastBoxed(inner) ?? answerIs(inner) ?? inner;
}

function gsm8k(text: string): string | null {
  const re = /####\s*([^\n]*)/g;
  let last: string | null = null;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) last = m[1];
  if (last === null) return null;
  const v = last.trim().replace(/[.\s]+$/, '');
  return v === '' ? null : v;
}

/** "The (final) answer is X", "Answer: X": X runs to the end of its sentence or line. */
function answerIs(text: string): string | null {
  const re = /(?:\b(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)|\*\*answer:?\*\*:?)\s*:?/gi;
  let lastEnd = -1;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) lastEnd = m.index + m[0].length;
  if (lastEnd < 0) return null;
  let rest = text.slice(lastEnd).replace(/^[\s*]+/, '');
  const boxed = /^\$*\s*\\(?:boxed|fbox)/.test(rest) ? lastBoxed(rest.split('\n')[0]) : null;
  if (boxed) return boxed;
  const math = /^(\$\$?|\\\(|\\\[)/.exec(rest);
  if (math) {
    const close = { $: '$', $$: '$$', '\\(': '\\)', '\\[': '\\]' }[math[1]]!;
    const end = rest.indexOf(close, math[1].length);
    if (end > 0) return rest.slice(math[1].length, end).trim() || null;
  }
  rest = rest.split('\n')[0];
  // A full stop ends the sentence unless it is a decimal point.
  const stop = /\.(?!\d)|;/.exec(rest);
  if (stop) rest = rest.slice(0, stop.index);
  rest = rest.replace(/\*+/g, '').trim();
  return rest === '' ? null : rest;
}

function lastNumber(text: string): string | null {
  const re = /(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])|(?<![\w.])-?\.\d+/g;
  let last: string | null = null;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) last = m[0];
  return last;
}

const RULES: Record<AnswerStrategy, (text: string) => string | null> = {
  answerTag,
  boxed: lastBoxed,
  gsm8k,
  answerIs,
  lastNumber,
};

/** Extract the final answer with the first rule (in `strategies` order) that finds one. */
export function extractAnswer(text: string, opts: { strategies?: readonly AnswerStrategy[] } = {}): Extraction {
  const strategies = opts.strategies ?? DEFAULT_STRATEGIES;
  for (const s of strategies) {
    if (!Object.hasOwn(RULES, s))
      throw new AhaError(`unknown answer strategy '${s}' (expected one of ${Object.keys(RULES).join(', ')})`);
  }
  if (typeof text !== 'string' || text.trim() === '') return { answer: null, rule: null, reason: 'empty output' };
  for (const s of strategies) {
    const found = RULES[s](text);
    if (found !== null && found.trim() !== '') return { answer: found.trim(), rule: s };
  }
  return { answer: null, rule: null, reason: `no answer found by ${strategies.join(', ') || 'no strategies'}` };
}
