import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupAdvantages, dynamicSamplingFilter, sampleStd } from '../../src/rl/advantages.ts';
import { AhaError } from '../../src/errors.ts';

const close = (a: number, b: number, tol = 1e-12, msg = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} != ${b} (tol ${tol})`);

// Three groups of G = 4:
//   g0 = [1, 0, 0, 1]: mean 0.5, deviations +-0.5, sum of squares 4 * 0.25 = 1, unbiased var 1/3,
//        std sqrt(1/3) = 0.57735026919, A = +-0.5 / (0.57735026919 + 1e-4) = +-0.86587542976
//   g1 = [2, 2, 2, 2]: mean 2, std 0 -> A = 0 / (0 + 1e-4) = 0, a zero-variance group
//   g2 = [0, 1, 2, 3]: mean 1.5, deviations -1.5 -0.5 0.5 1.5, sum of squares 2.25*2 + 0.25*2 = 5, var 5/3,
//        std 1.29099444874, A = -1.5/1.29109444874 = -1.16180501083, -0.5/1.29109444874 = -0.38726833694
const rewards = [1, 0, 0, 1, 2, 2, 2, 2, 0, 1, 2, 3];

test('sampleStd is the unbiased (n-1) std, like torch.std', () => {
  close(sampleStd([1, 0, 0, 1]), Math.sqrt(1 / 3));
  close(sampleStd([0, 1, 2, 3]), Math.sqrt(5 / 3));
  assert.equal(sampleStd([7]), 0);
});

test("scale_rewards 'group': (r - group mean) / (group std + 1e-4)", () => {
  const r = groupAdvantages(rewards, 4, { scaleRewards: 'group' });
  const a = 0.8658754297607016,
    b = 1.161805010833055,
    c = 0.3872683369443517;
  const want = [a, -a, -a, a, 0, 0, 0, 0, -b, -c, c, b];
  r.advantages.forEach((x, i) => close(x, want[i], 1e-12, `A[${i}]`));
  assert.deepEqual(r.groupMeans, [0.5, 2, 1.5]);
  close(r.groupStds[0], 0.5773502691896257);
  assert.equal(r.groupStds[1], 0);
  close(r.groupStds[2], 1.2909944487358056);
  assert.equal(r.zeroVarianceGroups, 1);
  close(r.fracZeroStd, 1 / 3);
});

test("scale_rewards 'batch': group mean, whole-batch std", () => {
  // All 12 rewards: mean 16/12 = 4/3. Squared deviations in ninths: 1,16,16,1, 4,4,4,4, 16,1,4,25 -> 96/9 = 32/3;
  // unbiased var (32/3)/11 = 32/33, std 0.98473192783. g0: +-0.5/(0.98473192783 + 1e-4) = +-0.50770084303;
  // g2: +-1.5/0.98483192783 = +-1.52310252908, +-0.5/... = +-0.50770084303. g1 still 0 (its own mean is 2).
  const r = groupAdvantages(rewards, 4, { scaleRewards: 'batch' });
  close(r.batchStd, Math.sqrt(32 / 33));
  const a = 0.5077008430254124,
    b = 1.5231025290762374;
  const want = [a, -a, -a, a, 0, 0, 0, 0, -b, -a, a, b];
  r.advantages.forEach((x, i) => close(x, want[i], 1e-12, `A[${i}]`));
  assert.equal(r.zeroVarianceGroups, 1);
});

test("scale_rewards 'none': r - group mean (Dr. GRPO)", () => {
  const r = groupAdvantages(rewards, 4, { scaleRewards: 'none' });
  assert.deepEqual(r.advantages, [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -1.5, -0.5, 0.5, 1.5]);
  assert.equal(r.zeroVarianceGroups, 1);
});

test('custom eps and the default mode', () => {
  // g = [0, 2]: mean 1, std sqrt(2) (unbiased), eps 0 -> A = -+1/sqrt(2)
  const r = groupAdvantages([0, 2], 2, { eps: 0 });
  close(r.advantages[0], -Math.SQRT1_2);
  close(r.advantages[1], Math.SQRT1_2);
});

test('dynamicSamplingFilter flags all-equal groups', () => {
  const r = dynamicSamplingFilter([1, 1, 1, 0, 1, 0, 0, 0, 0], 3);
  assert.deepEqual(r.allEqual, [true, false, true]);
  assert.deepEqual(r.keepGroups, [1]);
  assert.deepEqual(r.keepCompletions, [3, 4, 5]);
});

test('bad input raises AhaError', () => {
  assert.throws(() => groupAdvantages([1, 2, 3], 2), AhaError);
  assert.throws(() => groupAdvantages([1, NaN], 2), AhaError);
  assert.throws(() => groupAdvantages([1, 2], 0), AhaError);
  assert.throws(() => groupAdvantages([1, 2], 2, { scaleRewards: 'x' as 'group' }), AhaError);
});
