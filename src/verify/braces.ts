/** Brace groups in LaTeX-like text (answers in \boxed{...}, \frac{..}{..}). */

/** Index just past the brace group opening at `open` (s[open] === '{'), or -1 if it does not close before `limit`. */
export function matchBrace(s: string, open: number, limit = s.length): number {
  let depth = 0;
  for (let i = open; i < limit; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return -1;
}
