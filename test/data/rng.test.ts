import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, fnv1a32, mulberry32 } from '../../src/data/rng.ts';
import { AhaError } from '../../src/errors.ts';

const M = 0xffffffffn;
/** Independent mulberry32 in BigInt arithmetic mod 2^32 (no Math.imul, no int32 coercions). */
function referenceMulberry32(seed: number): () => number {
  let a = BigInt(seed >>> 0);
  const mul = (x: bigint, y: bigint) => (x * y) & M;
  return () => {
    a = (a + 0x6d2b79f5n) & M;
    let t = a;
    t = mul(t ^ (t >> 15n), t | 1n);
    t = t ^ ((t + mul(t ^ (t >> 7n), t | 61n)) & M);
    return Number(t ^ (t >> 14n)) / 4294967296;
  };
}

test('mulberry32 matches a BigInt reference implementation', () => {
  for (const seed of [0, 1, 42, 123456789, 0xffffffff, -1]) {
    const got = mulberry32(seed);
    const want = referenceMulberry32(seed);
    for (let i = 0; i < 2000; i++) assert.equal(got(), want(), `seed ${seed}, draw ${i}`);
  }
});

test('fnv1a32 matches the published FNV-1a test vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('Rng is deterministic for a seed and differs across seeds', () => {
  const a = new Rng(7), b = new Rng(7), c = new Rng(8);
  const sa = Array.from({ length: 50 }, () => a.next());
  const sb = Array.from({ length: 50 }, () => b.next());
  const sc = Array.from({ length: 50 }, () => c.next());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  assert.ok(sa.every((x) => x >= 0 && x < 1));
});

test('Rng.int covers [lo, hi] uniformly', () => {
  const r = new Rng(3);
  const counts = new Array(10).fill(0);
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const v = r.int(5, 14);
    assert.ok(Number.isInteger(v) && v >= 5 && v <= 14);
    counts[v - 5]++;
  }
  // Expected 10,000 each; sd = sqrt(n p (1-p)) = 95; allow 5 sd.
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 475, `count ${c}`);
  assert.equal(r.int(4, 4), 4);
});

test('Rng.weighted draws in proportion to the weights and never picks a zero weight', () => {
  const r = new Rng(11);
  const counts = [0, 0, 0, 0];
  const n = 60_000;
  for (let i = 0; i < n; i++) counts[r.weighted([1, 0, 2, 3])]++;
  assert.equal(counts[1], 0);
  assert.ok(Math.abs(counts[0] / n - 1 / 6) < 0.01);
  assert.ok(Math.abs(counts[2] / n - 2 / 6) < 0.01);
  assert.ok(Math.abs(counts[3] / n - 3 / 6) < 0.01);
});

test('Rng.shuffle returns a permutation; chance and pick behave', () => {
  const r = new Rng(5);
  const xs = Array.from({ length: 100 }, (_, i) => i);
  const s = r.shuffle([...xs]);
  assert.notDeepEqual(s, xs);
  assert.deepEqual([...s].sort((a, b) => a - b), xs);
  let hits = 0;
  for (let i = 0; i < 20_000; i++) if (r.chance(0.25)) hits++;
  assert.ok(Math.abs(hits / 20_000 - 0.25) < 0.015);
  assert.equal(r.chance(0), false);
  assert.equal(r.pick(['only']), 'only');
});

test('Rng.fork gives reproducible, distinct child streams', () => {
  const a = new Rng(9).fork('x'), b = new Rng(9).fork('x'), c = new Rng(9).fork('y');
  const sa = [a.next(), a.next()], sb = [b.next(), b.next()], sc = [c.next(), c.next()];
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
});

test('Rng rejects bad input with AhaError', () => {
  assert.throws(() => new Rng(1.5), AhaError);
  assert.throws(() => new Rng(Number.NaN), AhaError);
  const r = new Rng(1);
  assert.throws(() => r.int(3, 2), AhaError);
  assert.throws(() => r.pick([]), AhaError);
  assert.throws(() => r.weighted([0, 0]), AhaError);
  assert.throws(() => r.weighted([1, -1]), AhaError);
});
