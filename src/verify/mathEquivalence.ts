/**
 * Is a predicted math answer equivalent to the reference? The verifier behind the RL reward and the
 * benchmark scores. Pipeline: normalise the strings (math/normalize.ts), parse their shape
 * (math/structure.ts) and scalars (math/latexParser.ts), then compare shape by shape.
 *
 * Rules worth knowing (each is a choice; tests in test/verify/mathEquivalence.test.ts pin them down):
 * - integers (after exact rational evaluation) compare exactly, and so do two finite decimals (3.1415926 still
 *   matches 3.14159 by rounding, from five significant digits); other numbers within `rtol`;
 * - `1000,99` is also read as 1000.99 against a single number (a decimal comma), `0,111` always as 0.111;
 * - `x \approx 3.1416` matches a value that rounds to it (four significant digits or more);
 * - expressions with variables are equal when they agree at 8 seeded random points with positive
 *   variable values; mathjs `simplify(a - b)` is tried only when too few points can be evaluated;
 * - `50\%` matches both 50 and 0.5; degrees (`^\circ`), units, currency and base subscripts (`52_8`)
 *   are dropped; `x = 5` matches 5, and equations match up to a constant factor;
 * - `(a, b)` / `[a, b)` are ordered with their bracket types (point or interval alike); `\{...\}` and
 *   bare lists `1, 2` are unordered multisets; `a \pm b` is the list of both values;
 * - text answers compare case-insensitively; `\log` is base 10, `\ln` natural.
 * Never throws: anything it cannot read is reported as not equal, with a reason.
 */
import { freeSymbols, hasInfinity, printNode, type Node } from './math/ast.ts';
import { exactValue, rationalEquals, rationalToNumber, type Rational } from './math/exact.ts';
import { ParseError } from './math/latexParser.ts';
import { decimalCommaReading, isApproximation, isWhollyText, normalizeAnswer } from './math/normalize.ts';
import {
  BudgetExceeded,
  checkBudget,
  closeEnough,
  equationsEqual,
  evaluateConstant,
  symbolicEqual,
  type Budget,
  type Complex,
  type Verdict,
} from './math/numeric.ts';
import { normalizeText, parseAnswer, printParsed, type Parsed } from './math/structure.ts';

/** Options for `mathEqual`. */
export type MathEqualOptions = {
  /** Relative tolerance for non-integer numbers (default 1e-6). Integers are always compared exactly. */
  rtol?: number;
  /** Wall-clock budget for one comparison in ms (default 2000); past it the answer counts as not equal. */
  timeoutMs?: number;
  /** Answers longer than this many characters are rejected unparsed (default 1000). */
  maxLength?: number;
};

/** Verdict of `mathEqual`; `goldParsed`/`predParsed` are canonical renderings, null when unparseable. */
export type MathEqualResult = {
  equal: boolean;
  goldParsed: string | null;
  predParsed: string | null;
  reason?: string;
};

type Side = { parsed: Parsed; normalized: string; approx: boolean; decimalComma: Parsed | null };

function prepare(raw: unknown, opts: Required<MathEqualOptions>): Side {
  if (typeof raw === 'number' && Number.isFinite(raw)) raw = String(raw);
  if (typeof raw !== 'string') throw new ParseError(`not a string (${raw === null ? 'null' : typeof raw})`);
  if (raw.length > opts.maxLength) throw new ParseError(`longer than ${opts.maxLength} characters`);
  const normalized = normalizeAnswer(raw);
  if (normalized === '') throw new ParseError('empty answer');
  const comma = decimalCommaReading(normalized);
  return {
    normalized,
    parsed: parseAnswer(normalized, { text: isWhollyText(raw) }),
    approx: isApproximation(raw),
    decimalComma: comma === null ? null : parseAnswer(comma),
  };
}

/**
 * Compare a reference answer with a predicted one, both answer strings (e.g. a `\boxed{}` content, not a
 * whole model output: see extractAnswer.ts). The verdict does not depend on which side is which;
 * `gold`/`pred` only label the reasons.
 */
