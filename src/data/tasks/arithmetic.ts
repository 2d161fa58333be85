/**
 * Multi-step arithmetic chains: the synthetic reasoning task of `aha demo`.
 *
 * A question is a short expression of single-digit operands, e.g. "7+8+6-9+4" (default: 4-5 operands, + and -,
 * every intermediate value in [0, 99]). The worked solution rewrites the expression one operation at a time:
 *
 *     7+8+6-9+4
 *     =15+6-9+4
 *     =21-9+4
 *     =12+4
 *     =16
 *
 * Why this task. A 2-5M-parameter character model cannot add up five signed digits in one forward pass, but each
 * rewrite line needs only one local fact (a number below 100 plus or minus a digit: units digit, carry or borrow)
 * and a copy of the previous line's tail, which small transformers learn quickly. So answering directly is
 * unreliable while reasoning line by line is reliable: the gap RL has to discover. Solutions are short (40-150
 * characters with reflection and self-check), the alphabet is tiny, and answers are integers checked by rule.
 * '*' (with precedence: the leftmost '*' is reduced first) is available as a harder variant.
 *
 * Difficulty knobs: minTerms/maxTerms (chain length = steps + 1), maxOperand, ops, maxValue; in the corpus, the
 * direct-answer accuracy per step count (corpus.ts, `directAccuracy`).
 *
 * Expected accuracy of a base model pre-trained on the default corpus (estimates, on 3-4 step test problems):
 * direct answers 15-30% (the corpus itself writes the true answer only 20-30% of the time at these lengths, a
 * near-miss otherwise); step by step 75-90% (about 95% per step, compounded); with the short R1-Zero template the
 * base follows the tagged format about 45% of the time, so tagged pass@1 starts near 25%. After GRPO the policy
 * should reason step by step in the tagged format nearly always: pass@1 towards the step-by-step ceiling.
 *
 * Train/test split: by an FNV-1a hash of the question text (20% test by default), so it is disjoint by
 * construction, independent of the seed, and the corpus (train questions only) never sees a test question.
 */
import { AhaError } from '../../errors.ts';
import { fnv1a32, type Rng } from '../rng.ts';
import { r1ZeroPrompt, r1ZeroShortPrompt } from '../r1ZeroTemplate.ts';
import {
  parseIntegerAnswer,
  type Example,
  type PretrainableTask,
  type Solution,
  type SolutionOptions,
  type Split,
} from './task.ts';

export type ArithOp = '+' | '-' | '*';

/** A chain problem; `terms` and `ops` are the parsed question (ops[i] sits between terms[i] and terms[i+1]). */
export interface ArithmeticExample extends Example {
  terms: number[];
  ops: ArithOp[];
}

export interface ArithmeticOptions {
  /** Fewest operands in an RL/eval question (default 4, i.e. 3 steps). */
  minTerms?: number;
  /** Most operands in any question (default 5, i.e. 4 steps). */
  maxTerms?: number;
  /** Fewest operands in a pre-training question (default 2: one-step problems teach the single facts). */
  pretrainMinTerms?: number;
  /** Operands are drawn from 1..maxOperand (default 9). */
  maxOperand?: number;
  /** Operators to draw from (default '+-'; '*' allowed). */
  ops?: string;
  /** Every intermediate value must stay in [0, maxValue] (default 99), so no negative numbers ever appear. */
  maxValue?: number;
  /** Fraction of question space in the test split (default 0.2). */
  testFraction?: number;
  /** Prompt template: 'short' = "User: q. Assistant:" (default, the demo), 'full' = the paper's verbatim one. */
  template?: 'short' | 'full';
}

/** Characters arithmetic questions and solutions may contain (tags excluded). */
export const ARITHMETIC_ALPHABET = '\n 0123456789+-*=,.:abcdefghijklmnopqrstuvwxyz';

const SPLIT_SALT = 'aha-split-v1:';

