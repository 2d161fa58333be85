/**
 * Numeric and symbolic comparison of scalar expressions through mathjs: evaluation of variable-free
 * expressions (complex values allowed), agreement at seeded random points for expressions with
 * variables, and `simplify(a - b) == 0` when too few points can be evaluated.
 */
import { createRequire } from 'node:module';
import type { EvalFunction, MathJsInstance, MathNode } from 'mathjs';
import { freeSymbols, nodeCount, toMathjs, VAR_PREFIX, type Node } from './ast.ts';

let instance: MathJsInstance | null = null;

/**
 * A private mathjs instance, loaded on first use: importing mathjs takes 1-2 s, and integer or
 * rational answers (most of GSM8K and AIME) are decided without it.
 */
function mathjs(): MathJsInstance {
  if (instance) return instance;
  const m = createRequire(import.meta.url)('mathjs') as typeof import('mathjs');
  const math = m.create(m.all, {});
  math.import(
    {
      /** Real n-th root for negative radicands and odd n (`\sqrt[3]{-8} = -2`), principal root otherwise. */
      realRoot(x: unknown, n: unknown): unknown {
        if (typeof x === 'number' && typeof n === 'number' && x < 0 && Number.isInteger(n) && n % 2 !== 0)
          return -Math.pow(-x, 1 / n);
        return math.pow(x as number, math.divide(1, n as number) as number);
      },
      /**
       * Binomial coefficient in O(min(k, n-k) <= 1000) steps, else through log-gamma: mathjs'
       * `combinations` loops k times, which would stall on \binom{10^9}{5 \cdot 10^8}.
       */
      safeBinom(n: unknown, k: unknown): number {
        if (typeof n !== 'number' || typeof k !== 'number') return NaN;
        if (Number.isInteger(n) && Number.isInteger(k)) {
          if (k < 0 || k > n) return 0;
          const m = Math.min(k, n - k);
          if (m <= 1000) {
            let r = 1;
            for (let i = 1; i <= m; i++) r = (r * (n - m + i)) / i;
            return Math.round(r);
          }
        }
        return Math.exp(Number(math.lgamma(n + 1)) - Number(math.lgamma(k + 1)) - Number(math.lgamma(n - k + 1)));
      },
    },
    { override: true },
  );
  instance = math;
  return math;
}

/** A complex value; real results have im = 0. */
export type Complex = { re: number; im: number };

/** Raised when a comparison exceeds its time budget. */
export class BudgetExceeded extends Error {}

/** Shared limits for one `mathEqual` call. */
export type Budget = { deadline: number; rtol: number };

/** Throw `BudgetExceeded` once the deadline has passed; called between units of work. */
export function checkBudget(b: Budget): void {
  if (Date.now() > b.deadline) throw new BudgetExceeded('time budget exceeded');
}

/** Load mathjs if needed without charging the one-off load time to this comparison's budget. */
function loadMathjs(b: Budget): void {
  if (instance) return;
  const t = Date.now();
  mathjs();
  b.deadline += Date.now() - t;
}

function toComplex(v: unknown): Complex {
  if (typeof v === 'number') return { re: v, im: 0 };
  if (v && typeof v === 'object' && 're' in v && 'im' in v)
    return { re: Number((v as Complex).re), im: Number((v as Complex).im) };
  return { re: NaN, im: NaN };
}

const isFiniteC = (c: Complex): boolean => Number.isFinite(c.re) && Number.isFinite(c.im);
const modulus = (c: Complex): number => Math.hypot(c.re, c.im);

/** |a - b| <= rtol * max(|a|, |b|) + atol; equal infinities compare equal. */
export function closeEnough(a: Complex, b: Complex, rtol: number, atol = 1e-12): boolean {
  if (!isFiniteC(a) || !isFiniteC(b)) return a.re === b.re && a.im === b.im && !Number.isNaN(a.re);
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= rtol * Math.max(modulus(a), modulus(b)) + atol;
}

const compiled = new Map<string, EvalFunction>();
function compileCached(expr: string): EvalFunction {
  let c = compiled.get(expr);
  if (!c) {
    c = mathjs().parse(expr).compile();
    if (compiled.size > 2000) compiled.clear();
    compiled.set(expr, c);
  }
  return c;
}

/** Value of a variable-free expression; NaN parts when mathjs cannot evaluate it. */
export function evaluateConstant(n: Node, budget: Budget): Complex {
  loadMathjs(budget);
  try {
    return toComplex(compileCached(toMathjs(n)).evaluate({}));
  } catch {
    return { re: NaN, im: NaN };
  }
}

