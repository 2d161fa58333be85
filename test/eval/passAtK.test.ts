import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import { passAt1Mean, passAtK } from '../../src/eval/passAtK.ts';

/** Exact 1 - C(n-c,k)/C(n,k) with BigInt binomials, as an independent reference. */
function reference(n: number, c: number, k: number): number {
  const binom = (a: number, b: number): bigint => {
    if (b < 0 || b > a) return 0n;
    let r = 1n;
    for (let i = 1; i <= b; i++) r = (r * BigInt(a - b + i)) / BigInt(i);
    return r;
  };
  const num = binom(n - c, k),
    den = binom(n, k);
  // Scale before dividing so the ratio keeps ~15 significant digits.
  const scale = 10n ** 18n;
  return 1 - Number((num * scale) / den) / 1e18;
}

describe('passAtK', () => {
  it('matches hand-worked closed forms', () => {
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(passAtK(5, 0, 1), 0);
    close(passAtK(5, 5, 3), 1);
    close(passAtK(10, 3, 1), 0.3); // pass@1 = c/n
    close(passAtK(4, 2, 2), 5 / 6); // 1 - C(2,2)/C(4,2) = 1 - 1/6
    close(passAtK(5, 2, 3), 0.9); // 1 - C(3,3)/C(5,3) = 1 - 1/10
    close(passAtK(10, 1, 5), 0.5); // one correct sample: k/n
    close(passAtK(16, 4, 8), 25 / 26); // 1 - C(12,8)/C(16,8) = 1 - 495/12870
    close(passAtK(3, 2, 2), 1); // fewer wrong samples than k
  });

  it('agrees with exact big-integer binomials where direct binomials overflow doubles', () => {
    for (const [n, c, k] of [
      [1000, 10, 100],
      [1024, 1, 512],
      [2000, 37, 64],
      [200, 150, 30],
      [64, 8, 16],
    ]) {
      const got = passAtK(n, c, k);
      assert.ok(Math.abs(got - reference(n, c, k)) < 1e-12, `${n},${c},${k}: ${got} vs ${reference(n, c, k)}`);
    }
  });

  it('is c/n at k=1 and non-decreasing in k', () => {
    for (let n = 1; n <= 12; n++) {
      for (let c = 0; c <= n; c++) {
        assert.ok(Math.abs(passAtK(n, c, 1) - c / n) < 1e-12);
        for (let k = 2; k <= n; k++) assert.ok(passAtK(n, c, k) >= passAtK(n, c, k - 1) - 1e-15);
      }
    }
  });

  it('rejects impossible arguments with AhaError', () => {
    for (const [n, c, k] of [
      [5, 6, 1],
      [5, 2, 0],
      [5, 2, 6],
      [-1, 0, 1],
      [5, 1.5, 1],
      [5, 2, Number.NaN],
    ]) {
      assert.throws(() => passAtK(n, c, k), AhaError, `${n},${c},${k}`);
    }
  });
});

describe('passAt1Mean', () => {
  it('averages per-problem accuracy, each problem weighing the same', () => {
    assert.equal(
      passAt1Mean([
        [true, false],
        [true, true, true, false],
      ]),
      (0.5 + 0.75) / 2,
    );
    assert.equal(passAt1Mean([[false], [false, false]]), 0);
    assert.equal(passAt1Mean([[true, true, true, true]]), 1);
  });

  it('rejects empty input with AhaError', () => {
    assert.throws(() => passAt1Mean([]), AhaError);
    assert.throws(() => passAt1Mean([[true], []]), AhaError);
  });
});