interface Step {
  a: number;
  op: ArithOp;
  b: number;
  c: number;
}

interface State {
  terms: number[];
  ops: ArithOp[];
}

function applyOp(a: number, op: ArithOp, b: number): number {
  return op === '+' ? a + b : op === '-' ? a - b : a * b;
}

/** Reduction order: leftmost '*' first (precedence), otherwise leftmost operation (left associativity). */
function reduceAt(ops: readonly ArithOp[]): number {
  const m = ops.indexOf('*');
  return m >= 0 ? m : 0;
}

function reduce(s: State): { next: State; step: Step; at: number } {
  const at = reduceAt(s.ops);
  const a = s.terms[at], b = s.terms[at + 1], op = s.ops[at];
  const c = applyOp(a, op, b);
  const terms = [...s.terms.slice(0, at), c, ...s.terms.slice(at + 2)];
  const ops = [...s.ops.slice(0, at), ...s.ops.slice(at + 1)];
  return { next: { terms, ops }, step: { a, op, b, c }, at };
}

/** Every state from `s` down to a single number, and the step taken between consecutive states. */
function trace(s: State): { states: State[]; steps: Step[] } {
  const states = [s];
  const steps: Step[] = [];
  let cur = s;
  while (cur.ops.length > 0) {
    const r = reduce(cur);
    steps.push(r.step);
    states.push(r.next);
    cur = r.next;
  }
  return { states, steps };
}

function render(s: State): string {
  let out = String(s.terms[0]);
  for (let i = 0; i < s.ops.length; i++) out += s.ops[i] + String(s.terms[i + 1]);
  return out;
}

function fact(st: Step, c = st.c): string {
  return `${st.a}${st.op}${st.b}=${c}`;
}

/** Offsets a near-miss is drawn from, with weights: off by one or two most often, a tens slip sometimes. */
const NEAR_MISS = [
  [1, 3], [-1, 3], [2, 2], [-2, 2], [3, 1], [-3, 1], [10, 1], [-10, 1],
] as const;

function nearMissValue(v: number, rng: Rng, ok: (w: number) => boolean): number | null {
  const cands: number[] = [];
  const weights: number[] = [];
  for (const [d, w] of NEAR_MISS) {
    if (ok(v + d) && v + d !== v) {
      cands.push(v + d);
      weights.push(w);
    }
  }
  // A digit swap (e.g. 21 -> 12) is a classic one-shot error.
  const s = String(v);
  if (s.length === 2 && s[0] !== s[1] && s[1] !== '0') {
    const sw = Number(s[1] + s[0]);
    if (ok(sw)) {
      cands.push(sw);
      weights.push(1);
    }
  }
  if (cands.length === 0) return null;
  return cands[rng.weighted(weights)];
}

const REFLECTIONS: readonly ((st: Step, wrong: number) => string)[] = [
  (st, w) => `wait, ${fact(st)}, not ${w}.`,
  (st, w) => `wait, ${fact(st)}, not ${w}. let me fix it.`,
  (st) => `wait, that is wrong: ${fact(st)}.`,
  (st, w) => `hmm, a mistake: ${fact(st)}, not ${w}.`,
];
const CHECK_OPENERS = ['let me check: ', 'wait, let me check: ', 'check: ', 'let me verify: '] as const;
const CHECK_CLOSERS = ['. ok.', '. correct.', '. yes.'] as const;

