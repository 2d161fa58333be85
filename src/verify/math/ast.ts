/**
 * The scalar expression tree produced by the LaTeX parser, with a readable printer and an emitter to a
 * mathjs expression string. Kept independent of mathjs so that exact (rational) evaluation and structural
 * checks need no parsing round-trip.
 */

/** Functions the parser can produce; names are ours, mapped to mathjs in `toMathjs`. */
export type FnName =
  | 'sqrt'
  | 'nthroot'
  | 'sin'
  | 'cos'
  | 'tan'
  | 'cot'
  | 'sec'
  | 'csc'
  | 'asin'
  | 'acos'
  | 'atan'
  | 'sinh'
  | 'cosh'
  | 'tanh'
  | 'ln'
  | 'log10'
  | 'logb'
  | 'exp'
  | 'abs'
  | 'floor'
  | 'ceil'
  | 'factorial'
  | 'binom';

/** A node of a scalar expression. `num.v` is a decimal literal exactly as written (canonicalised). */
export type Node =
  | { t: 'num'; v: string }
  | { t: 'sym'; name: string }
  | { t: 'const'; name: 'pi' | 'e' | 'i' | 'inf' }
  | { t: 'neg'; a: Node }
  | { t: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'pm'; a: Node; b: Node }
  | { t: 'fn'; name: FnName; args: Node[] };

export const num = (v: string): Node => ({ t: 'num', v });
export const bin = (t: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'pm', a: Node, b: Node): Node => ({ t, a, b });
export const neg = (a: Node): Node => ({ t: 'neg', a });
export const fn = (name: FnName, ...args: Node[]): Node => ({ t: 'fn', name, args });

/** Number of nodes, used to bound the work any comparison may do. */
export function nodeCount(n: Node): number {
  switch (n.t) {
    case 'num':
    case 'sym':
    case 'const':
      return 1;
    case 'neg':
      return 1 + nodeCount(n.a);
    case 'fn':
      return n.args.reduce((s, a) => s + nodeCount(a), 1);
    default:
      return 1 + nodeCount(n.a) + nodeCount(n.b);
  }
}

/** Free variable names (constants pi, e, i, infinity are not variables). */
export function freeSymbols(n: Node, out: Set<string> = new Set()): Set<string> {
  switch (n.t) {
    case 'sym':
      out.add(n.name);
      break;
    case 'num':
    case 'const':
      break;
    case 'neg':
      freeSymbols(n.a, out);
      break;
    case 'fn':
      for (const a of n.args) freeSymbols(a, out);
      break;
    default:
      freeSymbols(n.a, out);
      freeSymbols(n.b, out);
  }
  return out;
}

export function hasInfinity(n: Node): boolean {
  switch (n.t) {
    case 'const':
      return n.name === 'inf';
    case 'num':
    case 'sym':
      return false;
    case 'neg':
      return hasInfinity(n.a);
    case 'fn':
      return n.args.some(hasInfinity);
    default:
      return hasInfinity(n.a) || hasInfinity(n.b);
  }
}

/**
 * Expand every `a ± b` into its two branches. Answers like `1 \pm \sqrt{19}` stand for a set of values;
 * the branch count is capped (3 signs, 8 values) to keep comparisons bounded.
 */
export function expandPm(n: Node): Node[] | null {
  const MAX = 8;
  const rec = (x: Node): Node[] | null => {
    switch (x.t) {
      case 'num':
      case 'sym':
      case 'const':
        return [x];
      case 'neg': {
        const a = rec(x.a);
        return a && a.map(neg);
      }
      case 'fn': {
        let acc: Node[][] = [[]];
        for (const arg of x.args) {
          const opts = rec(arg);
          if (!opts) return null;
          acc = acc.flatMap((pre) => opts.map((o) => [...pre, o]));
          if (acc.length > MAX) return null;
        }
        return acc.map((args) => ({ t: 'fn', name: x.name, args }));
      }
      default: {
        const a = rec(x.a),
          b = rec(x.b);
        if (!a || !b) return null;
        const out: Node[] = [];
        for (const l of a)
          for (const r of b) {
            if (x.t === 'pm') out.push(bin('add', l, r), bin('sub', l, r));
            else out.push(bin(x.t, l, r));
          }
        return out.length > MAX ? null : out;
      }
    }
  };
  return rec(n);
}

