// The engine's inner kernels against float64 references: the decode-step matrix product (every tile edge and K
// tail) and the vectorised exp behind softmax, SiLU, log-softmax and sampling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAddon } from '../../src/engine/native.ts';
import { mulberry32 } from '../../src/data/rng.ts';

const { kernels } = loadAddon();

function randomArray(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

type Gemm = (
  X: Float32Array,
  W: Float32Array,
  bias: Float32Array | null,
  M: number,
  K: number,
  N: number,
) => Float32Array;

/**
 * Checks C = X W^T (+ b) against float64 sums, to 1e-6 of the sum of |terms| (float32 rounding of K products).
 * exactW: weights that bf16 and f16 hold exactly (multiples of 1/64 in [-1, 1]), so 16-bit kernels can be checked
 * against the same reference.
 */
function checkGemm(gemm: Gemm, M: number, N: number, K: number, r: () => number, exactW = false) {
  const X = randomArray(M * K, r),
    W = exactW
      ? Float32Array.from({ length: N * K }, () => Math.round((r() * 2 - 1) * 64) / 64)
      : randomArray(N * K, r),
    bias = randomArray(N, r);
  for (const b of [null, bias]) {
    const C = gemm(X, W, b, M, K, N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = b ? b[n] : 0,
          mag = b ? Math.abs(b[n]) : 0;
        for (let k = 0; k < K; k++) {
          s += X[m * K + k] * W[n * K + k];
          mag += Math.abs(X[m * K + k] * W[n * K + k]);
        }
        assert.ok(
          Math.abs(C[m * N + n] - s) <= 1e-6 * (mag + 1),
          `M${M} N${N} K${K} bias=${!!b} C[${m},${n}] = ${C[m * N + n]}, expected ${s}`,
        );
      }
    }
  }
}

test('smallGemmNT equals a float64 X W^T + b for every tile shape and K tail', () => {
  const r = mulberry32(11);
  // M covers 1..4 row tiles and their remainders, N the 1..3 column remainders, K the vector tails (8 and 16 lanes).
  for (const M of [1, 2, 3, 4, 5, 7, 9, 16]) {
    for (const N of [1, 2, 3, 4, 5, 11]) {
      for (const K of [1, 7, 8, 9, 16, 17, 33, 64, 80, 130]) checkGemm(kernels.smallGemmNT, M, N, K, r);
    }
  }
});

test('linear16 (bf16 and f16 weights) equals a float64 X W^T + b for every tile shape and K tail', () => {
  const r = mulberry32(13);
  // M: one row (the row-at-a-time kernel), the direct kernel's 1..4 row tiles up to 16 rows, then the widened-block
  // path; N: the 1..4 column remainders and several dynamic chunks; K: the f16 kernel's 8- and 16-lane tails and the
  // bf16 kernel's 16- and 32-weight steps (pairs split into even and odd lanes) with their tails, and the row kernel's
  // 4-vector steps (64 and 130: two steps and a tail).
  for (const dtype of ['bf16', 'f16'] as const) {
    const gemm: Gemm = (X, W, b, M, K, N) => kernels.linear16(X, W, b, M, K, N, dtype);
    for (const M of [1, 2, 3, 4, 5, 7, 16, 17]) {
      for (const N of [1, 2, 3, 4, 5, 11, 300]) {
        for (const K of [1, 7, 8, 9, 16, 17, 31, 32, 33, 48, 64, 65, 97, 130]) checkGemm(gemm, M, N, K, r, true);
      }
    }
  }
});

test(
  'packedGemmNT (weights packed in panels) equals a float64 X W^T + b across row tiles, panels and K blocks',
  { skip: !kernels.packedAvailable && 'not compiled for this CPU' },
  () => {
    const r = mulberry32(12);
    // M: partial and several 6-row tiles; N: partial panels of 16 (AVX2) and 32 (AVX-512) columns; K: over one
    // 256-deep block, with a remainder.
    for (const [M, N, K] of [
      [1, 1, 1],
      [5, 17, 9],
      [6, 16, 8],
      [7, 33, 300],
      [13, 40, 513],
      [24, 64, 64],
      [64, 5, 257],
    ]) {
      checkGemm(kernels.packedGemmNT, M, N, K, r);
    }
  },
);

test('smallGemmNT rejects sizes that do not match M, K, N', () => {
  assert.throws(
    () => kernels.smallGemmNT(new Float32Array(6), new Float32Array(6), null, 2, 3, 3),
    /sizes do not match/,
  );
});

test('expShiftSum: exp(x - shift) within 2e-7 relative of float64 exp, sum and max exact to rounding', () => {
  const xs: number[] = [];
  for (let v = -87; v < 88; v += 0.00731) xs.push(v);
  // lengths that leave every vector tail, plus special values
  const x = Float32Array.from(xs.concat([0, -0, 1e-30, -1e-30]));
  const { y, max } = kernels.expShiftSum(x, 0);
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.exp(x[i]);
    if (e > 1.2e-38) worst = Math.max(worst, Math.abs(y[i] - e) / e);
  }
  assert.ok(worst < 2e-7, `worst relative error ${worst}`);
  assert.equal(max, Math.max(...x));
  // as softmax uses it: shifted by the max, a long row's sum (block-wise in float, then in double)
  const row = randomArray(151936, mulberry32(5), 20);
  const mx = kernels.expShiftSum(row, 0).max;
  const { sum } = kernels.expShiftSum(row, mx);
  let ref = 0;
  for (const v of row) ref += Math.exp(v - mx);
  assert.ok(Math.abs(sum - ref) / ref < 1e-6, `sum ${sum} vs ${ref}`);
  const shifted = kernels.expShiftSum(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), 9);
  const expect = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => Math.exp(v - 9));
  shifted.y.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) <= 2e-7 * expect[i], `shifted ${i}`));
});

test('expShiftSum: -inf gives 0, NaN stays NaN, large inputs saturate instead of overflowing to NaN', () => {
  for (const n of [1, 9, 17, 40]) {
    const x = new Float32Array(n).fill(-Infinity);
    x[n - 1] = NaN;
    if (n > 2) x[0] = 200;
    const { y } = kernels.expShiftSum(x, 0);
    for (let i = 1; i < n - 1; i++) assert.equal(y[i], 0, `exp(-inf) at ${i} of ${n}`);
    assert.ok(Number.isNaN(y[n - 1]), `NaN at the end of ${n}`);
    if (n > 2) assert.ok(Number.isFinite(y[0]) && y[0] > 1e38, `exp(200) saturates: ${y[0]}`);
  }
});

test('the probes report positive rates', async () => {
  const addon = loadAddon();
  const sgemm = await addon.probe('sgemm', 64, 64, 64, 1);
  assert.ok(sgemm > 0 && Number.isFinite(sgemm));
  assert.throws(() => addon.probe('sgemm', 0, 1, 1), /M, N, K >= 1/);
});
