import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import { tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS, randomParams, mulberry32 } from '../support/tinyConfigs.ts';
import { referenceForward } from '../support/referenceTransformer.ts';
import { centralDifferenceGrad, sampleTensorIndices, describeIndex } from '../support/finiteDifference.ts';

function randomSeqs(config: EngineConfig, lengths: number[], seed: number): number[][] {
  const r = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => Math.floor(r() * config.vocabSize)));
}

interface Run {
  logprobs: Float32Array;
  entropy: Float32Array;
  grads: Float32Array;
}

/** One training pass (forward with entropies, backward of a weighted sum of both) under the model's settings. */
async function trainPass(m: Model, seqs: number[][], wl: number[][], we: number[][]): Promise<Run> {
  m.zeroGrad();
  const f = await m.forward(seqs, { train: true, entropy: true });
  await m.backward(wl, we);
  const cat = (xs: Float32Array[]) => Float32Array.from(xs.flatMap((x) => Array.from(x)));
  return { logprobs: cat(f.logprobs), entropy: cat(f.entropy!), grads: Float32Array.from(m.grads) };
}

function assertBitExact(actual: Float32Array, expected: Float32Array, what: string, from = 0, to = actual.length) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = from; i < to; i++)
    if (actual[i] !== expected[i]) assert.fail(`${what}[${i}]: ${actual[i]} !== ${expected[i]}`);
}

// Lengths 9, 2, 14, 5 make 30 packed tokens: head chunks of 7 rows leave a partial last chunk of 2. The first
// sequence's weights are zero, so the first chunk (rows 0..6, its positions only) has no gradient and is skipped.
const LENGTHS = [9, 2, 14, 5];

function weights(seqs: number[][], seed: number): { wl: number[][]; we: number[][] } {
  const r = mulberry32(seed);
  const w = () => seqs.map((s, i) => Array.from({ length: s.length - 1 }, () => (i === 0 ? 0 : r() * 2 - 1)));
  return { wl: w(), we: w() };
}

for (const [name, cfg] of Object.entries(TINY_CONFIGS)) {
  test(`${name}: gradient checkpointing and a chunked head give the same log-probs and gradients`, async () => {
    const m = new Model(cfg);
    m.params.set(randomParams(cfg, 21));
    const seqs = randomSeqs(cfg, LENGTHS, 4);
    const { wl, we } = weights(seqs, 5);

    // One model throughout, so that the arena also switches between modes.
    const plain = await trainPass(m, seqs, wl, we);
    m.setGradientCheckpointing(true);
    const ckpt = await trainPass(m, seqs, wl, we);
    m.setHeadChunkRows(7);
    const ckptChunked = await trainPass(m, seqs, wl, we);
    m.setGradientCheckpointing(false);
    const chunked = await trainPass(m, seqs, wl, we);
    m.setHeadChunkRows(0);
    const plainAgain = await trainPass(m, seqs, wl, we);

    // Checkpointing recomputes every activation with the same ops in the same order: bit-identical gradients.
    for (const [k, r] of Object.entries({ ckpt, plainAgain })) {
      assertBitExact(r.logprobs, plain.logprobs, `${name} ${k} logprobs`);
      assertBitExact(r.entropy, plain.entropy, `${name} ${k} entropy`);
      assertBitExact(r.grads, plain.grads, `${name} ${k} grads`);
    }
    assertBitExact(ckptChunked.grads, chunked.grads, `${name} checkpointed vs plain, chunked head, grads`);

    // A chunked head: each row's logits and log-softmax are its own, so log-probs, entropies and every gradient
    // but lm_head's are bit-identical. lm_head's sums its rows chunk by chunk instead of in one product: float
    // rounding only, within 1e-6 relative.
    const head = tensorLayout(cfg).find(
      (t) => t.name === (cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'),
    )!;
    for (const [k, r] of Object.entries({ chunked, ckptChunked })) {
      assertBitExact(r.logprobs, plain.logprobs, `${name} ${k} logprobs`);
      assertBitExact(r.entropy, plain.entropy, `${name} ${k} entropy`);
      assertBitExact(r.grads, plain.grads, `${name} ${k} grads before the head`, 0, head.offset);
      assertBitExact(r.grads, plain.grads, `${name} ${k} grads after the head`, head.offset + head.size);
      for (let i = head.offset; i < head.offset + head.size; i++) {
        const d = Math.abs(r.grads[i] - plain.grads[i]);
        assert.ok(
          d <= 1e-6 * (1 + Math.abs(plain.grads[i])),
          `${name} ${k} ${head.name}: ${r.grads[i]} vs ${plain.grads[i]}`,
        );
      }
    }
  });
}

test('checkpointed gradients with a chunked head equal central finite differences of the float64 reference', async () => {
  const cfg = TINY_CONFIGS.allFeatures;
  const m = new Model(cfg);
  m.params.set(randomParams(cfg, 11));
  m.setGradientCheckpointing(true);
  m.setHeadChunkRows(4);
  const seqs = randomSeqs(cfg, [7, 3, 10], 5);
  const { wl, we } = weights(seqs, 99);
  const { grads } = await trainPass(m, seqs, wl, we);
  const loss = (p: Float64Array) => {
    let L = 0;
    seqs.forEach((s, i) => {
      const o = referenceForward(cfg, p, s);
      for (let t = 0; t < o.logprobs.length; t++) L += wl[i][t] * o.logprobs[t] + we[i][t] * o.entropy[t];
    });
    return L;
  };
  const layout = tensorLayout(cfg);
  const idx = sampleTensorIndices(layout, 3, 17);
  const fd = centralDifferenceGrad(loss, Float64Array.from(m.params), idx, 1e-5);
  idx.forEach((pi, k) => {
    const d = Math.abs(grads[pi] - fd[k]);
    assert.ok(
      d <= 2e-3 * Math.max(1, Math.abs(fd[k])),
      `${describeIndex(layout, pi)}: engine ${grads[pi]} vs fd ${fd[k]}`,
    );
  });
});

test('an evaluation forward between checkpointed training passes leaves them exact; backward still needs its forward', async () => {
  const cfg = TINY_CONFIGS.qwen2Bias;
  const m = new Model(cfg);
  m.params.set(randomParams(cfg, 3));
  m.setGradientCheckpointing(true);
  const seqs = randomSeqs(cfg, LENGTHS, 6);
  const { wl, we } = weights(seqs, 7);
  const first = await trainPass(m, seqs, wl, we);
  // A longer evaluation batch regrows the arena (keeping the layer inputs' room); the next pass must not care.
  await m.forward(randomSeqs(cfg, [40, 17], 8), { entropy: true });
  const second = await trainPass(m, seqs, wl, we);
  assertBitExact(second.grads, first.grads, 'grads after an evaluation forward');
  await m.forward(seqs, { train: true });
  await m.forward(seqs);
  await assert.rejects(m.backward(wl), (e: Error) => e instanceof AhaError && /train=true/.test(e.message));
  assert.throws(() => m.setHeadChunkRows(-1), AhaError);
  assert.throws(() => m.setHeadChunkRows(1.5), AhaError);
});