export function hasPm(n: Node): boolean {
  switch (n.t) {
    case 'num':
    case 'sym':
    case 'const':
      return false;
    case 'neg':
      return hasPm(n.a);
    case 'fn':
      return n.args.some(hasPm);
    case 'pm':
      return true;
    default:
      return hasPm(n.a) || hasPm(n.b);
  }
}

const PREC: Record<string, number> = { add: 1, sub: 1, pm: 1, mul: 2, div: 2, neg: 3, pow: 4 };

/**
 * Infix rendering with minimal parentheses. Long chains stay flat, which keeps mathjs' recursive
 * parser and compiler within the stack on answers like x+x+...+x.
 */
function render(
  n: Node,
  sym: (name: string) => string,
  call: (f: FnName, args: string[]) => string,
  constant: (c: 'pi' | 'e' | 'i' | 'inf') => string,
  pmOp: string,
): string {
  const r = (x: Node) => render(x, sym, call, constant, pmOp);
  const wrap = (child: Node, minPrec: number, strictRight = false): string => {
    const s = r(child);
    const p = PREC[child.t] ?? 9;
    return p < minPrec || (strictRight && p === minPrec) ? `(${s})` : s;
  };
  switch (n.t) {
    case 'num':
      return n.v;
    case 'sym':
      return sym(n.name);
    case 'const':
      return constant(n.name);
    case 'neg':
      return `-${wrap(n.a, 3)}`;
    case 'add':
      return `${wrap(n.a, 1)} + ${wrap(n.b, 1, true)}`;
    case 'sub':
      return `${wrap(n.a, 1)} - ${wrap(n.b, 1, true)}`;
    case 'pm':
      return `${wrap(n.a, 1)} ${pmOp} ${wrap(n.b, 1, true)}`;
    case 'mul':
      return `${wrap(n.a, 2)}*${wrap(n.b, 2, true)}`;
    case 'div':
      return `${wrap(n.a, 2)}/${wrap(n.b, 2, true)}`;
    // Base and exponent are parenthesised unless atomic: a^b^c and -x^2 read differently across tools.
    case 'pow':
      return `${wrap(n.a, 5)}^${wrap(n.b, 5)}`;
    case 'fn':
      return call(n.name, n.args.map(r));
  }
}

/** Readable infix form with minimal parentheses, used for `goldParsed`/`predParsed`. */
export function printNode(n: Node): string {
  return render(
    n,
    (name) => name,
    (f, args) =>
      f === 'factorial' ? `${/^[\w.]+$/.test(args[0]) ? args[0] : `(${args[0]})`}!` : `${f}(${args.join(', ')})`,
    (c) => (c === 'inf' ? 'oo' : c),
    '+-',
  );
}

const MATHJS_FN: Record<FnName, string> = {
  sqrt: 'sqrt',
  nthroot: 'realRoot',
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  cot: 'cot',
  sec: 'sec',
  csc: 'csc',
  asin: 'asin',
  acos: 'acos',
  atan: 'atan',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  ln: 'log',
  log10: 'log10',
  logb: 'log',
  exp: 'exp',
  abs: 'abs',
  floor: 'floor',
  ceil: 'ceil',
  factorial: 'factorial',
  binom: 'safeBinom',
};

/** Prefix that keeps user variables (`e`, `phi`, `gamma`, `cm`) apart from mathjs constants, functions and units. */
export const VAR_PREFIX = 'v_';

/** mathjs expression string; variables carry `VAR_PREFIX`. Throws on an unexpanded ±. */
export function toMathjs(n: Node): string {
  if (hasPm(n)) throw new Error('toMathjs: expand ± first');
  return render(
    n,
    (name) => VAR_PREFIX + name,
    (f, args) => `${MATHJS_FN[f]}(${args.join(', ')})`,
    (c) => (c === 'inf' ? 'Infinity' : c),
    '',
  );
}
