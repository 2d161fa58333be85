import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import { tensorLayout, type EngineConfig, type TensorInfo } from '../../src/engine/types.ts';
import { loraLayout, loraScale, resolveLora, LORA_MODULES, type LoraConfig } from '../../src/engine/lora.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS, randomParams, mulberry32, gaussian } from '../support/tinyConfigs.ts';
import { referenceForward } from '../support/referenceTransformer.ts';
import { centralDifferenceGrad, sampleTensorIndices, describeIndex } from '../support/finiteDifference.ts';

function randomSeqs(config: EngineConfig, lengths: number[], seed: number): number[][] {
  const r = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => Math.floor(r() * config.vocabSize)));
}

function randomAdapters(layout: TensorInfo[], seed: number, scale = 0.3): Float32Array {
  const last = layout[layout.length - 1];
  const out = new Float32Array(last.offset + last.size);
  const normal = gaussian(mulberry32(seed));
  for (let i = 0; i < out.length; i++) out[i] = scale * normal();
  return out;
}

const PATH: Record<string, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** W + scale * B A in float64, tensor by tensor: the merged model, written independently of the engine. */
function mergeFloat64(cfg: EngineConfig, base: ArrayLike<number>, lora: LoraConfig, adapters: ArrayLike<number>) {
  const merged = Float64Array.from(base as ArrayLike<number>);
  const layout = tensorLayout(cfg);
  const byName = new Map(layout.map((t) => [t.name, t]));
  const al = loraLayout(cfg, lora);
  const aByName = new Map(al.map((t) => [t.name, t]));
  const s = loraScale(lora);
  for (let l = 0; l < cfg.numLayers; l++)
    for (const m of lora.targetModules) {
      const w = byName.get(`model.layers.${l}.${PATH[m]}.weight`)!;
      const A = aByName.get(`base_model.model.model.layers.${l}.${PATH[m]}.lora_A.weight`)!;
      const B = aByName.get(`base_model.model.model.layers.${l}.${PATH[m]}.lora_B.weight`)!;
      const [out, inF] = w.shape;
      const r = lora.r;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inF; i++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += adapters[B.offset + o * r + k] * adapters[A.offset + k * inF + i];
          merged[w.offset + o * inF + i] += s * acc;
        }
    }
  return merged;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

const ALL: LoraConfig = resolveLora({ r: 3, lora_alpha: 6, target_modules: 'all-linear' });
const SOME: LoraConfig = resolveLora({
  r: 2,
  lora_alpha: 5,
  target_modules: ['k_proj', 'o_proj', 'up_proj'],
  use_rslora: true,
});

for (const [name, cfg] of Object.entries(TINY_CONFIGS)) {
  test(`${name}: LoRA forward equals the merged model's (float64 merge W + (alpha/r) B A)`, async () => {
    for (const lora of [ALL, SOME]) {
      const m = new Model(cfg, { lora });
      const base = randomParams(cfg, 3);
      m.params.set(base);
      const adapters = randomAdapters(m.adapterLayout, 4);
      m.adapters.set(adapters);
      const seqs = randomSeqs(cfg, [9, 2, 13], 5);
      const r = await m.forward(seqs, { entropy: true });
      const merged = mergeFloat64(cfg, base, lora, adapters);
      const mergedModel = new Model(cfg);
      mergedModel.params.set(Float32Array.from(merged));
      const rm = await mergedModel.forward(seqs, { entropy: true });
      seqs.forEach((s, i) => {
        const ref = referenceForward(cfg, merged, s);
        assertClose(r.logprobs[i], ref.logprobs, 2e-5, `${name} r=${lora.r} vs float64 seq ${i}`);
        assertClose(r.logprobs[i], rm.logprobs[i], 1e-5, `${name} r=${lora.r} vs merged engine seq ${i}`);
        assertClose(r.entropy![i], rm.entropy![i], 1e-5, `${name} r=${lora.r} entropy seq ${i}`);
      });
      // The reference policy is the base with the adapters off.
      assert.ok(m.hasReference);
      const off = await m.forward(seqs, { reference: true });
      seqs.forEach((s, i) => assertClose(off.logprobs[i], referenceForward(cfg, base, s).logprobs, 2e-5, 'base'));
    }
  });

  test(`${name}: LoRA gradients equal central finite differences; checkpointing gives the same bits`, async () => {
    const lora = name === 'allFeatures' ? SOME : ALL;
    const m = new Model(cfg, { lora });
    const base = randomParams(cfg, 8);
    m.params.set(base);
    const adapters = randomAdapters(m.adapterLayout, 9);
    m.adapters.set(adapters);
    const seqs = randomSeqs(cfg, [7, 3, 10], 5);
    const r = mulberry32(99);
    const wl = seqs.map((s) => Array.from({ length: s.length - 1 }, () => r() * 2 - 1));
    const we = seqs.map((s) => Array.from({ length: s.length - 1 }, () => r() * 2 - 1));
    m.zeroGrad();
    await m.forward(seqs, { train: true, entropy: true });
    await m.backward(wl, we);
    const g = Float32Array.from(m.grads);
    assert.equal(g.length, m.numTrainable);
    const loss = (a: Float64Array) => {
      const merged = mergeFloat64(cfg, base, lora, a);
      let L = 0;
      seqs.forEach((s, i) => {
        const o = referenceForward(cfg, merged, s);
        for (let t = 0; t < o.logprobs.length; t++) L += wl[i][t] * o.logprobs[t] + we[i][t] * o.entropy[t];
      });
      return L;
    };
    const idx = sampleTensorIndices(m.adapterLayout, 2, 17);
    const fd = centralDifferenceGrad(loss, Float64Array.from(adapters), idx, 1e-5);
    idx.forEach((pi, k) => {
      const d = Math.abs(g[pi] - fd[k]);
      assert.ok(
        d <= 2e-3 * Math.max(1, Math.abs(fd[k])),
        `${name} ${describeIndex(m.adapterLayout, pi)}: engine ${g[pi]} vs fd ${fd[k]}`,
      );
    });
    // Gradient checkpointing recomputes the same layer body, LoRA included: the same bits.
    m.setGradientCheckpointing(true);
    m.zeroGrad();
    await m.forward(seqs, { train: true, entropy: true });
    await m.backward(wl, we);
    const gc = m.grads;
    for (let i = 0; i < g.length; i++) if (gc[i] !== g[i]) assert.fail(`checkpointed grad[${i}] ${gc[i]} !== ${g[i]}`);
  });
}

