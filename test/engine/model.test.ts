import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import { tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS, randomParams, mulberry32 } from '../support/tinyConfigs.ts';
import { referenceForward, referenceGenerateGreedy } from '../support/referenceTransformer.ts';
import { centralDifferenceGrad, sampleTensorIndices, describeIndex } from '../support/finiteDifference.ts';

function makeModel(config: EngineConfig, seed = 1, scale = 0.3): Model {
  const m = new Model(config);
  m.params.set(randomParams(config, seed, scale));
  return m;
}

function randomSeqs(config: EngineConfig, lengths: number[], seed: number): number[][] {
  const r = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => Math.floor(r() * config.vocabSize)));
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(
      d <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (diff ${d})`,
    );
  }
}

test('parameter layout matches tensorLayout() name by name', () => {
  for (const [name, cfg] of Object.entries(TINY_CONFIGS)) {
    const m = new Model(cfg);
    const native = (m as unknown as { native: { layout(): unknown } }).native.layout();
    assert.deepEqual(native, tensorLayout(cfg), name);
  }
});

for (const [name, cfg] of Object.entries(TINY_CONFIGS)) {
  test(`${name}: forward log-probs and entropies equal the float64 reference`, async () => {
    const m = makeModel(cfg, 7);
    const seqs = randomSeqs(cfg, [9, 2, 14, 5], 3);
    const r = await m.forward(seqs, { entropy: true });
    seqs.forEach((s, i) => {
      const ref = referenceForward(cfg, m.params, s);
      assertClose(r.logprobs[i], ref.logprobs, 2e-5, `${name} logprobs seq ${i}`);
      assertClose(r.entropy![i], ref.entropy, 2e-5, `${name} entropy seq ${i}`);
    });
  });

  test(`${name}: gradients equal central finite differences of the float64 reference`, async () => {
    const m = makeModel(cfg, 11);
    const seqs = randomSeqs(cfg, [7, 3, 10], 5);
    const r = mulberry32(99);
    // Random weights on log-probs and entropies make the loss touch every output.
    const wl = seqs.map((s) => Array.from({ length: s.length - 1 }, () => r() * 2 - 1));
    const we = seqs.map((s) => Array.from({ length: s.length - 1 }, () => r() * 2 - 1));
    m.zeroGrad();
    await m.forward(seqs, { train: true, entropy: true });
    await m.backward(wl, we);
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
    const g = m.grads;
    idx.forEach((pi, k) => {
      const d = Math.abs(g[pi] - fd[k]);
      assert.ok(
        d <= 2e-3 * Math.max(1, Math.abs(fd[k])),
        `${name} ${describeIndex(layout, pi)}: engine ${g[pi]} vs fd ${fd[k]}`,
      );
    });
  });
}

test('a batch equals each sequence run alone', async () => {
  const cfg = TINY_CONFIGS.allFeatures;
  const m = makeModel(cfg, 3);
  const seqs = randomSeqs(cfg, [12, 4, 30, 2, 17], 8);
  const batched = await m.forward(seqs, { entropy: true });
  for (let i = 0; i < seqs.length; i++) {
    const alone = await m.forward([seqs[i]], { entropy: true });
    assertClose(batched.logprobs[i], alone.logprobs[0], 1e-6, `seq ${i}`);
    assertClose(batched.entropy![i], alone.entropy![0], 1e-6, `seq ${i} entropy`);
  }
});

test('sequences longer than one attention block (128) match the reference', async () => {
  const cfg = { ...TINY_CONFIGS.gqaTied, maxPositionEmbeddings: 512 };
  const m = makeModel(cfg, 4);
  const seqs = randomSeqs(cfg, [300, 129], 2);
  const r = await m.forward(seqs);
  seqs.forEach((s, i) => assertClose(r.logprobs[i], referenceForward(cfg, m.params, s).logprobs, 5e-5, `long ${i}`));
});

test('gradients accumulate over micro-batches to the full-batch gradient', async () => {
  const cfg = TINY_CONFIGS.qwen2Bias;
  const m = makeModel(cfg, 5);
  const seqs = randomSeqs(cfg, [6, 9, 4, 8], 1);
  const w = seqs.map((s) => Array.from({ length: s.length - 1 }, (_, t) => Math.sin(t + s.length)));
  m.zeroGrad();
  await m.forward(seqs, { train: true });
  await m.backward(w);
  const full = Float64Array.from(m.grads);
  m.zeroGrad();
  for (const part of [
    [0, 1],
    [2, 3],
  ]) {
    await m.forward(
      part.map((i) => seqs[i]),
      { train: true },
    );
    await m.backward(part.map((i) => w[i]));
  }
  assertClose(m.grads, full, 1e-5, 'accumulated grads');
});

test('AdamW step equals a hand-computed step (clipping, bias correction, decoupled decay on matrices only)', async () => {
  const cfg = TINY_CONFIGS.mhaUntied;
  const m = makeModel(cfg, 2);
  const p0 = Float64Array.from(m.params);
  const g = m.grads;
  const r = mulberry32(4);
  for (let i = 0; i < g.length; i++) g[i] = r() - 0.5;
  const g0 = Float64Array.from(g);
  const opts = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };
  const norm = Math.sqrt(g0.reduce((a, x) => a + x * x, 0));
  const res = await m.step(opts);
  assert.ok(Math.abs(res.gradNorm - norm) < 1e-4 * norm, `norm ${res.gradNorm} vs ${norm}`);
  assert.equal(res.skipped, false);
  assert.equal(res.step, 1);
  const clip = Math.min(1, 1.0 / (norm + 1e-6));
  const matrices = new Set<number>();
  for (const t of tensorLayout(cfg))
    if (t.shape.length >= 2) for (let i = t.offset; i < t.offset + t.size; i++) matrices.add(i);
  for (let i = 0; i < g0.length; i += 7) {
    const gc = g0[i] * clip;
    const mHat = ((1 - 0.9) * gc) / (1 - 0.9);
    const vHat = ((1 - 0.95) * gc * gc) / (1 - 0.95);
    const decayed = matrices.has(i) ? p0[i] * (1 - 0.01 * 0.1) : p0[i];
    const expected = decayed - (0.01 * mHat) / (Math.sqrt(vHat) + 1e-8);
    assert.ok(Math.abs(m.params[i] - expected) < 1e-6, `param ${i}: ${m.params[i]} vs ${expected}`);
  }
});

test('a non-finite gradient skips the step and leaves weights untouched', async () => {
  const m = makeModel(TINY_CONFIGS.gqaTied, 3);
  const before = Float32Array.from(m.params);
  m.grads.fill(0.1);
  m.grads[5] = NaN;
  const r = await m.step({ lr: 0.1 });
  assert.equal(r.skipped, true);
  assert.deepEqual(Array.from(m.params), Array.from(before));
});

test('sampled log-probs equal teacher-forced log-probs of the same sequences', async () => {
  const cfg = { ...TINY_CONFIGS.allFeatures, maxPositionEmbeddings: 256 };
  const m = makeModel(cfg, 9, 0.2);
  const prompts = randomSeqs(cfg, [3, 7, 1, 5], 6);
  const out = await m.generate(prompts, { maxNewTokens: 20, temperature: 1.0, topP: 0.9, topK: 20, seed: 42 });
  const full = prompts.map((p, i) => [...p, ...out[i].tokens]);
  const tf = await m.forward(full.filter((s) => s.length >= 2));
  prompts.forEach((p, i) => {
    const tail = tf.logprobs[i].subarray(p.length - 1);
    assertClose(out[i].logprobs, tail, 1e-4, `sample ${i}`);
    assert.equal(out[i].finishReason, 'length');
    assert.equal(out[i].tokens.length, 20);
  });
});

test('sampled log-probs equal teacher-forced ones as the live batch shrinks across the small-batch kernel threshold', async () => {
  // 24 rows decode through OpenBLAS; as stop tokens end rows, steps with 16 rows or fewer take the packing-free kernel.
  const cfg = { ...TINY_CONFIGS.allFeatures, maxPositionEmbeddings: 256 };
  const m = makeModel(cfg, 4, 0.2);
  const prompts = randomSeqs(
    cfg,
    Array.from({ length: 24 }, (_, i) => 1 + (i % 6)),
    8,
  );
  const out = await m.generate(prompts, {
    maxNewTokens: 24,
    temperature: 1.0,
    seed: 3,
    stopTokenIds: [0, 1, 2, 3, 4, 5],
  });
  const lengths = out.map((o) => o.tokens.length);
  assert.ok(Math.min(...lengths) < 12 && Math.max(...lengths) > 16, `rows should end at different steps: ${lengths}`);
  const tf = await m.forward(prompts.map((p, i) => [...p, ...out[i].tokens]));
  prompts.forEach((p, i) => assertClose(out[i].logprobs, tf.logprobs[i].subarray(p.length - 1), 1e-4, `sample ${i}`));
});

test('repeated prompts (a GRPO group) sample exactly as if each were alone', async () => {
  // Distinct prompts are prefilled once and their cache copied; every row must still match running it alone.
  const cfg = { ...TINY_CONFIGS.gqaTied, maxPositionEmbeddings: 128 };
  const m = makeModel(cfg, 6, 0.2);
  const [p, q] = randomSeqs(cfg, [7, 4], 9);
  const prompts = [p, p, q, p, q];
  const seeds = [11, 12, 13, 14, 15];
  const together = await m.generate(prompts, { maxNewTokens: 12, temperature: 1, seeds });
  for (let i = 0; i < prompts.length; i++) {
    const alone = await m.generate([prompts[i]], { maxNewTokens: 12, temperature: 1, seeds: [seeds[i]] });
    assert.deepEqual(together[i].tokens, alone[0].tokens, `row ${i}`);
    assertClose(together[i].logprobs, alone[0].logprobs, 1e-5, `row ${i} logprobs`);
  }
  assert.notDeepEqual(together[0].tokens, together[1].tokens, 'same prompt, different seeds');
});

test('same seed, same samples; different seed, different samples; batch composition does not matter', async () => {
  const cfg = TINY_CONFIGS.allFeatures;
  const m = makeModel(cfg, 9, 0.1);
  const prompts = randomSeqs(cfg, [4, 4, 6], 2);
  const a = await m.generate(prompts, { maxNewTokens: 15, seeds: [1, 2, 3] });
  const b = await m.generate(prompts, { maxNewTokens: 15, seeds: [1, 2, 3] });
  const c = await m.generate(prompts, { maxNewTokens: 15, seeds: [4, 5, 6] });
  const alone = await m.generate([prompts[1]], { maxNewTokens: 15, seeds: [2] });
  assert.deepEqual(
    a.map((x) => x.tokens),
    b.map((x) => x.tokens),
  );
  assert.notDeepEqual(
    a.map((x) => x.tokens),
    c.map((x) => x.tokens),
  );
  assert.deepEqual(alone[0].tokens, a[1].tokens);
});

test('greedy decoding equals the reference argmax; stop tokens end a sequence', async () => {
  const cfg = TINY_CONFIGS.qwen3QkNorm;
  const m = makeModel(cfg, 12);
  const prompts = randomSeqs(cfg, [3, 6], 4);
  const out = await m.generate(prompts, { maxNewTokens: 10, temperature: 0 });
  prompts.forEach((p, i) => assert.deepEqual(out[i].tokens, referenceGenerateGreedy(cfg, m.params, p, 10)));
  const stopAt = out[0].tokens[3];
  const stopped = await m.generate([prompts[0]], { maxNewTokens: 10, temperature: 0, stopTokenIds: [stopAt] });
  const firstStop = out[0].tokens.indexOf(stopAt);
  assert.deepEqual(stopped[0].tokens, out[0].tokens.slice(0, firstStop + 1));
  assert.equal(stopped[0].finishReason, 'stop');
});

test('bad input gives a clear error and the process survives', async () => {
  const cfg = TINY_CONFIGS.gqaTied;
  const m = makeModel(cfg);
  await assert.rejects(
    () => m.forward([[1, 2, cfg.vocabSize]]),
    (e: Error) => e instanceof AhaError && /out of range/.test(e.message),
  );
  await assert.rejects(async () => m.forward([[1, -1]]), /out of range/);
  const long = Array.from({ length: cfg.maxPositionEmbeddings + 1 }, () => 1);
  await assert.rejects(async () => m.forward([long]), /max_position_embeddings/);
  await assert.rejects(() => m.backward([[1, 2, 3]]), /needs a forward with train=true|does not match/);
  assert.throws(() => new Model({ ...cfg, numKvHeads: 3 }), /multiple/);
  assert.throws(() => new Model({ ...cfg, hiddenSize: 0 }), /hiddenSize/);
  await assert.rejects(async () => m.generate([[1]], { maxNewTokens: 0 }), /maxNewTokens/);
  // still usable afterwards
  const r = await m.forward([[1, 2, 3]]);
  assert.equal(r.logprobs[0].length, 2);
});
