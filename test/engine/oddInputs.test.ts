// Odd but reachable inputs at the engine's boundary. Each numbered case crashed the process (or returned garbage)
// before the engine validated what crosses into it; they also run under the sanitizers (npm run test:sanitize).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import { loadAddon } from '../../src/engine/native.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS, randomParams, mulberry32 } from '../support/tinyConfigs.ts';
import { referenceForward, referenceGenerateGreedy } from '../support/referenceTransformer.ts';

const cfg = TINY_CONFIGS.gqaTied;

function model(seed = 1): Model {
  const m = new Model(cfg);
  m.params.set(randomParams(cfg, seed, 0.3));
  return m;
}
// The raw addon object, bypassing the TypeScript wrapper's checks, as another caller of the engine would.
function raw(m: Model) {
  return (
    m as unknown as {
      native: {
        generate(p: Int32Array[], o: object): Promise<{ tokens: Int32Array; logprobs: Float32Array }[]>;
        forward(s: Int32Array[], o: object): Promise<unknown>;
        setOptimizerSteps(n: number): void;
        optimizerSteps(): number;
        view(b: string, o: number, l: number): Float32Array;
      };
    }
  ).native;
}
const prompts = (n: number, len = 5, seed = 3) => {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Array.from({ length: len }, () => Math.floor(r() * cfg.vocabSize)));
};
async function rejects(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: Error) => pattern.test(e.message) && !e.message.includes('\n'));
}

// 1. Non-finite logits or a temperature whose inverse overflows.
test('1: NaN weights are an error naming the sequence and step, never a token', async () => {
  for (const topP of [1, 0.9]) {
    const m = model();
    m.tensor('model.norm.weight').fill(NaN);
    await rejects(
      m.generate(prompts(3), { maxNewTokens: 4, temperature: 0.7, topP }),
      /non-finite logits .* sequence 0 at generation step 0/,
    );
    const inf = model();
    inf.tensor('model.embed_tokens.weight')[0] = Infinity;
    await rejects(inf.generate([[0, 1, 2]], { maxNewTokens: 2, temperature: 1, topP }), /non-finite logits/);
  }
});

test('1: a temperature so small that 1/T overflows samples its limit, the greedy token', async () => {
  const m = model(4);
  const ps = prompts(3, 4, 9);
  for (const [t, topP, topK] of [
    [1e-39, 0.9, 0],
    [1e-39, 1, 0],
    [1e-30, 0.9, 5],
    [1e-44, 1, 3],
  ] as const) {
    const out = await m.generate(ps, { maxNewTokens: 5, temperature: t, topP, topK });
    ps.forEach((p, i) =>
      assert.deepEqual(out[i].tokens, referenceGenerateGreedy(cfg, m.params, p, 5), `T=${t} top-p=${topP}`),
    );
    for (const o of out) for (const lp of o.logprobs) assert.ok(Number.isFinite(lp) && lp <= 0);
  }
});

// 2. Integer overflow of prompt + maxNewTokens, and negative budgets past the wrapper.
test('2: maxNewTokens of 2^31-1 or more is bounded by max_position_embeddings', async () => {
  const m = model(5);
  const p = prompts(2, 6, 1);
  for (const n of [2147483647, 2 ** 40]) {
    const out = await raw(m).generate(
      p.map((x) => Int32Array.from(x)),
      { maxNewTokens: n, temperature: 0 },
    );
    out.forEach((o, i) => {
      assert.equal(o.tokens.length, cfg.maxPositionEmbeddings - p[i].length + 1);
      assert.deepEqual(Array.from(o.tokens).slice(0, 4), referenceGenerateGreedy(cfg, m.params, p[i], 4));
    });
  }
  const viaWrapper = await m.generate(p, { maxNewTokens: 2147483647, temperature: 0 });
  assert.equal(viaWrapper[0].tokens.length, cfg.maxPositionEmbeddings - 6 + 1);
});