/** bf16 / f16 bits of float32 values, rounded to nearest even (float64 arithmetic, independent of the engine). */
function roundTo16(x: Float32Array, dtype: 'bf16' | 'f16'): { bits: Uint16Array; values: Float32Array } {
  const bits = new Uint16Array(x.length);
  const values = new Float32Array(x.length);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < x.length; i++) {
    if (dtype === 'bf16') {
      f32[0] = x[i];
      const u = u32[0];
      const lower = u & 0xffff;
      let hi = u >>> 16;
      if (lower > 0x8000 || (lower === 0x8000 && hi & 1)) hi++;
      bits[i] = hi;
      u32[0] = hi << 16;
      values[i] = f32[0];
    } else {
      // Round to a multiple of the half-precision ulp at this magnitude, ties to even (|x| < 65504 here).
      const a = Math.abs(x[i]);
      const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
      const ulp = 2 ** (e - 10);
      let q = a / ulp;
      const fl = Math.floor(q);
      q = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
      const v = Math.sign(x[i]) * q * ulp;
      values[i] = v;
      // Encode from the value: exponent field and mantissa.
      const av = Math.abs(v);
      let h: number;
      if (av === 0) h = 0;
      else if (av < 2 ** -14) h = Math.round(av / 2 ** -24);
      else {
        const ee = Math.floor(Math.log2(av));
        h = ((ee + 15) << 10) | Math.round((av / 2 ** ee - 1) * 1024);
      }
      bits[i] = (v < 0 || Object.is(v, -0) ? 0x8000 : 0) | h;
    }
  }
  return { bits, values };
}

for (const dtype of ['bf16', 'f16'] as const)
  for (const [name, cfg] of Object.entries({ gqaTied: TINY_CONFIGS.gqaTied, allFeatures: TINY_CONFIGS.allFeatures })) {
    test(`${name}: ${dtype} weights give float32 math on the rounded weights (forward, sampling, LoRA)`, async () => {
      const p = randomParams(cfg, 12);
      const { bits, values } = roundTo16(p, dtype);
      const half = new Model(cfg, { weights: dtype });
      half.halfView(0, half.numParams).set(bits);
      const full = new Model(cfg);
      full.params.set(values);
      const seqs = randomSeqs(cfg, [11, 2, 30, 5], 6);
      const a = await half.forward(seqs, { entropy: true });
      const b = await full.forward(seqs, { entropy: true });
      seqs.forEach((s, i) => {
        assertClose(a.logprobs[i], b.logprobs[i], 1e-5, `${dtype} vs f32 seq ${i}`);
        assertClose(a.logprobs[i], referenceForward(cfg, values, s).logprobs, 1e-4, `${dtype} vs float64 seq ${i}`);
      });
      // Sampling reads the 16-bit weights directly (few rows) and in widened blocks (prefill): same tokens as the
      // float32 model, log-probs that match a forward pass.
      const prompts = randomSeqs(cfg, [4, 6, 3], 7);
      const sa = await half.generate(prompts, { maxNewTokens: 12, temperature: 0 });
      const sb = await full.generate(prompts, { maxNewTokens: 12, temperature: 0 });
      assert.deepEqual(
        sa.map((x) => x.tokens),
        sb.map((x) => x.tokens),
      );
      const re = await half.forward(prompts.map((q, i) => [...q, ...sa[i].tokens]));
      sa.forEach((x, i) => assertClose(x.logprobs, re.logprobs[i].subarray(prompts[i].length - 1), 1e-4, 'sample lp'));
      // Training the 16-bit weights themselves is refused in one line; LoRA on them trains.
      await assert.rejects(
        half.forward(seqs, { train: true }),
        (e: Error) => e instanceof AhaError && /frozen/.test(e.message) && !e.message.includes('\n'),
      );
      const lora = resolveLora({ r: 2, target_modules: 'all-linear' });
      const lh = new Model(cfg, { weights: dtype, lora });
      lh.halfView(0, lh.numParams).set(bits);
      const adapters = randomAdapters(lh.adapterLayout, 3);
      lh.adapters.set(adapters);
      const lr = await lh.forward(seqs, { train: true });
      const merged = mergeFloat64(cfg, values, lora, adapters);
      seqs.forEach((s, i) => assertClose(lr.logprobs[i], referenceForward(cfg, merged, s).logprobs, 2e-5, 'lora16'));
      await lh.backward(lr.logprobs.map((x) => Array.from(x, () => 1)));
      assert.ok(lh.grads.some((x) => x !== 0));
    });
  }

