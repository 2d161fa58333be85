/**
 * Pull the final answer out of free-form model output: the one answer reader behind the accuracy reward,
 * `aha verify`, `aha eval` and rejection sampling. Several conventions are in use (R1's `<answer>` block,
 * `\boxed{}`, GSM8K's `#### N`, "the answer is ...", a last LaTeX formula, a bare expression); the caller
 * chooses which rules apply and in what order, and learns which one fired. `readAnswer` is the entry point
 * for a whole completion or a bare answer (a reference goes through it too, so `$9$`, `\boxed{9}` and `9`
 * are one answer).
 */
import { AhaError } from '../errors.ts';
import { matchBrace } from './braces.ts';

/** One extraction rule. */
export type AnswerStrategy = 'answerTag' | 'boxed' | 'gsm8k' | 'answerIs' | 'latex' | 'expression' | 'lastNumber';

/**
 * Default priority: explicit markers first (`<answer>` block, last `\boxed{}`, `#### N`, "the answer is
 * X"), then the last LaTeX math span (`$..$`, `$$..$$`, `\(..\)`, `\[..\]`, align/equation environments),
 * then the whole text when it is a bare expression, and the last number only as a last resort. An
 * `<answer>` block wins over a `\boxed{}` elsewhere because R1-format outputs may box intermediate results
 * in the reasoning; a `\boxed{}` inside the block is still unwrapped.
 */
export const DEFAULT_STRATEGIES: readonly AnswerStrategy[] = [
  'answerTag',
  'boxed',
  'gsm8k',
  'answerIs',
  'latex',
  'expression',
  'lastNumber',
];

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
  const re = /(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\/\d+(?![\d/]))?(?![\d])|(?<![\w.])-?\.\d+/g;
  let last: string | null = null;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) last = m[0];
  return last;
}

const ENVIRONMENTS = 'align\\*?|aligned|equation\\*?|gather\\*?|gathered|eqnarray\\*?|multline\\*?|displaymath|math';

/**
 * Math spans of `text` in order: `$$..$$`, `$..$`, `\(..\)`, `\[..\]` and display environments. An
 * escaped `\$` is a currency sign, not a delimiter. Linear: each opener looks for its closer once.
 */
export function mathSpans(text: string): string[] {
  const out: string[] = [];
  const envRe = new RegExp(`\\\\begin\\{(${ENVIRONMENTS})\\}`, 'y');
  let i = 0;
  let noDollar = false;
  const unclosed = new Set<string>();
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') {
      const next = text[i + 1];
      if ((next === '(' || next === '[') && !unclosed.has(next)) {
        const close = text.indexOf(next === '(' ? '\\)' : '\\]', i + 2);
        if (close >= 0) {
          out.push(text.slice(i + 2, close));
          i = close + 2;
          continue;
        }
        unclosed.add(next);
      } else if (next === 'b') {
        envRe.lastIndex = i;
        const m = envRe.exec(text);
        if (m && !unclosed.has(m[1])) {
          const endTag = `\\end{${m[1]}}`;
          const close = text.indexOf(endTag, i + m[0].length);
          // No closer from here on means none for any later opener either: each closer is searched for once.
          if (close < 0) unclosed.add(m[1]);
          if (close >= 0) {
            const body = text.slice(i + m[0].length, close);
            // The last row of an aligned derivation holds the result ("&= 5").
            const rows = body.split(/\\\\(?:\[[^\]]*\])?/).filter((r) => r.trim() !== '');
            if (rows.length > 0) out.push(rows[rows.length - 1].replace(/&/g, '').replace(/^\s*=/, ''));
            i = close + endTag.length;
            continue;
          }
        }
      }
      i += 2;
      continue;
    }
    if (c === '$' && !noDollar) {
      const double = text[i + 1] === '$';
      const open = double ? 2 : 1;
      const close = text.indexOf(double ? '$$' : '$', i + open);
      if (close < 0) {
        noDollar = true;
        i += open;
        continue;
      }
      // A lone "$" closed by the next one may be the opener of a "$$" display: skip the empty span.
      const body = text.slice(i + open, close);
      if (body.trim() !== '') out.push(body);
      i = close + open;
      continue;
    }
    i++;
  }
  return out;
}

/** Words that may appear in a bare math answer; any other word of 3+ letters marks prose. */
const MATH_WORDS = new Set(
  (
    'sqrt sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln exp pi inf infty infinity abs ' +
    'and or mod gcd lcm max min det'
  ).split(' '),
);

