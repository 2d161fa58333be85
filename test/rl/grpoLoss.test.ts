import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  grpoLoss,
  batchCounts,
  grpoNormalizer,
  type GrpoLossInput,
  type GrpoLossOptions,
  type LossType,
} from '../../src/rl/grpoLoss.ts';
import { AhaError } from '../../src/errors.ts';

const close = (a: number, b: number, tol: number, msg = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${msg}: ${a} != ${b} (tol ${tol})`);

// ---------------------------------------------------------------------------------------------------------------
// Hand-computed batch: 2 sequences of different lengths, epsilon = 0.2 (low bound 0.8), epsilon_high = 0.28
// (high bound 1.28), beta = 0.1, max_completion_length = 4. Each token is given by its ratio rho = exp(logp - old)
// and d = ref - logp, so that the hand arithmetic is exact: old = logp - ln(rho), ref = logp + d.
//
// seq 0, A = +1, 3 active tokens:
//   t0 rho 1.5 > 1.28, A > 0: HIGH-clipped. -min(1.5, 1.28) = -1.28, d(pg)/dlogp = 0.
//      d = ln 2: KL = 2 - ln2 - 1 = 1 - ln2 = 0.30685281944, dKL/dlogp = 1 - e^d = 1 - 2 = -1.
//   t1 rho 1.0: pg = -1, grad -rho*A = -1; d = 0: KL 0, grad 0.
//   t2 rho 0.5 < 0.8 but A > 0: min(0.5, 0.8) = 0.5 is the unclipped branch: pg = -0.5, grad -0.5.
//      d = -ln 2: KL = 0.5 + ln2 - 1 = ln2 - 0.5 = 0.19314718056, dKL/dlogp = 1 - 0.5 = 0.5.
//   per-token l = pg + 0.1*KL: -1.28 + 0.030685.., -1, -0.5 + 0.019314..; sum = -2.78 + 0.1*(1 - ln2 + ln2 - 0.5)
//      = -2.78 + 0.05 = -2.73
//   per-token dl/dlogp: 0 + 0.1*(-1) = -0.1;  -1;  -0.5 + 0.1*0.5 = -0.45
// seq 1, A = -0.5, 2 active tokens + 1 masked:
//   t0 rho 0.5 < 0.8, A < 0: LOW-clipped. rho*A = -0.25, 0.8*A = -0.4, min = -0.4 (clipped): pg = 0.4, grad 0.
//      d = -ln 2: KL = ln2 - 0.5, dKL = 0.5.
//   t1 rho 2.0 > 1.28 but A < 0: rho*A = -1.0, 1.28*A = -0.64, min = -1.0 unclipped: pg = 1.0, grad -rho*A = 1.0.
//      d = ln 2: KL = 1 - ln2, dKL = -1.
//   t2 masked (rho 3, d 1): contributes nothing, gradient 0.
//   sum l = 0.4 + 1.0 + 0.1*(ln2 - 0.5 + 1 - ln2) = 1.4 + 0.05 = 1.45
//   dl/dlogp: 0 + 0.1*0.5 = 0.05;  1.0 + 0.1*(-1) = 0.9;  0
// Active tokens 5, sequences 2. Stats: low 1/5, high 1/5, total 2/5; KL sum = 0.5 + 0.5 = 1 -> mean 0.2;
// ratio sum (masked excluded) = 1.5 + 1 + 0.5 + 0.5 + 2 = 5.5 -> mean 1.1.
// ---------------------------------------------------------------------------------------------------------------
const LN2 = Math.LN2;
const rhos = [
  [1.5, 1.0, 0.5],
  [0.5, 2.0, 3.0],
];
const ds = [
  [LN2, 0, -LN2],
  [-LN2, LN2, 1],
];
const logp = [
  [-0.3, -1.2, -2.0],
  [-0.7, -0.1, -4.0],
];
const old = logp.map((row, i) => row.map((lp, t) => lp - Math.log(rhos[i][t])));
const ref = logp.map((row, i) => row.map((lp, t) => lp + ds[i][t]));
const mask = [
  [1, 1, 1],
  [1, 1, 0],
];
const advantages = [1, -0.5];
const base = { epsilon: 0.2, epsilonHigh: 0.28, beta: 0.1, maxCompletionLength: 4 };
const tokenGrads = [
  [-0.1, -1, -0.45],
  [0.05, 0.9, 0],
];

const hand: Record<LossType, { loss: number; scale: (i: number) => number }> = {
  // mean of per-sequence means: (-2.73/3 + 1.45/2) / 2 = (-0.91 + 0.725) / 2 = -0.0925; token weight 1/(len_i * 2)
  grpo: { loss: -0.0925, scale: (i) => 1 / ([3, 2][i] * 2) },
  // token sum / token count: (-2.73 + 1.45) / 5 = -1.28 / 5 = -0.256; weight 1/5
  dapo: { loss: -0.256, scale: () => 1 / 5 },
  // on a single batch bnpo = dapo: -0.256
  bnpo: { loss: -0.256, scale: () => 1 / 5 },
  // token sum / (2 sequences * 4): -1.28 / 8 = -0.16; weight 1/8
  dr_grpo: { loss: -0.16, scale: () => 1 / 8 },
};

const input = (lp: number[][] = logp): GrpoLossInput => ({ logp: lp, oldLogp: old, refLogp: ref, advantages, mask });

function finiteDiff(opts: GrpoLossOptions, i: number, t: number, h = 1e-6): number {
  const plus = logp.map((r) => r.slice());
  const minus = logp.map((r) => r.slice());
  plus[i][t] += h;
  minus[i][t] -= h;
  return (grpoLoss(input(plus), opts).loss - grpoLoss(input(minus), opts).loss) / (2 * h);
}

for (const lossType of ['grpo', 'dapo', 'bnpo', 'dr_grpo'] as LossType[]) {
  test(`${lossType}: loss and dLogp match hand values and float64 central differences`, () => {
    const opts: GrpoLossOptions = { ...base, lossType };
    const r = grpoLoss(input(), opts);
    close(r.loss, hand[lossType].loss, 1e-12, 'loss');
    for (let i = 0; i < 2; i++) {
      for (let t = 0; t < 3; t++) {
        const want = tokenGrads[i][t] * hand[lossType].scale(i);
        close(r.dLogp[i][t], want, 1e-7, `hand dLogp[${i}][${t}]`); // float32 output
        close(r.dLogp[i][t], finiteDiff(opts, i, t), 1e-7, `finite-difference dLogp[${i}][${t}]`);
      }
    }
    assert.equal(r.dLogp[1][2], 0);
    // The clipped tokens have no policy-gradient part: what is left is beta * dKL only.
    close(r.dLogp[0][0], -0.1 * hand[lossType].scale(0), 1e-8, 'high-clipped token keeps only the KL gradient');
    close(r.dLogp[1][0], 0.05 * hand[lossType].scale(1), 1e-8, 'low-clipped token keeps only the KL gradient');
    close(r.stats.clipFraction.low, 0.2, 1e-15, 'low clip');
    close(r.stats.clipFraction.high, 0.2, 1e-15, 'high clip');
    close(r.stats.clipFraction.total, 0.4, 1e-15, 'total clip');
    close(r.stats.meanKl!, 0.2, 1e-12, 'meanKl');
    close(r.stats.meanRatio, 1.1, 1e-12, 'meanRatio');
    assert.equal(r.stats.numTokens, 5);
  });
}

test('beta = 0: no KL term, no refLogp needed, clipped tokens get exactly zero gradient', () => {
  // dapo, token sum of pg only: -1.28 - 1 - 0.5 + 0.4 + 1.0 = -1.38 -> / 5 = -0.276
  const r = grpoLoss({ logp, oldLogp: old, advantages, mask }, { ...base, beta: 0, lossType: 'dapo' });
  close(r.loss, -0.276, 1e-12, 'loss');
  assert.equal(r.dLogp[0][0], 0);
  assert.equal(r.dLogp[1][0], 0);
  close(r.dLogp[0][1], -1 / 5, 1e-8, 'unclipped');
  close(r.dLogp[1][1], 1 / 5, 1e-8, 'unclipped, A < 0');
  assert.equal(r.stats.meanKl, null);
});

test('num_iterations = 1 (no oldLogp): rho = 1, gradient -A per token weight', () => {
  // grpo, beta 0: each token l = -A; seq means -1 and +0.5 -> loss (-1 + 0.5)/2 = -0.25.
  // gradient: seq 0: -1/(3*2) = -1/6, seq 1: 0.5/(2*2) = 0.125, masked 0.
  const r = grpoLoss({ logp, advantages, mask }, { ...base, beta: 0, lossType: 'grpo' });
  close(r.loss, -0.25, 1e-15, 'loss');
  for (const g of r.dLogp[0]) close(g, -1 / 6, 1e-8, 'seq 0');
  close(r.dLogp[1][0], 0.125, 1e-8, 'seq 1');
  close(r.dLogp[1][1], 0.125, 1e-8, 'seq 1');
  assert.equal(r.dLogp[1][2], 0);
  assert.equal(r.stats.clipFraction.total, 0);
  assert.equal(r.stats.meanRatio, 1);
});

// Deterministic PRNG for the accumulation test.
function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBatch(seed: number, n: number, maxLen: number) {
  const rnd = mulberry32(seed);
  const lp: number[][] = [],
    ol: number[][] = [],
    rf: number[][] = [],
    mk: number[][] = [],
    adv: number[] = [];
  for (let i = 0; i < n; i++) {
    const T = 1 + Math.floor(rnd() * maxLen);
    const active = 1 + Math.floor(rnd() * T);
    for (const xs of [lp, ol, rf, mk]) xs.push([]);
    for (let t = 0; t < T; t++) {
      const l = -3 * rnd();
      lp[i].push(l);
      ol[i].push(l + 2 * (rnd() - 0.5)); // ratios in [1/e, e]: both clips active somewhere
      rf[i].push(l + (rnd() - 0.5));
      mk[i].push(t < active ? 1 : 0);
    }
    adv.push(2 * rnd() - 1);
  }
  return { logp: lp, oldLogp: ol, refLogp: rf, mask: mk, advantages: adv };
}

function slice(b: ReturnType<typeof randomBatch>, s: number, e: number): GrpoLossInput {
  return {
    logp: b.logp.slice(s, e),
    oldLogp: b.oldLogp.slice(s, e),
    refLogp: b.refLogp.slice(s, e),
    mask: b.mask.slice(s, e),
    advantages: b.advantages.slice(s, e),
  };
}

for (const lossType of ['dapo', 'grpo', 'dr_grpo'] as LossType[]) {
  test(`${lossType}: micro-batches with the full-batch normalizer sum to the full-batch loss and gradient`, () => {
    const b = randomBatch(42, 12, 12);
    const opts: GrpoLossOptions = { ...base, lossType, maxCompletionLength: 12 };
    const full = grpoLoss(b, opts);
    assert.ok(full.stats.clipFraction.low > 0 && full.stats.clipFraction.high > 0, 'both clips active');
    const numTokens = b.mask.flat().reduce((a, x) => a + x, 0);
    const normalizer = grpoNormalizer(lossType, { numSequences: 12, numTokens, maxCompletionLength: 12 });
    let loss = 0;
    const grads: Float32Array[] = [];
    let tokens = 0,
      low = 0;
    for (const [s, e] of [
      [0, 5],
      [5, 6],
      [6, 12],
    ]) {
      const mb = grpoLoss(slice(b, s, e), { ...opts, normalizer });
      loss += mb.loss;
      grads.push(...mb.dLogp);
      tokens += mb.stats.numTokens;
      low += mb.stats.lowClipped;
    }
    close(loss, full.loss, 1e-12, 'accumulated loss');
    for (let i = 0; i < 12; i++) {
      for (let t = 0; t < grads[i].length; t++) assert.equal(grads[i][t], full.dLogp[i][t], `grad[${i}][${t}]`);
    }
    assert.equal(tokens, full.stats.numTokens);
    assert.equal(low, full.stats.lowClipped);
  });
}

test('bnpo normalises by the local batch (TRL), so unequal micro-batches differ from the full-batch mean', () => {
  const b = randomBatch(7, 4, 10);
  const opts: GrpoLossOptions = { ...base, lossType: 'bnpo' };
  const full = grpoLoss(b, opts);
  const dapo = grpoLoss(b, { ...opts, lossType: 'dapo' });
  close(full.loss, dapo.loss, 1e-15, 'bnpo = dapo on one batch');
  const a = grpoLoss(slice(b, 0, 2), opts),
    c = grpoLoss(slice(b, 2, 4), opts);
  // TRL: each micro-batch's token mean divided by the accumulation steps (2): a mean of means, which is not the
  // full-batch token mean when the micro-batches hold different token counts.
  const trl = (a.loss + c.loss) / 2;
  assert.notEqual(a.stats.numTokens, c.stats.numTokens);
  assert.ok(Math.abs(trl - full.loss) > 1e-6, `mean of means ${trl} vs token mean ${full.loss}`);
  const tokA = a.stats.numTokens;
  // normalizer = local tokens * accumulation steps reproduces TRL's per-micro-batch loss.
  const a2 = grpoLoss(slice(b, 0, 2), { ...opts, normalizer: tokA * 2 });
  close(a2.loss, a.loss / 2, 1e-15, 'explicit bnpo normalizer');
});

test('a fully masked sequence counts in the grpo sequence mean but contributes 0', () => {
  // seq 0 (A = 1, beta 0, no old): l = -1 per token, mean -1; seq 1 fully masked: mean 0 (TRL clamps len to 1).
  const r = grpoLoss(
    { logp: [[-1, -1], [-1]], advantages: [1, -1], mask: [[1, 1], [0]] },
    { lossType: 'grpo', epsilon: 0.2, beta: 0 },
  );
  close(r.loss, -0.5, 1e-15, 'loss');
  assert.equal(r.dLogp[1][0], 0);
});

test('bad input raises AhaError', () => {
  const ok = { lossType: 'dapo' as const, epsilon: 0.2, beta: 0 };
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1, 2] }, ok), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0, 0]], oldLogp: [[0]], advantages: [1] }, ok), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1] }, { ...ok, beta: 0.1 }), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1], mask: [[0.5]] }, ok), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1] }, { ...ok, lossType: 'dr_grpo' }), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1] }, { ...ok, normalizer: 0 }), AhaError);
  assert.throws(() => grpoLoss({ logp: [[0]], advantages: [1] }, { ...ok, lossType: 'ppo' as LossType }), AhaError);
});

test('batchCounts: dapo counts completion tokens before truncation masking, the other types the masked tokens', () => {
  // Two completions: 3 tokens kept, and 4 tokens masked out whole (truncated under mask_truncated_completions).
  const seqs = [
    { completionLength: 3, mask: [0, 0, 1, 1, 1] },
    { completionLength: 4, mask: [0, 0, 0, 0, 0, 0] },
  ];
  assert.deepEqual(batchCounts('dapo', seqs, 16), { numSequences: 2, numTokens: 7, maxCompletionLength: 16 });
  for (const t of ['grpo', 'bnpo', 'dr_grpo'] as const) assert.equal(batchCounts(t, seqs, 16).numTokens, 3);
  assert.equal(grpoNormalizer('dapo', batchCounts('dapo', seqs)), 7);
  assert.equal(grpoNormalizer('bnpo', batchCounts('bnpo', seqs)), 3);
  assert.equal(grpoNormalizer('dr_grpo', batchCounts('dr_grpo', seqs, 16)), 32);
  assert.equal(grpoNormalizer('grpo', batchCounts('grpo', seqs)), 2);
});