for (const dtype of ['bf16', 'f16'] as const)
  test(`full fine-tuning's ${dtype} reference copy is float32 math on the rounded weights, frozen while the policy trains`, async () => {
    const cfg = TINY_CONFIGS.allFeatures;
    const p = randomParams(cfg, 21);
    const { values } = roundTo16(p, dtype);
    const m = new Model(cfg);
    m.params.set(p);
    m.snapshotReference(dtype);
    const seqs = randomSeqs(cfg, [9, 3, 17], 8);
    const rounded = new Model(cfg);
    rounded.params.set(values);
    const want = await rounded.forward(seqs);
    const before = await m.forward(seqs, { reference: true });
    seqs.forEach((s, i) => {
      assertClose(before.logprobs[i], want.logprobs[i], 1e-5, `${dtype} reference vs f32 engine on rounded, seq ${i}`);
      assertClose(before.logprobs[i], referenceForward(cfg, values, s).logprobs, 1e-4, `vs float64, seq ${i}`);
    });
    // A training step moves the live weights; the reference pass still reads the rounded snapshot.
    const t = await m.forward(seqs, { train: true });
    await m.backward(t.logprobs.map((x) => Array.from(x, () => -1)));
    await m.step({ lr: 1e-2, maxGradNorm: 1, weightDecay: 0 });
    const after = await m.forward(seqs, { reference: true });
    const live = await m.forward(seqs);
    seqs.forEach((_, i) => {
      assert.deepEqual(after.logprobs[i], before.logprobs[i]);
      assert.ok(
        live.logprobs[i].some((x, j) => Math.abs(x - before.logprobs[i][j]) > 1e-4),
        'the policy moved',
      );
    });
  });

test('LoRA sampling agrees with the training forward, and a step moves only the adapters', async () => {
  const cfg = TINY_CONFIGS.allFeatures;
  const lora = resolveLora({ r: 4, lora_alpha: 8 });
  const m = new Model(cfg, { lora });
  const base = randomParams(cfg, 2);
  m.params.set(base);
  m.adapters.set(randomAdapters(m.adapterLayout, 5, 0.2));
  const prompts = randomSeqs(cfg, [5, 5, 7], 1);
  const s = await m.generate(prompts, { maxNewTokens: 10, temperature: 1, seed: 3 });
  const f = await m.forward(prompts.map((p, i) => [...p, ...s[i].tokens]));
  s.forEach((x, i) => assertClose(x.logprobs, f.logprobs[i].subarray(prompts[i].length - 1), 1e-4, `lp ${i}`));
  m.zeroGrad();
  const t = await m.forward(prompts, { train: true });
  await m.backward(t.logprobs.map((x) => Array.from(x, () => -1)));
  const before = Float32Array.from(m.adapters);
  const r = await m.step({ lr: 1e-2 });
  assert.equal(r.skipped, false);
  assert.ok(m.adapters.some((x, i) => x !== before[i]));
  assert.deepEqual(Array.from(m.params), Array.from(base));
});

test('bad LoRA options are one-line errors', () => {
  assert.throws(() => resolveLora({ r: 0 }), /lora.r must be a positive integer/);
  assert.throws(() => resolveLora({ r: -2 }), /lora.r must be a positive integer/);
  assert.throws(() => resolveLora({ r: 2, target_modules: ['q_proj', 'qkv'] }), /unknown module "qkv"/);
  assert.throws(() => resolveLora({ r: 2, lora_dropout: 0.1 }), /lora_dropout/);
  assert.deepEqual(resolveLora({ r: 2 }).targetModules, [...LORA_MODULES]);
  assert.equal(loraScale(resolveLora({ r: 4, lora_alpha: 8, use_rslora: true })), 4);
  assert.equal(loraScale(resolveLora({ r: 4, lora_alpha: 8 })), 2);
});