const TEXT_GROUP =
  /\\(?:text|textrm|textbf|textit|textsf|texttt|textnormal|mathrm|mathbf|mathit|mathsf|mbox|operatorname)\s*\{[^{}]*\}/g;

/**
 * Whether `s` reads as a bare answer rather than prose: commands and `\text{}` groups aside, no word of
 * three or more letters except math words and up to three unit words after a number ("18 apples"). A
 * short all-letter answer ("Evelyn", "(C)", "north east") counts too. Keeps "The value is 5" from being
 * parsed as the product T*h*e*v*a*l*u*e*i*s*5.
 */
export function looksLikeAnswer(s: string): boolean {
  const t = s.trim();
  if (t === '' || t.length > 400) return false;
  if (/^\(?[A-Za-z]\)?$/.test(t) || /^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*)?\.?$/.test(t)) return true;
  let rest = t
    .replace(TEXT_GROUP, ' ')
    .replace(/\\(?:begin|end)\s*\{[a-zA-Z*]*\}(?:\{[lcr|]*\})?/g, ' ')
    .replace(/\\[a-zA-Z]+/g, ' ');
  // "and"/"or" join answers ("1 and 2"); at either end they belong to a sentence ("$18 and $5").
  if (/^\s*(?:and|or)\b|\b(?:and|or)\s*$/i.test(rest)) return false;
  rest = rest.replace(/([\d}%)])\s*(?:[A-Za-z]+\.?\s*){1,3}(?:\^\s*\{?[23]\}?)?\s*\.?$/, '$1');
  const words = rest.match(/[A-Za-z]{3,}/g) ?? [];
  if (!words.every((w) => MATH_WORDS.has(w.toLowerCase()))) return false;
  // Two stand-alone words of two letters are prose ("it is 3/4"), not a product of variables.
  const short = rest.split(/\s+/).filter((w) => /^[A-Za-z]{2}$/.test(w) && !MATH_WORDS.has(w.toLowerCase()));
  return short.length < 2;
}

/** The last math span that reads as an answer. */
function latex(text: string): string | null {
  const spans = mathSpans(text);
  for (let k = spans.length - 1; k >= 0 && k >= spans.length - 8; k--) {
    const inner = lastBoxed(spans[k]) ?? spans[k].trim();
    if (inner !== '' && looksLikeAnswer(inner)) return inner;
  }
  return null;
}

/** The whole text, when it is one bare expression ("x^2 + 1", "1,000", "5 cm") rather than prose. */
function expression(text: string): string | null {
  const t = text.trim().replace(/\s+/g, ' ');
  return looksLikeAnswer(t) ? t.replace(/\s*[.;]$/, '') || null : null;
}

const RULES: Record<AnswerStrategy, (text: string) => string | null> = {
  answerTag,
  boxed: lastBoxed,
  gsm8k,
  answerIs,
  latex,
  expression,
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

/** How `readAnswer` treats its input: a whole model completion, or a bare answer such as a reference. */
export type AnswerMode = 'completion' | 'answer';

/** Rules applied to a bare answer: explicit markers, else the whole string (math delimiters are dropped later). */
const BARE_STRATEGIES: readonly AnswerStrategy[] = ['answerTag', 'boxed', 'gsm8k'];

/** What `readAnswer` found: the answer text and the rule, `'whole'` when a bare answer was taken as it is. */
export type ReadAnswer =
  { answer: string; rule: AnswerStrategy | 'whole' } | { answer: null; rule: null; reason: string };

/**
 * The one answer reader. In `completion` mode the rules of `strategies` (default `DEFAULT_STRATEGIES`) are
 * tried in order; in `answer` mode an `<answer>` block, a `\boxed{}` or `#### N` is unwrapped and anything
 * else is taken whole, so that a reference `1,000` or `x^2+1` is not cut down to its last number.
 */
export function readAnswer(
  text: string,
  opts: { mode?: AnswerMode; strategies?: readonly AnswerStrategy[] } = {},
): ReadAnswer {
  if (opts.mode === 'answer') {
    if (typeof text !== 'string' || text.trim() === '') return { answer: null, rule: null, reason: 'empty answer' };
    const e = extractAnswer(text, { strategies: BARE_STRATEGIES });
    return e.answer !== null ? e : { answer: text.trim(), rule: 'whole' };
  }
  return extractAnswer(text, { strategies: opts.strategies });
}
