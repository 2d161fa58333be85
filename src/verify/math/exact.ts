/**
 * Exact rational evaluation of variable-free expressions built from +, -, *, /, integer powers,
 * factorials, binomials and perfect-square roots. Lets integers be compared exactly (no float tolerance
 * can make 1000000000 equal 1000000001) and keeps big integers exact beyond 2^53.
 */
import type { Node } from './ast.ts';

/** A rational in lowest terms with a positive denominator. */
export type Rational = { n: bigint; d: bigint };

/** Bound on the size of any intermediate, so that `2^{10^9}` or `1000!` cannot stall a comparison. */
const MAX_BITS = 4096n;

const abs = (x: bigint): bigint => (x < 0n ? -x : x);
function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}
function bits(x: bigint): bigint {
  return BigInt(abs(x).toString(2).length);
}

function make(n: bigint, d: bigint): Rational | null {
  if (d === 0n) return null;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d) || 1n;
  n /= g;
  d /= g;
  if (bits(n) > MAX_BITS || bits(d) > MAX_BITS) return null;
  return { n, d };
}

/** Exact value of a decimal literal such as `0.0000672` or `1.5e3`. */
export function parseDecimal(v: string): Rational | null {
  const m = /^(\d*)(?:\.(\d*))?(?:e([-+]?\d+))?$/i.exec(v);
  if (!m) return null;
  const frac = m[2] ?? '';
  const exp = Number(m[3] ?? 0) - frac.length;
  if (Math.abs(exp) > 1000) return null;
  const digits = BigInt((m[1] || '0') + frac);
  return exp >= 0 ? make(digits * 10n ** BigInt(exp), 1n) : make(digits, 10n ** BigInt(-exp));
}

function isqrt(x: bigint): bigint {
  if (x < 2n) return x;
  let r = BigInt(Math.floor(Math.sqrt(Number(x))));
  while (r * r > x) r--;
  while ((r + 1n) * (r + 1n) <= x) r++;
  return r;
}

/** Exact value, or null when the expression is not a (bounded) rational computation. */
export function exactValue(node: Node): Rational | null {
  switch (node.t) {
    case 'num':
      return parseDecimal(node.v);
    case 'sym':
    case 'const':
    case 'pm':
      return null;
    case 'neg': {
      const a = exactValue(node.a);
      return a && { n: -a.n, d: a.d };
    }
    case 'add':
    case 'sub':
    case 'mul':
    case 'div': {
      const a = exactValue(node.a);
      if (!a) return null;
      const b = exactValue(node.b);
      if (!b) return null;
      if (node.t === 'add') return make(a.n * b.d + b.n * a.d, a.d * b.d);
      if (node.t === 'sub') return make(a.n * b.d - b.n * a.d, a.d * b.d);
      if (node.t === 'mul') return make(a.n * b.n, a.d * b.d);
      return make(a.n * b.d, a.d * b.n);
    }
    case 'pow': {
      const b = exactValue(node.a),
        e = exactValue(node.b);
      if (!b || !e || e.d !== 1n) return null;
      if (b.n === 0n && e.n < 0n) return null;
      const k = abs(e.n);
      if (k > 0n && (bits(b.n) + bits(b.d)) * k > MAX_BITS) return null;
      const n = b.n ** k,
        d = b.d ** k;
      return e.n >= 0n ? make(n, d) : make(d, n);
    }
    case 'fn': {
      const args = node.args.map(exactValue);
      if (args.some((a) => !a)) return null;
      const a = args[0]!;
      if (node.name === 'abs') return { n: abs(a.n), d: a.d };
      if (node.name === 'sqrt') {
        if (a.n < 0n) return null;
        const rn = isqrt(a.n),
          rd = isqrt(a.d);
        return rn * rn === a.n && rd * rd === a.d ? make(rn, rd) : null;
      }
      if (node.name === 'factorial') {
        if (a.d !== 1n || a.n < 0n || a.n > 300n) return null;
        let r = 1n;
        for (let i = 2n; i <= a.n; i++) r *= i;
        return make(r, 1n);
      }
      if (node.name === 'binom') {
        const b = args[1]!;
        if (a.d !== 1n || b.d !== 1n || a.n < 0n || a.n > 2000n) return null;
        if (b.n < 0n || b.n > a.n) return { n: 0n, d: 1n };
        let r = 1n;
        for (let i = 1n; i <= b.n; i++) r = (r * (a.n - b.n + i)) / i;
        return make(r, 1n);
      }
      if (node.name === 'floor' || node.name === 'ceil') {
        let q = a.n / a.d;
        if (a.n % a.d !== 0n) {
          if (a.n < 0n && node.name === 'floor') q -= 1n;
          if (a.n > 0n && node.name === 'ceil') q += 1n;
        }
        return make(q, 1n);
      }
      return null;
    }
  }
}

export const rationalEquals = (a: Rational, b: Rational): boolean => a.n === b.n && a.d === b.d;
export const rationalToNumber = (a: Rational): number => Number(a.n) / Number(a.d);
