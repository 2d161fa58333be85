/**
 * Output comparison of stdin/stdout tests, as competitive-programming judges do it: whitespace-separated tokens
 * must match one by one; with a float tolerance, two numeric tokens also match when they differ by at most
 * `tol * max(1, |expected|)` (absolute for small values, relative for large ones).
 */

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Whether `got` matches `expected` token by token (see the module comment). */
export function outputsMatch(got: string, expected: string, floatTolerance = 0): boolean {
  const a = tokens(got);
  const b = tokens(expected);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (!(floatTolerance > 0) || !NUMBER.test(a[i]) || !NUMBER.test(b[i])) return false;
    const x = Number(a[i]);
    const y = Number(b[i]);
    if (!(Math.abs(x - y) <= floatTolerance * Math.max(1, Math.abs(y)))) return false;
  }
  return true;
}

function tokens(s: string): string[] {
  const t = s.trim();
  return t === '' ? [] : t.split(/\s+/);
}
