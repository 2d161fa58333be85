/** Data order, micro-batch splits and packing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epochOrder, optimizerBatch, packSequences, splitMicroBatches, stepsPerEpoch } from '../../src/sft/batching.ts';
import type { SftExample } from '../../src/sft/dataset.ts';

test('epoch order: a permutation that depends only on seed + epoch', () => {
  const a = epochOrder(50, 7, 3);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.deepEqual(epochOrder(50, 7, 3), a, 'same seed and epoch, same order');
  assert.notDeepEqual(epochOrder(50, 7, 4), a, 'another epoch, another order');
  assert.notDeepEqual(epochOrder(50, 8, 3), a, 'another seed, another order');
  // seed + epoch is what counts: (7, 3) and (8, 2) draw the same shuffle.
  assert.deepEqual(epochOrder(50, 8, 2), a);
});

test('optimizer batches: consecutive slices of the epoch order, last one partial', () => {
  assert.equal(stepsPerEpoch(10, 4), 3);
  const order = epochOrder(10, 1, 0);
  assert.deepEqual(optimizerBatch(10, 4, 1, 0).indices, order.slice(0, 4));
  assert.deepEqual(optimizerBatch(10, 4, 1, 2).indices, order.slice(8, 10));
  const next = optimizerBatch(10, 4, 1, 3);
  assert.equal(next.epoch, 1);
  assert.equal(next.batch, 0);
  assert.deepEqual(next.indices, epochOrder(10, 1, 1).slice(0, 4));
  // Every epoch visits every sequence once.
  const seen = [0, 1, 2].flatMap((s) => optimizerBatch(10, 4, 1, s).indices).sort((x, y) => x - y);
  assert.deepEqual(
    seen,
    Array.from({ length: 10 }, (_, i) => i),
  );
});

test('micro-batches: longest first, under both the sequence and the token limits', () => {
  const lengths = [5, 30, 10, 25, 10, 40];
  assert.deepEqual(splitMicroBatches(lengths, { maxSequences: 2 }), [
    [5, 1],
    [3, 2],
    [4, 0],
  ]);
  // 40 alone would fit 50 but 40 + 30 does not; 30 + 10 (index 2, ties by position) fits; and so on.
  assert.deepEqual(splitMicroBatches(lengths, { maxSequences: 8, maxTokens: 50 }), [[5], [1], [3, 2, 4, 0]]);
  // A sequence over the budget goes alone.
  assert.deepEqual(splitMicroBatches([100, 3], { maxSequences: 8, maxTokens: 50 }), [[0], [1]]);
  assert.deepEqual(splitMicroBatches([], { maxSequences: 2 }), []);
});

test('packing: sequences concatenated into fixed rows, masks travel with their tokens', () => {
  const ex = (ids: number[], mask: number[], line: number): SftExample => ({ ids, mask: Uint8Array.from(mask), line });
  const rows = packSequences(
    [ex([1, 2, 9], [0, 1, 1], 1), ex([3, 4, 5, 9], [0, 0, 1, 1], 2), ex([6, 9], [1, 1], 3)],
    4,
  );
  assert.deepEqual(
    rows.map((r) => r.ids),
    [
      [1, 2, 9, 3],
      [4, 5, 9, 6],
    ],
  );
  assert.deepEqual(
    rows.map((r) => [...r.mask]),
    [
      [0, 1, 1, 0],
      [0, 1, 1, 1],
    ],
  );
  assert.deepEqual(
    rows.map((r) => r.line),
    [1, 2],
  );
  // The 1-token tail [9] cannot be scored and is dropped; so is a row with no targets.
  assert.equal(packSequences([ex([1, 2, 3, 4], [0, 0, 0, 0], 1)], 4).length, 0);
});
