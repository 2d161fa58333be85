/**
 * Stage 4's prompt order: a fixed number of general prompts in every step, each general prompt used once before any
 * is used twice, and the mix kept in any window of a step's length (a trainer that draws extra prompts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultGeneralPerStep, mixedPromptOrder } from '../../src/r1/promptMix.ts';

const reasoning = Array.from({ length: 10 }, (_, i) => `r${i}`);
const general = Array.from({ length: 5 }, (_, i) => `g${i}`);
const isGeneral = (x: string) => x.startsWith('g');

test('every step holds generalPerStep general prompts, and every general prompt is used before any repeats', () => {
  const order = mixedPromptOrder(reasoning, general, { promptsPerStep: 4, generalPerStep: 1, seed: 0, shuffle: true });
  // One epoch of each kind: max(5 general / 1, ceil(10 reasoning / 3)) = 5 steps of 4.
  assert.equal(order.length, 20);
  for (let s = 0; s < 5; s++) assert.equal(order.slice(4 * s, 4 * s + 4).filter(isGeneral).length, 1, `step ${s + 1}`);
  // Any 4 consecutive positions, also across the end where the order starts over.
  for (let i = 0; i < order.length; i++) {
    const w = Array.from({ length: 4 }, (_, j) => order[(i + j) % order.length]);
    assert.equal(w.filter(isGeneral).length, 1, `window at ${i}`);
  }
  const g = order.filter(isGeneral);
  assert.deepEqual([...g].sort(), general, 'the 5 general prompts, each once');
  const r = order.filter((x) => !isGeneral(x));
  // 15 reasoning slots: the 10 reasoning prompts once, then 5 of a second epoch.
  assert.deepEqual([...r.slice(0, 10)].sort(), [...reasoning].sort());
  assert.equal(new Set(r.slice(10)).size, 5);
  assert.notDeepEqual(g, general, 'shuffled (seeded)');
  assert.deepEqual(
    order,
    mixedPromptOrder(reasoning, general, { promptsPerStep: 4, generalPerStep: 1, seed: 0, shuffle: true }),
    'deterministic',
  );
});

test('general prompts are spread through the step; file order without shuffle; steps capped', () => {
  const order = mixedPromptOrder(reasoning, general, { promptsPerStep: 4, generalPerStep: 2, seed: 0, shuffle: false });
  // Slots 1 and 3 of each step are general (evenly spread), in file order; reasoning in file order.
  assert.deepEqual(order.slice(0, 8), ['r0', 'g0', 'r1', 'g1', 'r2', 'g2', 'r3', 'g3']);
  // max(ceil(5 / 2), ceil(10 / 2)) = 5 steps: general prompts go round twice (g4, then g0 of the next epoch).
  assert.equal(order.length, 20);
  assert.deepEqual(order.filter(isGeneral), ['g0', 'g1', 'g2', 'g3', 'g4', 'g0', 'g1', 'g2', 'g3', 'g4']);
  assert.equal(
    mixedPromptOrder(reasoning, general, { promptsPerStep: 4, generalPerStep: 2, seed: 0, shuffle: false, maxSteps: 2 })
      .length,
    8,
  );
  // Without reasoning prompts every slot is general; without general prompts the reasoning ones as they are.
  assert.deepEqual(
    mixedPromptOrder([], ['a', 'b', 'c'], { promptsPerStep: 2, generalPerStep: 1, seed: 0, shuffle: false }),
    ['a', 'b', 'c', 'a'],
  );
  assert.deepEqual(mixedPromptOrder(['x', 'y'], [], { promptsPerStep: 2, generalPerStep: 1, seed: 0, shuffle: true }), [
    'x',
    'y',
  ]);
});

test('the default share: general prompts in proportion, at least 1, at most the step', () => {
  assert.equal(defaultGeneralPerStep(5000, 20, 8), 1); // 0.03 rounds to 0: at least one
  assert.equal(defaultGeneralPerStep(60, 20, 8), 2); // 8 * 20 / 80
  assert.equal(defaultGeneralPerStep(10, 30, 8), 6); // 8 * 30 / 40
  assert.equal(defaultGeneralPerStep(0, 3, 8), 8);
  assert.equal(defaultGeneralPerStep(40, 0, 8), 0);
});