/** Deterministic PRNG (mulberry32) so that a given pair always gets the same verdict. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POINTS = 8;
const MIN_VALID = 4;
const SIMPLIFY_MAX_NODES = 60;

/** Evaluate `n` at `count` seeded random points; `NaN` entries mark points where it is undefined. */
function samples(nodes: Node[], vars: string[], budget: Budget, seed = 12345): Complex[][] {
  loadMathjs(budget);
  const fns = nodes.map((n) => compileCached(toMathjs(n)));
  const rand = rng(seed);
  const out: Complex[][] = nodes.map(() => []);
  for (let p = 0; p < POINTS; p++) {
    checkBudget(budget);
    // Positive values: answers' variables are usually lengths, counts or positive parameters, where
    // identities such as sqrt(x)sqrt(y) = sqrt(xy) hold.
    const scope: Record<string, number> = {};
    for (const v of vars) scope[VAR_PREFIX + v] = 0.5 + 3 * rand();
    fns.forEach((f, i) => {
      let r: Complex;
      try {
        r = toComplex(f.evaluate(scope));
      } catch {
        r = { re: NaN, im: NaN };
      }
      out[i].push(r);
    });
  }
  return out;
}

/** Outcome of a scalar comparison, with the method that decided it. */
export type Verdict = { equal: boolean; reason: string };

function simplifiesToZero(expr: string): boolean {
  try {
    const s: MathNode = mathjs().simplify(expr);
    return s.type === 'ConstantNode' && Number((s as unknown as { value: unknown }).value) === 0;
  } catch {
    return false;
  }
}

/**
 * Compare two expressions with free variables. Random-point evaluation decides first: one disagreeing
 * point refutes, agreement at every valid point accepts. mathjs `simplify(a - b)` (20-300 ms a call, and
 * weaker than evaluation on polynomials) is the fallback for when too few points can be evaluated.
 */
export function symbolicEqual(a: Node, b: Node, budget: Budget): Verdict {
  const vars = [...new Set([...freeSymbols(a), ...freeSymbols(b)])].sort();
  const [sa, sb] = samples([a, b], vars, budget);
  let valid = 0;
  for (let i = 0; i < POINTS; i++) {
    const fa = isFiniteC(sa[i]),
      fb = isFiniteC(sb[i]);
    if (!fa && !fb) continue;
    if (fa !== fb) return { equal: false, reason: 'defined at different points' };
    if (!closeEnough(sa[i], sb[i], Math.max(budget.rtol, 1e-9), 1e-9))
      return { equal: false, reason: 'differ at a random point' };
    valid++;
  }
  if (valid >= MIN_VALID) return { equal: true, reason: `agree at ${valid} random points` };
  if (nodeCount(a) + nodeCount(b) <= SIMPLIFY_MAX_NODES) {
    checkBudget(budget);
    if (simplifiesToZero(`${toMathjs(a)} - ${toMathjs(b)}`)) return { equal: true, reason: 'simplify(a - b) = 0' };
  }
  return { equal: false, reason: 'could not evaluate at enough points' };
}

/**
 * Two equations are equivalent when (lhs1 - rhs1) is a constant non-zero multiple of (lhs2 - rhs2),
 * checked at random points: `5x - 7y + 4 = 0` equals `-5x + 7y = 4`.
 */
export function equationsEqual(l1: Node, r1: Node, l2: Node, r2: Node, budget: Budget): Verdict {
  const vars = [...new Set([l1, r1, l2, r2].flatMap((n) => [...freeSymbols(n)]))].sort();
  const d1: Node = { t: 'sub', a: l1, b: r1 },
    d2: Node = { t: 'sub', a: l2, b: r2 };
  const [s1, s2] = samples([d1, d2], vars, budget, 777);
  let ratio: Complex | null = null;
  let valid = 0;
  for (let i = 0; i < POINTS; i++) {
    const a = s1[i],
      b = s2[i];
    if (!isFiniteC(a) || !isFiniteC(b)) continue;
    const zeroA = modulus(a) < 1e-12,
      zeroB = modulus(b) < 1e-12;
    if (zeroA || zeroB) {
      if (zeroA !== zeroB) return { equal: false, reason: 'equations differ' };
      continue;
    }
    const den = b.re * b.re + b.im * b.im;
    const r = { re: (a.re * b.re + a.im * b.im) / den, im: (a.im * b.re - a.re * b.im) / den };
    if (ratio && !closeEnough(ratio, r, Math.max(budget.rtol, 1e-9), 1e-12))
      return { equal: false, reason: 'equations differ' };
    ratio ??= r;
    valid++;
  }
  if (valid < MIN_VALID) return { equal: false, reason: 'could not evaluate equations at enough points' };
  return { equal: true, reason: 'equations are proportional' };
}
