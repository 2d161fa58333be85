import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainStepFlops } from '../../src/bench/engineBenchmark.ts';
import type { EngineConfig } from '../../src/engine/types.ts';

test('trainStepFlops counts 3x the forward products: linear layers, lm_head and causal attention blocks', () => {
  // hidden 4, q dim 4 (2 heads x 2), kv dim 2, intermediate 6, vocab 5, 1 layer; seq 3 (one attention block)
  const cfg = {
    hiddenSize: 4,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 2,
    intermediateSize: 6,
    numLayers: 1,
    vocabSize: 5,
  } as EngineConfig;
  const linearPerToken = 2 * (4 * 4 * 2 + 4 * 2 * 2 + 3 * 4 * 6) + 2 * 4 * 5; // q,o + k,v + gate,up,down, lm_head
  const attention = 2 * 2 * 3 * 3 * 2 * 2; // QK^T and PV: 3 queries x 3 keys x head_dim 2, 2 heads
  assert.equal(trainStepFlops(cfg, 2, 3), 3 * 2 * (3 * linearPerToken + attention));
});
