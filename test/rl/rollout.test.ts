import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import {
  buildTrainSequence,
  completionSeed,
  packMicroBatches,
  sampleCompletions,
  splitGroups,
} from '../../src/rl/rollout.ts';
import { grpoLoss } from '../../src/rl/grpoLoss.ts';
import { AhaError } from '../../src/errors.ts';
import { gqaTied, randomParams } from '../support/tinyConfigs.ts';

function model(): Model {
  const m = new Model(gqaTied);
  m.params.set(randomParams(gqaTied, 5));
  return m;
}

test('training sequence: the mask covers exactly the completion positions, stop token included', () => {
  // Prompt [1,2,3] (P=3), completion [4,5,0] ending with the stop token 0. Log-prob index t predicts token t+1,
  // so completion token j sits at index P-1+j: indices 2,3,4 of 5.
  const s = buildTrainSequence({
    promptIds: [1, 2, 3],
    completionIds: [4, 5, 0],
    samplingLogprobs: [-0.5, -1.5, -2.5],
  });
  assert.deepEqual(Array.from(s.tokens), [1, 2, 3, 4, 5, 0]);
  assert.deepEqual(Array.from(s.mask), [0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(s.oldLogp), [0, 0, -0.5, -1.5, -2.5]);
  assert.equal(s.promptLength, 3);
  assert.equal(s.completionLength, 3);
  // A one-token prompt: the first completion token is predicted at index 0.
  assert.deepEqual(
    Array.from(buildTrainSequence({ promptIds: [7], completionIds: [8], samplingLogprobs: [-1] }).mask),
    [1],
  );
  // Masked out (truncated completion under mask_truncated_completions): nothing counts, the log-probs stay.
  const out = buildTrainSequence({ promptIds: [1, 2], completionIds: [3, 4], samplingLogprobs: [-1, -2] }, true);
  assert.deepEqual(Array.from(out.mask), [0, 0, 0]);
  assert.deepEqual(Array.from(out.oldLogp), [0, -1, -2]);
  assert.throws(() => buildTrainSequence({ promptIds: [1], completionIds: [2, 3], samplingLogprobs: [-1] }), AhaError);
});

test('prompt tokens get zero gradient: the GRPO gradient restricted to prompt positions is exactly 0', async () => {
  const m = model();
  const seqs = [
    buildTrainSequence({ promptIds: [1, 2, 3, 4], completionIds: [5, 6, 0], samplingLogprobs: [-1, -1, -1] }),
    buildTrainSequence({ promptIds: [7, 8], completionIds: [9, 10, 11, 12], samplingLogprobs: [-1, -1, -1, -1] }),
  ];
  const tokens = seqs.map((s) => s.tokens);
  const backwardOf = async (dl: Float32Array[]) => {
    m.zeroGrad();
    await m.forward(tokens, { train: true });
    await m.backward(dl);
    return Float32Array.from(m.grads);
  };
  const f = await m.forward(tokens);
  const loss = grpoLoss(
    { logp: f.logprobs, oldLogp: f.logprobs, advantages: [1.3, -0.7], mask: seqs.map((s) => s.mask) },
    { lossType: 'dapo', epsilon: 0.2, beta: 0 },
  );
  // dLogp vanishes on every prompt position and is non-zero on every completion position.
  seqs.forEach((s, i) => {
    for (let t = 0; t < s.mask.length; t++) {
      if (t < s.promptLength - 1) assert.equal(loss.dLogp[i][t], 0, `seq ${i} prompt position ${t}`);
      else assert.notEqual(loss.dLogp[i][t], 0, `seq ${i} completion position ${t}`);
    }
  });
  const promptOnly = loss.dLogp.map((d, i) => d.map((x, t) => (seqs[i].mask[t] === 0 ? x : 0)));
  const completionOnly = loss.dLogp.map((d, i) => d.map((x, t) => (seqs[i].mask[t] === 1 ? x : 0)));
  const gPrompt = await backwardOf(promptOnly);
  assert.ok(
    gPrompt.every((x) => x === 0),
    'gradient from prompt positions must be exactly zero',
  );
  const gFull = await backwardOf(loss.dLogp);
  const gCompletion = await backwardOf(completionOnly);
  assert.deepEqual(gFull, gCompletion);
  assert.ok(gFull.some((x) => x !== 0));
  // Control: the same loss without the mask would put gradient on the prompt positions, so the check above can fail.
  const unmasked = grpoLoss(
    { logp: f.logprobs, oldLogp: f.logprobs, advantages: [1.3, -0.7] },
    { lossType: 'dapo', epsilon: 0.2, beta: 0 },
  );
  const gUnmaskedPrompt = await backwardOf(
    unmasked.dLogp.map((d, i) => d.map((x, t) => (seqs[i].mask[t] === 0 ? x : 0))),
  );
  assert.ok(gUnmaskedPrompt.some((x) => x !== 0));
});

test('sampling G completions per prompt: prompt-major layout, seeds make it reproducible, logprobs match forward', async () => {
  const m = model();
  const prompts = [
    [1, 2, 3],
    [4, 5],
  ];
  const seeds = [0, 1].flatMap((g) => [0, 1, 2].map((j) => completionSeed(9, 1, 0, g, j)));
  const opts = { numGenerations: 3, maxNewTokens: 6, temperature: 1, stopTokenIds: [0], seeds, batchSize: 4 };
  const a = await sampleCompletions(m, prompts, opts);
  const b = await sampleCompletions(m, prompts, { ...opts, batchSize: 6 });
  assert.equal(a.length, 6);
  assert.deepEqual(
    a.map((c) => c.group),
    [0, 0, 0, 1, 1, 1],
  );
  assert.deepEqual(
    a.map((c) => c.promptIds),
    [prompts[0], prompts[0], prompts[0], prompts[1], prompts[1], prompts[1]],
  );
  assert.deepEqual(
    a.map((c) => c.completionIds),
    b.map((c) => c.completionIds),
    'batching must not change samples',
  );
  for (const c of a) {
    assert.ok(c.completionIds.length >= 1 && c.completionIds.length <= 6);
    if (c.finishReason === 'stop') assert.equal(c.completionIds[c.completionIds.length - 1], 0);
    else assert.equal(c.completionIds.length, 6);
    // pi_old from the sampler equals the policy's own log-probs of the same tokens (ratio 1 on-policy).
    const s = buildTrainSequence(c);
    const f = await m.forward([s.tokens]);
    for (let t = 0; t < s.mask.length; t++) if (s.mask[t]) assert.ok(Math.abs(f.logprobs[0][t] - s.oldLogp[t]) < 1e-4);
  }
  await assert.rejects(sampleCompletions(m, prompts, { ...opts, seeds: [1] }), AhaError);
});

test('completion seeds differ by step, batch, prompt and completion, and are 32-bit', () => {
  const s = new Set<number>();
  for (const [a, b, c, d, e] of [
    [0, 1, 0, 0, 0],
    [0, 2, 0, 0, 0],
    [0, 1, 1, 0, 0],
    [0, 1, 0, 1, 0],
    [0, 1, 0, 0, 1],
    [1, 1, 0, 0, 0],
  ]) {
    const v = completionSeed(a, b, c, d, e);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
    s.add(v);
  }
  assert.equal(s.size, 6);
  assert.equal(completionSeed(3, 4, 0, 2, 1), completionSeed(3, 4, 0, 2, 1));
});

test('micro-batches respect the token budget; an over-long sequence goes alone', () => {
  assert.deepEqual(packMicroBatches([3, 3, 3, 3], 6), [
    [0, 1],
    [2, 3],
  ]);
  assert.deepEqual(packMicroBatches([3, 10, 2, 2, 2], 6), [[0], [1], [2, 3, 4]]);
  assert.deepEqual(packMicroBatches([5], 1), [[0]]);
  assert.deepEqual(packMicroBatches([], 4), []);
  assert.throws(() => packMicroBatches([1], 0), AhaError);
});

test('groups split into contiguous near-equal mini-batches', () => {
  assert.deepEqual(splitGroups(4, 1), [[0, 1, 2, 3]]);
  assert.deepEqual(splitGroups(5, 2), [
    [0, 1],
    [2, 3, 4],
  ]);
  assert.deepEqual(splitGroups(2, 4), [[0], [1]]);
});