/** Build the multi-step arithmetic task (see the note at the top of this file for the design). */
export function arithmeticTask(options: ArithmeticOptions = {}): PretrainableTask<ArithmeticExample> {
  const minTerms = options.minTerms ?? 4;
  const maxTerms = options.maxTerms ?? 5;
  const pretrainMinTerms = options.pretrainMinTerms ?? Math.min(2, minTerms);
  const maxOperand = options.maxOperand ?? 9;
  const opsText = options.ops ?? '+-';
  const maxValue = options.maxValue ?? 99;
  const testFraction = options.testFraction ?? 0.2;
  const template = options.template ?? 'short';

  const intIn = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new AhaError(`arithmetic task: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  intIn('minTerms', minTerms, 2, 20);
  intIn('maxTerms', maxTerms, minTerms, 20);
  intIn('pretrainMinTerms', pretrainMinTerms, 2, maxTerms);
  intIn('maxOperand', maxOperand, 1, 99);
  intIn('maxValue', maxValue, maxOperand, 1_000_000);
  if (!(testFraction > 0 && testFraction < 1)) throw new AhaError(`arithmetic task: testFraction must be in (0, 1), got ${testFraction}`);
  if (template !== 'short' && template !== 'full') throw new AhaError(`arithmetic task: template must be 'short' or 'full', got ${template}`);
  const opList = [...new Set(opsText)] as ArithOp[];
  if (opList.length === 0 || opList.some((o) => o !== '+' && o !== '-' && o !== '*')) {
    throw new AhaError(`arithmetic task: ops must be a non-empty subset of "+-*", got "${opsText}"`);
  }

  const inRange = (v: number) => v >= 0 && v <= maxValue;
  const testCut = Math.round(testFraction * 10000);
  const splitOf = (question: string): Split => (fnv1a32(SPLIT_SALT + question) % 10000 < testCut ? 'test' : 'train');

  /** A random valid problem with `n` operands (every intermediate in range), or null after a rejected draw. */
  const draw = (rng: Rng, n: number): ArithmeticExample | null => {
    const terms: number[] = [];
    const ops: ArithOp[] = [];
    for (let i = 0; i < n; i++) terms.push(rng.int(1, maxOperand));
    for (let i = 0; i < n - 1; i++) ops.push(rng.pick(opList));
    const t = trace({ terms, ops });
    if (!t.steps.every((st) => inRange(st.c))) return null;
    const question = render({ terms, ops });
    return { question, answer: String(t.steps[t.steps.length - 1].c), terms, ops };
  };

  const drawFrom = (rng: Rng, split: Split, lo: number, hi: number): ArithmeticExample => {
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const ex = draw(rng, rng.int(lo, hi));
      if (ex && splitOf(ex.question) === split) return ex;
    }
    throw new AhaError(`arithmetic task: cannot draw a valid ${split} question; loosen maxValue or ops`);
  };

  const solve = (ex: ArithmeticExample, rng: Rng, opt: SolutionOptions): Solution => {
    const start: State = { terms: ex.terms, ops: ex.ops };
    const clean = trace(start);
    const gold = clean.states[clean.states.length - 1].terms[0];
    const nSteps = clean.steps.length;
    const lines = [render(start)];
    const taken: Step[] = [];
    let slip = opt.slip;

    if (nSteps === 0) slip = 'none';
    let final = gold;
    if (slip === 'corrected') {
      const k = rng.int(0, nSteps - 1);
      const st = clean.steps[k];
      const wrong = nearMissValue(st.c, rng, inRange)!; // st.c is in range, so some neighbour is too
      for (let i = 1; i <= k; i++) lines.push('=' + render(clean.states[i]));
      const at = reduceAt(clean.states[k].ops);
      const bad = clean.states[k + 1].terms.slice();
      bad[at] = wrong;
      lines.push('=' + render({ terms: bad, ops: clean.states[k + 1].ops }));
      lines.push(rng.pick(REFLECTIONS)(st, wrong));
      for (let i = k + 1; i <= nSteps; i++) lines.push('=' + render(clean.states[i]));
      taken.push(...clean.steps);
    } else if (slip === 'uncorrected') {
      // Try steps in random order for a wrong value whose continuation stays valid (non-negative, in range).
      const order = rng.shuffle([...Array(nSteps).keys()]);
      let done = false;
      for (const k of order) {
        const st = clean.steps[k];
        const at = reduceAt(clean.states[k].ops);
        const continuation = (w: number) => {
          const bad = clean.states[k + 1].terms.slice();
          bad[at] = w;
          return trace({ terms: bad, ops: clean.states[k + 1].ops });
        };
        const wrong = nearMissValue(st.c, rng, (w) => inRange(w) && continuation(w).steps.every((s) => inRange(s.c)));
        if (wrong === null) continue;
        const rest = continuation(wrong);
        for (let i = 1; i <= k; i++) lines.push('=' + render(clean.states[i]));
        for (const s of rest.states) lines.push('=' + render(s));
        taken.push(...clean.steps.slice(0, k), { ...st, c: wrong }, ...rest.steps);
        final = rest.states[rest.states.length - 1].terms[0];
        done = true;
        break;
      }
      if (!done) slip = 'none';
    }
    if (slip === 'none') {
      for (let i = 1; i <= nSteps; i++) lines.push('=' + render(clean.states[i]));
      taken.push(...clean.steps);
    }
    if (opt.verify && taken.length > 0) {
      lines.push(rng.pick(CHECK_OPENERS) + taken.map((s) => fact(s)).join(', ') + rng.pick(CHECK_CLOSERS));
    }
    return { reasoning: lines.join('\n'), answer: String(final), correct: final === gold, slip };
  };

  return {
    name: 'arithmetic',
    alphabet: ARITHMETIC_ALPHABET,

    generate(rng: Rng, n: number, split: Split): ArithmeticExample[] {
      if (!Number.isInteger(n) || n < 0) throw new AhaError(`arithmetic task: example count must be a non-negative integer, got ${n}`);
      if (split !== 'train' && split !== 'test') throw new AhaError(`arithmetic task: split must be 'train' or 'test', got ${split}`);
      const seen = new Set<string>();
      const out: ArithmeticExample[] = [];
      let misses = 0;
      while (out.length < n) {
        const ex = drawFrom(rng, split, minTerms, maxTerms);
        if (seen.has(ex.question)) {
          if (++misses > 1000 + 20 * n) throw new AhaError(`arithmetic task: only ${out.length} distinct ${split} questions found, ${n} asked`);
          continue;
        }
        seen.add(ex.question);
        out.push(ex);
      }
      return out;
    },

    check(completionAnswer: string, example: ArithmeticExample): boolean {
      const got = parseIntegerAnswer(completionAnswer);
      const gold = parseIntegerAnswer(example.answer);
      return got !== null && gold !== null && got === gold;
    },

    prompt(example: ArithmeticExample): string {
      return template === 'full' ? r1ZeroPrompt(example.question) : r1ZeroShortPrompt(example.question);
    },

    splitOf,

    steps(example: ArithmeticExample): number {
      return example.ops.length;
    },

    pretrainExamples(rng: Rng, n: number): ArithmeticExample[] {
      const out: ArithmeticExample[] = [];
      for (let i = 0; i < n; i++) out.push(drawFrom(rng, 'train', pretrainMinTerms, maxTerms));
      return out;
    },

    nearMiss(example: ArithmeticExample, rng: Rng): string {
      const v = Number(example.answer);
      return String(nearMissValue(v, rng, (w) => w >= 0) ?? v + 1);
    },

    solve,

    restate(example: ArithmeticExample): string {
      return render({ terms: example.terms, ops: example.ops });
    },
  };
}

/** Parse a chain question ("7+8-3") back into an example with its gold answer; AhaError if it is not one. */
export function arithmeticExample(question: string): ArithmeticExample {
  if (!/^\d+(?:[+\-*]\d+)*$/.test(question)) throw new AhaError(`arithmetic task: not a chain question: "${question}"`);
  const terms = question.split(/[+\-*]/).map(Number);
  const ops = (question.match(/[+\-*]/g) ?? []) as ArithOp[];
  const t = trace({ terms, ops });
  return { question, answer: String(t.states[t.states.length - 1].terms[0]), terms, ops };
}