export function mathEqual(gold: string, pred: string, opts: MathEqualOptions = {}): MathEqualResult {
  const o: Required<MathEqualOptions> = {
    rtol: opts.rtol ?? 1e-6,
    timeoutMs: opts.timeoutMs ?? 2000,
    maxLength: opts.maxLength ?? 1000,
  };
  let g: Side, p: Side;
  try {
    g = prepare(gold, o);
  } catch (e) {
    return { equal: false, goldParsed: null, predParsed: null, reason: `gold: unparseable (${message(e)})` };
  }
  const goldParsed = printParsed(g.parsed);
  try {
    p = prepare(pred, o);
  } catch (e) {
    return { equal: false, goldParsed, predParsed: null, reason: `pred: unparseable (${message(e)})` };
  }
  const predParsed = printParsed(p.parsed);
  if (g.normalized === p.normalized)
    return { equal: true, goldParsed, predParsed, reason: 'identical after normalisation' };
  const budget: Budget = { deadline: Date.now() + o.timeoutMs, rtol: o.rtol };
  try {
    let v = compare(g.parsed, p.parsed, budget);
    // "1000,99" is both the list (1000, 99) and 1000.99; against a single number the decimal reading counts.
    if (!v.equal && g.decimalComma && p.parsed.kind === 'scalar') v = tagged(compare(g.decimalComma, p.parsed, budget));
    if (!v.equal && p.decimalComma && g.parsed.kind === 'scalar') v = tagged(compare(g.parsed, p.decimalComma, budget));
    if (!v.equal && (g.approx || p.approx)) v = approximatelyEqual(g, p, budget) ?? v;
    return { equal: v.equal, goldParsed, predParsed, reason: v.reason };
  } catch (e) {
    if (e instanceof BudgetExceeded) return { equal: false, goldParsed, predParsed, reason: 'time budget exceeded' };
    return { equal: false, goldParsed, predParsed, reason: `comparison failed (${message(e)})` };
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const yes = (reason: string): Verdict => ({ equal: true, reason });
const tagged = (v: Verdict): Verdict => (v.equal ? yes(`${v.reason} (decimal comma)`) : v);

/**
 * `x \approx 3.14` against pi: equal when the other side, rounded to the decimals the approximation states,
 * gives the stated value. Needs three significant digits, so that `\approx 0` or `\approx 10` cannot accept
 * a whole range of answers.
 */
function approximatelyEqual(g: Side, p: Side, budget: Budget): Verdict | null {
  const [approx, exact] = p.approx ? [p, g] : [g, p];
  if (approx.parsed.kind !== 'scalar' || exact.parsed.kind !== 'scalar') return null;
  let lit = approx.parsed.node;
  let sign = 1;
  if (lit.t === 'neg') {
    lit = lit.a;
    sign = -1;
  }
  if (lit.t !== 'num' || !/^\d+(?:\.\d+)?$/.test(lit.v)) return null;
  const digits = lit.v.replace('.', '').replace(/^0+/, '');
  if (digits.length < 4) return null;
  const decimals = lit.v.includes('.') ? lit.v.split('.')[1].length : 0;
  if (freeSymbols(exact.parsed.node).size > 0) return null;
  const v = evaluateConstant(exact.parsed.node, budget);
  if (!Number.isFinite(v.re) || Math.abs(v.im) > 1e-12) return null;
  const stated = sign * Number(lit.v);
  const rounded = Number(v.re.toFixed(decimals));
  return Math.abs(rounded - stated) <= 1e-9 * Math.max(1, Math.abs(stated))
    ? yes(`rounds to the stated approximation (${decimals} decimals)`)
    : null;
}
const no = (reason: string): Verdict => ({ equal: false, reason });

function compare(a: Parsed, b: Parsed, budget: Budget): Verdict {
  checkBudget(budget);
  if (a.kind === 'text' || b.kind === 'text') {
    const ta = a.kind === 'text' ? a.text : normalizeText(a.src ?? printParsed(a));
    const tb = b.kind === 'text' ? b.text : normalizeText(b.src ?? printParsed(b));
    return ta === tb ? yes('same text') : no('different text');
  }
  if (a.kind === 'scalar' && b.kind === 'scalar') {
    if (a.assignedTo && b.assignedTo && a.assignedTo !== b.assignedTo) {
      return equationsEqual(sym(a.assignedTo), a.node, sym(b.assignedTo), b.node, budget);
    }
    return scalarWithPercent(a, b, budget);
  }
  if (a.kind === 'equation' && b.kind === 'equation') return equationsEqual(a.lhs, a.rhs, b.lhs, b.rhs, budget);
  if (a.kind === 'equation' && b.kind === 'scalar' && b.assignedTo)
    return equationsEqual(a.lhs, a.rhs, sym(b.assignedTo), b.node, budget);
  if (b.kind === 'equation' && a.kind === 'scalar' && a.assignedTo)
    return equationsEqual(sym(a.assignedTo), a.node, b.lhs, b.rhs, budget);
  if (a.kind === 'seq' && b.kind === 'seq') {
    if (a.items.length !== b.items.length) return no(`lengths ${a.items.length} and ${b.items.length} differ`);
    if (a.open !== b.open || a.close !== b.close)
      return no(`brackets ${a.open}${a.close} and ${b.open}${b.close} differ`);
    return ordered(a.items, b.items, budget);
  }
  // A bare list "1, 2" may stand for the point (1, 2); a column or row vector for a tuple.
  const asTuple = (x: Parsed): Parsed[] | null => {
    if (x.kind === 'seq' && x.open === '(' && x.close === ')') return x.items;
    if (x.kind === 'set' && !x.braced) return x.items;
    if (x.kind === 'matrix' && (x.rows.length === 1 || x.rows.every((r) => r.length === 1))) return x.rows.flat();
    return null;
  };
  if (a.kind === 'set' && b.kind === 'set') return unordered(a.items, b.items, budget);
  if (a.kind === 'matrix' && b.kind === 'matrix') {
    if (a.rows.length !== b.rows.length || a.rows[0].length !== b.rows[0].length) return no('matrix shapes differ');
    return ordered(a.rows.flat(), b.rows.flat(), budget);
  }
  if (a.kind === 'union' && b.kind === 'union') return unordered(a.parts, b.parts, budget);
  if ((a.kind === 'seq' || a.kind === 'matrix' || b.kind === 'seq' || b.kind === 'matrix') && a.kind !== b.kind) {
    const ta = asTuple(a),
      tb = asTuple(b);
    if (ta && tb) {
      if (ta.length !== tb.length) return no(`lengths ${ta.length} and ${tb.length} differ`);
      return ordered(ta, tb, budget);
    }
  }
  // A one-element set or list against a single value.
  if (a.kind === 'set' && a.items.length === 1 && b.kind !== 'set') return compare(a.items[0], b, budget);
  if (b.kind === 'set' && b.items.length === 1 && a.kind !== 'set') return compare(a, b.items[0], budget);
  return no(`${describe(a)} vs ${describe(b)}`);
}

function describe(p: Parsed): string {
  if (p.kind === 'seq') return 'tuple/interval';
  if (p.kind === 'scalar') return p.assignedTo ? 'assignment' : 'expression';
  if (p.kind === 'set') return p.braced ? 'set' : 'list';
  return p.kind;
}

const sym = (name: string): Node => ({ t: 'sym', name });

function ordered(a: Parsed[], b: Parsed[], budget: Budget): Verdict {
  for (let i = 0; i < a.length; i++) {
    const v = compare(a[i], b[i], budget);
    if (!v.equal) return no(`item ${i + 1}: ${v.reason}`);
  }
  return yes('all items equal');
}

/** Multiset equality under `compare`, by bipartite matching (the relation need not be transitive). */
function unordered(a: Parsed[], b: Parsed[], budget: Budget): Verdict {
  if (a.length !== b.length) return no(`sizes ${a.length} and ${b.length} differ`);
  const memo = new Map<number, boolean>();
  const eq = (i: number, j: number): boolean => {
    const k = i * b.length + j;
    let v = memo.get(k);
    if (v === undefined) {
      v = compare(a[i], b[j], budget).equal;
      memo.set(k, v);
    }
    return v;
  };
  const matchOfB = new Array<number>(b.length).fill(-1);
  const tryAssign = (i: number, seen: boolean[]): boolean => {
    for (let j = 0; j < b.length; j++) {
      if (seen[j] || !eq(i, j)) continue;
      seen[j] = true;
      if (matchOfB[j] < 0 || tryAssign(matchOfB[j], seen)) {
        matchOfB[j] = i;
        return true;
      }
    }
    return false;
  };
  for (let i = 0; i < a.length; i++) {
    if (!tryAssign(i, new Array<boolean>(b.length).fill(false))) return no(`no match for ${printParsed(a[i])}`);
  }
  return yes('same members');
}

function scalarWithPercent(
  a: Extract<Parsed, { kind: 'scalar' }>,
  b: Extract<Parsed, { kind: 'scalar' }>,
  budget: Budget,
): Verdict {
  const v = scalarEqual(a.node, b.node, budget);
  if (v.equal || a.percent === b.percent) return v;
  // "50%" also matches 0.5.
  const hundred: Node = { t: 'num', v: '100' };
  const [x, y] = a.percent
    ? [{ t: 'div', a: a.node, b: hundred } as Node, b.node]
    : [a.node, { t: 'div', a: b.node, b: hundred } as Node];
  const w = scalarEqual(x, y, budget);
  return w.equal ? yes(`${w.reason} (as a fraction of 100)`) : v;
}

/** Whether a denominator has no prime factor but 2 and 5: the rational is a finite decimal. */
function terminating(d: bigint): boolean {
  while (d % 2n === 0n) d /= 2n;
  while (d % 5n === 0n) d /= 5n;
  return d === 1n;
}

/** Number of decimals of a finite decimal. */
function decimals(r: Rational): number {
  let k = 0;
  for (let p = 1n; r.d > p && k < 400; k++) p *= 10n;
  return k;
}

/** Whether `long`, rounded half away from zero to the decimals of `short`, is `short` (see scalarEqual). */
function roundsTo(long: Rational, short: Rational): boolean {
  const k = decimals(short);
  if (k === 0 || decimals(long) <= k) return false;
  const scale = 10n ** BigInt(k);
  const target = (short.n * scale) / short.d;
  if (target.toString().replace('-', '').replace(/^0+/, '').length < 5) return false;
  const x = long.n * scale;
  const neg = x < 0n;
  const ax = neg ? -x : x;
  let q = ax / long.d;
  if ((ax % long.d) * 2n >= long.d) q += 1n;
  return (neg ? -q : q) === target;
}

/** Compare two scalar expressions. */
function scalarEqual(a: Node, b: Node, budget: Budget): Verdict {
  if (printNode(a) === printNode(b)) return yes('identical expressions');
  if (freeSymbols(a).size === 0 && freeSymbols(b).size === 0) {
    const ea = exactValue(a),
      eb = exactValue(b);
    if (ea && eb) {
      if (rationalEquals(ea, eb)) return yes('equal rationals');
      if (ea.d === 1n && eb.d === 1n) return no('different integers');
      // Two finite decimals are stated exactly: no tolerance makes 1234567.5 equal 1234567, only a rounding of
      // the longer to the shorter's decimals (3.1415926 to 3.14159, five significant digits or more).
      if (terminating(ea.d) && terminating(eb.d))
        return roundsTo(ea, eb) || roundsTo(eb, ea) ? yes('equal after rounding') : no('different decimals');
      const close = closeEnough({ re: rationalToNumber(ea), im: 0 }, { re: rationalToNumber(eb), im: 0 }, budget.rtol);
      return close ? yes(`equal within rtol ${budget.rtol}`) : no('different values');
    }
    const va = evaluateConstant(a, budget),
      vb = evaluateConstant(b, budget);
    const bad = (v: Complex, n: Node) =>
      Number.isNaN(v.re) ||
      Number.isNaN(v.im) ||
      ((!Number.isFinite(v.re) || !Number.isFinite(v.im)) && !hasInfinity(n));
    if (bad(va, a) || bad(vb, b)) return no('could not evaluate');
    return closeEnough(va, vb, budget.rtol) ? yes(`equal within rtol ${budget.rtol}`) : no('different values');
  }
  return symbolicEqual(a, b, budget);
}