test('2: negative, zero or fractional maxNewTokens through the raw engine are range errors', async () => {
  const m = model();
  const p = [Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])];
  for (const n of [-5, 0, 1.5, NaN]) assert.throws(() => raw(m).generate(p, { maxNewTokens: n }), /maxNewTokens/);
  await rejects(m.generate([[1, 2]], { maxNewTokens: -5 }), /maxNewTokens must be a positive integer/);
});

test('2: a prompt at max_position_embeddings ends at once with "length"', async () => {
  const m = model();
  const p = prompts(1, cfg.maxPositionEmbeddings, 2)[0];
  const out = await m.generate([p], { maxNewTokens: 10, temperature: 0 });
  assert.equal(out[0].tokens.length, 1);
  assert.equal(out[0].finishReason, 'length');
  assert.deepEqual(out[0].tokens, referenceGenerateGreedy(cfg, m.params, p, 1));
});

// 3. Smaller undefined behaviour: step counter, top-k, seeds, empty batches.
test('3: the optimizer step counter holds 2^31 and beyond; bias correction stays finite', async () => {
  const m = model();
  raw(m).setOptimizerSteps(2 ** 31 - 1);
  await m.forward([[1, 2, 3]], { train: true });
  await m.backward([new Float32Array([0.5, -0.5])]);
  const before = Float32Array.from(m.params);
  const r = await m.step({ lr: 1e-3 });
  assert.equal(r.step, 2 ** 31);
  assert.equal(raw(m).optimizerSteps(), 2 ** 31);
  // At this step both bias corrections are 1: the update is lr * m / (sqrt(v) + eps) with m = 0.1 g, v = 0.001 g^2.
  const g = m.grads,
    p = m.params;
  let checked = 0;
  for (let i = 0; i < p.length && checked < 50; i++) {
    if (g[i] === 0) continue;
    const mm = 0.1 * g[i],
      vv = 0.001 * g[i] * g[i];
    const expected = before[i] - (1e-3 * mm) / (Math.sqrt(vv) + 1e-8);
    assert.ok(Math.abs(p[i] - expected) < 1e-6, `param ${i}: ${p[i]} vs ${expected}`);
    checked++;
  }
  assert.ok(checked > 0);
  for (const bad of [-1, 2 ** 60, 0.5, NaN]) assert.throws(() => raw(m).setOptimizerSteps(bad), /optimizer step/);
  assert.throws(() => m.setOptimizerStep(-3), AhaError);
});

test('3: top-k beyond the vocabulary keeps every token (same draws as top-k off); negative top-k is an error', async () => {
  const m = model(6);
  const p = prompts(4, 5, 8).map((x) => Int32Array.from(x));
  const seeds = [1, 2, 3, 4];
  const off = await raw(m).generate(p, { maxNewTokens: 6, temperature: 1, topK: 0, seeds });
  for (const k of [cfg.vocabSize, 99999999999, 2 ** 53 - 1]) {
    const big = await raw(m).generate(p, { maxNewTokens: 6, temperature: 1, topK: k, seeds });
    assert.deepEqual(
      big.map((o) => Array.from(o.tokens)),
      off.map((o) => Array.from(o.tokens)),
      `topK ${k}`,
    );
  }
  for (const k of [-1, 2.5, 2 ** 60]) assert.throws(() => raw(m).generate(p, { maxNewTokens: 2, topK: k }), /topK/);
});

