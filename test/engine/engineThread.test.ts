// Every heavy engine call runs on one engine thread (native/src/engineThread.h): calls issued together from several
// models queue there and each gets its own result, errors come back as rejections, and the thread count set through
// the addon is the one the engine's parallel regions use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model, engineInfo } from '../../src/engine/model.ts';
import { loadAddon } from '../../src/engine/native.ts';
import { TINY_CONFIGS, randomParams } from '../support/tinyConfigs.ts';

test('concurrent calls on two models queue on the engine thread and return what each returns alone', async () => {
  const a = new Model(TINY_CONFIGS.gqaTied);
  a.params.set(randomParams(TINY_CONFIGS.gqaTied, 1));
  const b = new Model(TINY_CONFIGS.allFeatures);
  b.params.set(randomParams(TINY_CONFIGS.allFeatures, 2));
  const seqs = [
    [1, 2, 3, 4, 5],
    [6, 7, 1],
  ];
  const aloneA = await a.forward(seqs);
  const aloneB = await b.forward(seqs);
  const sampleA = await a.generate([[1, 2]], { maxNewTokens: 6, temperature: 0 });
  const together = await Promise.all([
    a.forward(seqs),
    b.forward(seqs),
    a.generate([[1, 2]], { maxNewTokens: 6, temperature: 0 }),
    b.forward(seqs),
  ]);
  assert.deepEqual(together[0].logprobs, aloneA.logprobs);
  assert.deepEqual(together[1].logprobs, aloneB.logprobs);
  assert.deepEqual(together[2][0].tokens, sampleA[0].tokens);
  assert.deepEqual(together[3].logprobs, aloneB.logprobs);
  // A failing call (no reference model) rejects without stopping the calls queued beside it.
  const [bad, good] = await Promise.allSettled([a.forward(seqs, { reference: true }), b.forward(seqs)]);
  assert.equal(bad.status, 'rejected');
  assert.match(String((bad as PromiseRejectedResult).reason), /no reference model/);
  assert.equal(good.status, 'fulfilled');
});

test("the thread count set through the addon is the engine thread's", () => {
  const before = engineInfo().ompThreads;
  try {
    loadAddon().setThreads(1);
    assert.equal(engineInfo().ompThreads, 1);
  } finally {
    loadAddon().setThreads(before);
  }
  assert.equal(engineInfo().ompThreads, before);
});
