/**
 * pass@k as reported by Codex (Chen et al. 2021) and DeepSeek-R1: the unbiased estimate, from n samples
 * of which c are correct, of the chance that at least one of k samples drawn without replacement is
 * correct.
 */
import { AhaError } from '../errors.ts';

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new AhaError(`passAtK: ${name} must be a non-negative integer, got ${v}`);
}

/**
 * 1 - C(n-c, k) / C(n, k), evaluated as 1 - prod_{i=n-c+1}^{n} (1 - k/i): the binomials overflow long
 * before n = 1000, the product never does.
 */
export function passAtK(n: number, c: number, k: number): number {
  checkCount('n', n);
  checkCount('c', c);
  checkCount('k', k);
  if (c > n) throw new AhaError(`passAtK: c (${c}) exceeds n (${n})`);
  if (k < 1 || k > n) throw new AhaError(`passAtK: k must be in 1..n (${n}), got ${k}`);
  if (n - c < k) return 1;
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}

/**
 * DeepSeek-R1's pass@1: per problem the fraction of its samples that are correct, averaged over
 * problems (each problem weighs the same whatever its sample count).
 */
export function passAt1Mean(correct: readonly (readonly boolean[])[]): number {
  if (correct.length === 0) throw new AhaError('passAt1Mean: no problems');
  let sum = 0;
  correct.forEach((samples, i) => {
    if (samples.length === 0) throw new AhaError(`passAt1Mean: problem ${i} has no samples`);
    sum += samples.filter(Boolean).length / samples.length;
  });
  return sum / correct.length;
}