test('3: seeds must be integers in [0, 2^53); temperature, top-p are range-checked', async () => {
  const m = model();
  const p = [Int32Array.from([1, 2, 3])];
  for (const s of [-1, 1.5, 2 ** 64, NaN])
    assert.throws(() => raw(m).generate(p, { maxNewTokens: 2, seeds: [s] }), /seed/);
  assert.throws(() => raw(m).generate(p, { maxNewTokens: 2, seeds: [1, 2] }), /one seed per prompt/);
  for (const t of [-1, NaN, Infinity])
    assert.throws(() => raw(m).generate(p, { maxNewTokens: 2, temperature: t }), /temperature/);
  for (const q of [0, -0.1, 1.5, NaN]) assert.throws(() => raw(m).generate(p, { maxNewTokens: 2, topP: q }), /topP/);
  await rejects(m.generate([[1, 2]], { maxNewTokens: 2, seed: -4 }), /seeds must be integers/);
  await rejects(m.generate([[1, 2]], { maxNewTokens: 2, topP: 0 }), /topP must be in \(0, 1\]/);
  await rejects(m.generate([[1, 2]], { maxNewTokens: 2, temperature: -1 }), /temperature/);
  // The same seed and prompt still give the same tokens.
  const a = await m.generate([[1, 2, 3]], { maxNewTokens: 5, seeds: [2 ** 53 - 1] });
  const b = await m.generate([[1, 2, 3]], { maxNewTokens: 5, seeds: [2 ** 53 - 1] });
  assert.deepEqual(a, b);
});

test('3: empty batches: forward([]) and generate([]) return nothing; the raw engine refuses them', async () => {
  const m = model();
  assert.deepEqual((await m.forward([])).logprobs, []);
  assert.deepEqual(await m.generate([], { maxNewTokens: 3 }), []);
  await rejects(raw(m).forward([], {}) as Promise<unknown>, /no sequences/);
  await rejects(raw(m).forward([new Int32Array(0)], {}) as Promise<unknown>, /empty/);
  await rejects(m.forward([[3]]), /at least 2 tokens/);
});

test('single-token prompts and batch sizes around the kernel thresholds (8 and 16 rows) sample as each alone', async () => {
  const m = model(7);
  for (const B of [1, 7, 8, 9, 15, 16, 17]) {
    const ps = prompts(B, 1 + (B % 3), B);
    const out = await m.generate(ps, { maxNewTokens: 3, temperature: 0 });
    ps.forEach((p, i) =>
      assert.deepEqual(out[i].tokens, referenceGenerateGreedy(cfg, m.params, p, 3), `B=${B} row ${i}`),
    );
  }
  const lp = await m.forward([[4, 5]]);
  assert.ok(Math.abs(lp.logprobs[0][0] - referenceForward(cfg, m.params, [4, 5]).logprobs[0]) < 1e-5);
});

// 4. Views and the lazily allocated buffers take the model's lock.
test('4: views requested while a step runs wait for it and see its result', async () => {
  const m = model(8);
  const seqs = prompts(6, 30, 4);
  await m.forward(seqs, { train: true });
  await m.backward(seqs.map((s) => new Float32Array(s.length - 1).fill(0.1)));
  const stepping = m.step({ lr: 1e-2 });
  // The moments do not exist until the first step; asking for them now must not race their allocation.
  const mView = raw(m).view('adamM', 0, 16);
  const r = await stepping;
  assert.equal(r.step, 1);
  assert.ok(
    Array.from(mView).some((x) => x !== 0),
    'the view is the buffer the step wrote',
  );
});

test('bad views and configs are errors, not crashes', () => {
  const m = model();
  const n = m.numParams;
  for (const [o, l] of [
    [-1, 4],
    [n, 1],
    [0, n + 1],
    [1.5, 2],
  ])
    assert.throws(() => m.view('params', o, l), AhaError);
  assert.throws(() => m.view('nope' as 'params', 0, 1), AhaError);
  assert.equal(m.view('params', n, 0).length, 0);
  const { NativeModel } = loadAddon();
  assert.throws(() => new NativeModel({ ...cfg, hiddenSize: 2 ** 40 }), /hiddenSize/);
  assert.throws(() => new NativeModel({ ...cfg, numLayers: -1 }), /numLayers/);
  assert.throws(() => new NativeModel({ ...cfg, numHeads: 2 ** 20, headDim: 2 ** 10 }), /over 2\^24/);
});
