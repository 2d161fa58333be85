/**
 * Self-tests of the float64 reference transformer, its tiny configs and the finite-difference helpers. None of
 * this needs the native engine: the checks are closed forms, a second implementation written the way HF's
 * modeling code is structured (whole matrices, cat(freqs, freqs) cos/sin tables, repeat_kv, masked softmax),
 * and invariants (normalisation, causality, RoPE relativity).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameterCount, tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import {
  applyRope,
  logSoftmax,
  referenceForward,
  referenceGenerateGreedy,
  referenceLogits,
  rmsnorm,
} from './referenceTransformer.ts';
import { centralDifferenceGrad, describeIndex, sampleTensorIndices } from './finiteDifference.ts';
import { TINY_CONFIGS, defaultInvFreq, gqaTied, mhaUntied, mulberry32, randomParams } from './tinyConfigs.ts';

function close(actual: number, expected: number, tol: number, what: string): void {
  const err = Math.abs(actual - expected);
  assert.ok(
    err <= tol * Math.max(1, Math.abs(expected)),
    `${what}: got ${actual}, expected ${expected} (|diff| ${err})`,
  );
}

function randomIds(c: EngineConfig, n: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(r() * c.vocabSize));
}

/** Named tensors of a flat buffer as nested number arrays (matrices [rows][cols] or vectors). */
function named(c: EngineConfig, p: ArrayLike<number>) {
  const byName = new Map(tensorLayout(c).map((t) => [t.name, t]));
  const vec = (name: string): number[] => {
    const t = byName.get(name)!;
    return Array.from({ length: t.size }, (_, i) => p[t.offset + i]);
  };
  const mat = (name: string): number[][] => {
    const t = byName.get(name)!;
    const [rows, cols] = t.shape;
    return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, j) => p[t.offset + r * cols + j]));
  };
  return { vec, mat, has: (name: string) => byName.has(name) };
}

/** X W^T (+ b) for X [n][in], W [out][in]. */
function matmulT(X: number[][], W: number[][], b?: number[]): number[][] {
  return X.map((x) => W.map((w, o) => w.reduce((acc, wi, i) => acc + wi * x[i], b ? b[o] : 0)));
}

function rmsRows(X: number[][], w: number[], eps: number): number[][] {
  return X.map((x) => {
    const variance = x.reduce((a, v) => a + v * v, 0) / x.length;
    return x.map((v, i) => w[i] * (v / Math.sqrt(variance + eps)));
  });
}

/**
 * A second, independently written forward pass shaped like HF's LlamaModel / Qwen3Model: whole-sequence matrices,
 * q.view(n, H, D), per-head norm, cos/sin tables built as cat(freqs, freqs), q*cos + rotate_half(q)*sin,
 * repeat_kv, a -Infinity causal mask and softmax(QK^T * D^-0.5).
 */
function hfStyleLogits(c: EngineConfig, params: ArrayLike<number>, ids: number[]): number[][] {
  const { vec, mat } = named(c, params);
  const n = ids.length,
    D = c.headDim,
    H = c.numHeads,
    KV = c.numKvHeads,
    nRep = H / KV;
  const E = mat('model.embed_tokens.weight');
  let X = ids.map((id) => E[id].slice());
  const freqs = Array.from({ length: n }, (_, pos) => Array.from(c.ropeInvFreq, (f) => pos * f));
  const emb = freqs.map((row) => [...row, ...row]);
  const cos = emb.map((row) => row.map((a) => Math.cos(a) * c.ropeAttentionScale));
  const sin = emb.map((row) => row.map((a) => Math.sin(a) * c.ropeAttentionScale));
  const rotateHalf = (x: number[]) => [...x.slice(D / 2).map((v) => -v), ...x.slice(0, D / 2)];
  const view = (M: number[][], heads: number) =>
    M.map((row) => Array.from({ length: heads }, (_, h) => row.slice(h * D, (h + 1) * D))); // [n][heads][D]
  const ropeAll = (T: number[][][]) =>
    T.map((heads, pos) =>
      heads.map((x) => {
        const rh = rotateHalf(x);
        return x.map((v, d) => v * cos[pos][d] + rh[d] * sin[pos][d]);
      }),
    );

  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const Hn = rmsRows(X, vec(p + 'input_layernorm.weight'), c.rmsNormEps);
    let Q = view(
      matmulT(Hn, mat(p + 'self_attn.q_proj.weight'), c.qkvBias ? vec(p + 'self_attn.q_proj.bias') : undefined),
      H,
    );
    let K = view(
      matmulT(Hn, mat(p + 'self_attn.k_proj.weight'), c.qkvBias ? vec(p + 'self_attn.k_proj.bias') : undefined),
      KV,
    );
    const V = view(
      matmulT(Hn, mat(p + 'self_attn.v_proj.weight'), c.qkvBias ? vec(p + 'self_attn.v_proj.bias') : undefined),
      KV,
    );
    if (c.qkNorm) {
      Q = Q.map((heads) => rmsRows(heads, vec(p + 'self_attn.q_norm.weight'), c.rmsNormEps));
      K = K.map((heads) => rmsRows(heads, vec(p + 'self_attn.k_norm.weight'), c.rmsNormEps));
    }
    Q = ropeAll(Q);
    K = ropeAll(K);
    // repeat_kv: expanded head h is kv head h // nRep
    const Kx = K.map((heads) => Array.from({ length: H }, (_, h) => heads[Math.floor(h / nRep)]));
    const Vx = V.map((heads) => Array.from({ length: H }, (_, h) => heads[Math.floor(h / nRep)]));
    const attnOut: number[][] = Array.from({ length: n }, () => []);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < n; i++) {
        const scores = Array.from({ length: n }, (_, j) =>
          j > i ? -Infinity : Q[i][h].reduce((a, qv, d) => a + qv * Kx[j][h][d], 0) * Math.pow(D, -0.5),
        );
        const m = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - m));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) attnOut[i][h * D + d] = ex.reduce((a, e, j) => a + (e / z) * Vx[j][h][d], 0);
      }
    }
    const O = matmulT(
      attnOut,
      mat(p + 'self_attn.o_proj.weight'),
      c.oBias ? vec(p + 'self_attn.o_proj.bias') : undefined,
    );
    X = X.map((x, i) => x.map((v, j) => v + O[i][j]));
    const H2 = rmsRows(X, vec(p + 'post_attention_layernorm.weight'), c.rmsNormEps);
    const G = matmulT(H2, mat(p + 'mlp.gate_proj.weight'));
    const U = matmulT(H2, mat(p + 'mlp.up_proj.weight'));
    const A = G.map((g, i) => g.map((gv, j) => (gv / (1 + Math.exp(-gv))) * U[i][j]));
    const M = matmulT(A, mat(p + 'mlp.down_proj.weight'));
    X = X.map((x, i) => x.map((v, j) => v + M[i][j]));
  }
  const Xf = rmsRows(X, vec('model.norm.weight'), c.rmsNormEps);
  return matmulT(Xf, c.tieWordEmbeddings ? E : mat('lm_head.weight'));
}

/** Zeroes every o_proj (and its bias) and down_proj, so each layer adds nothing to the residual stream. */
function zeroLayerOutputs(c: EngineConfig, params: Float32Array): Float32Array {
  const p = params.slice();
  for (const t of tensorLayout(c)) {
    if (/self_attn\.o_proj\.(weight|bias)$|mlp\.down_proj\.weight$/.test(t.name))
      p.fill(0, t.offset, t.offset + t.size);
  }
  return p;
}

test('tinyConfigs: layouts, seeded params, inverse frequencies', () => {
  assert.deepEqual(Array.from(defaultInvFreq(4, 10000)), [1, Math.fround(0.01)]);
  assert.deepEqual(Array.from(defaultInvFreq(6, 10000)), [
    1,
    Math.fround(10000 ** (-1 / 3)),
    Math.fround(10000 ** (-2 / 3)),
  ]);
  const names = Object.keys(TINY_CONFIGS);
  assert.ok(names.length >= 6);
  const cfgs = Object.values(TINY_CONFIGS);
  assert.ok(cfgs.some((c) => c.numKvHeads < c.numHeads) && cfgs.some((c) => c.numKvHeads === c.numHeads));
  assert.ok(cfgs.some((c) => c.tieWordEmbeddings) && cfgs.some((c) => !c.tieWordEmbeddings));
  assert.ok(cfgs.some((c) => c.qkvBias && !c.oBias) && cfgs.some((c) => c.qkvBias && c.oBias));
  assert.ok(cfgs.some((c) => c.qkNorm) && cfgs.some((c) => c.headDim * c.numHeads !== c.hiddenSize));
  for (const [name, c] of Object.entries(TINY_CONFIGS)) {
    assert.equal(c.ropeInvFreq.length, c.headDim / 2, name);
    assert.equal(c.numHeads % c.numKvHeads, 0, name);
    const a = randomParams(c, 7, 0.3);
    assert.ok(a instanceof Float32Array);
    assert.equal(a.length, parameterCount(c), name);
    assert.deepEqual(a, randomParams(c, 7, 0.3), `${name}: same seed, same params`);
    assert.notDeepEqual(a, randomParams(c, 8, 0.3), `${name}: different seed, different params`);
    for (const t of tensorLayout(c)) {
      const xs = Array.from(a.subarray(t.offset, t.offset + t.size));
      if (t.name.endsWith('norm.weight')) {
        assert.ok(xs.every((x) => Math.abs(x - 1) < 0.6) && xs.some((x) => x !== 1), `${name} ${t.name} near 1`);
      } else {
        assert.ok(
          xs.every((x) => Number.isFinite(x) && Math.abs(x) < 0.3 * 7),
          `${name} ${t.name} bounded`,
        );
      }
    }
  }
  // the Gaussian really has the requested scale: std of many draws
  const big = randomParams({ ...gqaTied, vocabSize: 4000 }, 1, 0.5);
  const emb = big.subarray(0, 4000 * 16);
  const mean = emb.reduce((s, x) => s + x, 0) / emb.length;
  const std = Math.sqrt(emb.reduce((s, x) => s + (x - mean) ** 2, 0) / emb.length);
  close(mean, 0, 0.01, 'embedding mean');
  close(std, 0.5, 0.01, 'embedding std');
});

test('rmsnorm and logSoftmax against hand values', () => {
  const r = rmsnorm(Float64Array.of(3, 4), Float64Array.of(1, 2), 0);
  const rms = Math.sqrt(12.5);
  close(r[0], 3 / rms, 1e-15, 'rms[0]');
  close(r[1], 8 / rms, 1e-15, 'rms[1]');
  const e = rmsnorm(Float64Array.of(0, 0), Float64Array.of(1, 1), 1e-6);
  assert.deepEqual(Array.from(e), [0, 0]);
  const ls = logSoftmax(Float64Array.of(0, Math.log(3)));
  close(ls[0], Math.log(1 / 4), 1e-15, 'ls[0]');
  close(ls[1], Math.log(3 / 4), 1e-15, 'ls[1]');
  const huge = logSoftmax(Float64Array.of(1000, 1000));
  close(huge[0], -Math.LN2, 1e-15, 'no overflow');
});

test('applyRope: hand values, identity at 0, norm scaling, relative-position property', () => {
  // D = 2, one frequency 1: a plain rotation by pos radians
  const a = applyRope(Float64Array.of(1, 0), 1, [1], 1);
  close(a[0], Math.cos(1), 1e-15, 'rot x');
  close(a[1], Math.sin(1), 1e-15, 'rot y');
  // D = 4: pairs are (0,2) and (1,3), not (0,1) and (2,3)
  const b = applyRope(Float64Array.of(1, 2, 3, 4), 2, [0.5, 0.25], 1);
  close(b[0], 1 * Math.cos(1) - 3 * Math.sin(1), 1e-15, 'b0');
  close(b[2], 3 * Math.cos(1) + 1 * Math.sin(1), 1e-15, 'b2');
  close(b[1], 2 * Math.cos(0.5) - 4 * Math.sin(0.5), 1e-15, 'b1');
  close(b[3], 4 * Math.cos(0.5) + 2 * Math.sin(0.5), 1e-15, 'b3');
  const q = Float64Array.of(0.3, -1.2, 0.7, 2.0, -0.4, 0.9);
  const k = Float64Array.of(1.1, 0.2, -0.5, 0.6, 1.4, -0.8);
  assert.deepEqual(Array.from(applyRope(q, 0, defaultInvFreq(6, 10000), 1)), Array.from(q));
  const norm = (v: Float64Array) => Math.hypot(...v);
  close(norm(applyRope(q, 5, defaultInvFreq(6, 10000), 1.25)), 1.25 * norm(q), 1e-14, 'scaled norm');
  const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i], 0);
  const inv = defaultInvFreq(6, 100);
  for (const [pq, pk] of [
    [3, 1],
    [7, 7],
    [10, 2],
  ]) {
    const base = dot(applyRope(q, pq, inv, 1), applyRope(k, pk, inv, 1));
    for (const shift of [1, 5, 40]) {
      close(
        dot(applyRope(q, pq + shift, inv, 1), applyRope(k, pk + shift, inv, 1)),
        base,
        1e-12,
        `q@${pq} k@${pk} +${shift}`,
      );
    }
  }
});

test('(a) closed form: zero layers, identity embeddings', () => {
  const c: EngineConfig = {
    ...mhaUntied,
    vocabSize: 2,
    hiddenSize: 2,
    numLayers: 0,
    tieWordEmbeddings: true,
    rmsNormEps: 0,
  };
  // embed = I, model.norm = [1, 1]
  const params = Float64Array.of(1, 0, 0, 1, 1, 1);
  assert.equal(params.length, parameterCount(c));
  const { logprobs, entropy } = referenceForward(c, params, [0, 1, 1]);
  // token 0: h = [1,0]/sqrt(1/2) = [√2, 0], logits [√2, 0]; token 1: logits [0, √2]
  const s = Math.SQRT2;
  close(logprobs[0], -Math.log(1 + Math.exp(s)), 1e-15, 'lp[0]');
  close(logprobs[1], -Math.log(1 + Math.exp(-s)), 1e-15, 'lp[1]');
  const p = 1 / (1 + Math.exp(-s));
  const H = -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
  close(entropy[0], H, 1e-15, 'H[0]');
  close(entropy[1], H, 1e-15, 'H[1]');
});

test('(a) zeroed attention and MLP outputs reduce every config to rmsnorm(embed) W^T', () => {
  for (const [name, c] of Object.entries(TINY_CONFIGS)) {
    const params = zeroLayerOutputs(c, randomParams(c, 11));
    const ids = randomIds(c, 6, 3);
    const { vec, mat } = named(c, params);
    const E = mat('model.embed_tokens.weight');
    const W = c.tieWordEmbeddings ? E : mat('lm_head.weight');
    const g = vec('model.norm.weight');
    const { logprobs, entropy } = referenceForward(c, params, ids);
    assert.equal(logprobs.length, ids.length - 1);
    assert.equal(entropy.length, ids.length - 1);
    for (let t = 0; t < ids.length - 1; t++) {
      const e = E[ids[t]];
      let ms = 0;
      for (const v of e) ms += v * v;
      ms /= e.length;
      const h = e.map((v, i) => (v / Math.sqrt(ms + c.rmsNormEps)) * g[i]);
      const logits = W.map((row) => row.reduce((s, w, i) => s + w * h[i], 0));
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, z) => s + Math.exp(z - m), 0));
      close(logprobs[t], logits[ids[t + 1]] - lse, 1e-12, `${name} lp[${t}]`);
      const H = -logits.reduce((s, z) => s + Math.exp(z - lse) * (z - lse), 0);
      close(entropy[t], H, 1e-12, `${name} H[${t}]`);
    }
  }
});

test('full forward agrees with an HF-structured second implementation on every config', () => {
  for (const [name, c] of Object.entries(TINY_CONFIGS)) {
    const params = randomParams(c, 21);
    const ids = randomIds(c, 9, 5);
    const ref = referenceLogits(c, params, ids);
    const hf = hfStyleLogits(c, params, ids);
    assert.equal(ref.length, ids.length);
    let spread = 0;
    for (let t = 0; t < ids.length; t++) {
      assert.equal(ref[t].length, c.vocabSize);
      for (let v = 0; v < c.vocabSize; v++) close(ref[t][v], hf[t][v], 1e-11, `${name} logits[${t}][${v}]`);
      spread = Math.max(spread, Math.max(...ref[t]) - Math.min(...ref[t]));
    }
    // the random params give a far-from-uniform distribution, so the comparison is not vacuous
    assert.ok(spread > 1, `${name}: logits spread ${spread}`);
  }
});

test('float32 and float64 parameter buffers give identical results', () => {
  const c = TINY_CONFIGS.qwen3QkNorm;
  const p32 = randomParams(c, 4);
  const ids = randomIds(c, 5, 9);
  assert.deepEqual(referenceForward(c, p32, ids), referenceForward(c, Float64Array.from(p32), ids));
});

test('(b) next-token logprobs over the whole vocabulary sum to 1 and match the entropy', () => {
  for (const [name, c] of Object.entries(TINY_CONFIGS)) {
    const params = randomParams(c, 31);
    const ids = randomIds(c, 6, 13);
    const base = referenceForward(c, params, ids);
    for (const t of [0, 2, ids.length - 2]) {
      // vary the target at t+1; by causality position t's distribution is unchanged
      const lps: number[] = [];
      for (let v = 0; v < c.vocabSize; v++) {
        const alt = ids.slice();
        alt[t + 1] = v;
        lps.push(referenceForward(c, params, alt).logprobs[t]);
      }
      close(
        lps.reduce((s, lp) => s + Math.exp(lp), 0),
        1,
        1e-12,
        `${name} t=${t} sum p`,
      );
      close(-lps.reduce((s, lp) => s + Math.exp(lp) * lp, 0), base.entropy[t], 1e-12, `${name} t=${t} entropy`);
      assert.ok(base.entropy[t] > 0 && base.entropy[t] < Math.log(c.vocabSize), `${name} entropy range`);
      close(lps[ids[t + 1]], base.logprobs[t], 1e-15, `${name} t=${t} own target`);
    }
  }
});

test('(c) causality: changing a later token leaves earlier positions bit-identical', () => {
  for (const [name, c] of Object.entries(TINY_CONFIGS)) {
    const params = randomParams(c, 41);
    const ids = randomIds(c, 8, 17);
    const base = referenceForward(c, params, ids);
    const baseLogits = referenceLogits(c, params, ids);
    const k = 5;
    const alt = ids.slice();
    alt[k] = (ids[k] + 1) % c.vocabSize;
    const other = referenceForward(c, params, alt);
    const otherLogits = referenceLogits(c, params, alt);
    for (let t = 0; t < k; t++) assert.deepEqual(otherLogits[t], baseLogits[t], `${name} logits[${t}]`);
    for (let t = 0; t < k - 1; t++) {
      assert.equal(other.logprobs[t], base.logprobs[t], `${name} lp[${t}]`);
      assert.equal(other.entropy[t], base.entropy[t], `${name} H[${t}]`);
    }
    assert.equal(other.entropy[k - 1], base.entropy[k - 1], `${name} H[k-1] (same context)`);
    assert.notEqual(other.logprobs[k - 1], base.logprobs[k - 1], `${name} lp[k-1] (target changed)`);
    for (let t = k; t < ids.length - 1; t++)
      assert.notEqual(other.entropy[t], base.entropy[t], `${name} H[${t}] sees token ${k}`);
    // and a prefix alone gives the same values as the full sequence
    const prefix = referenceForward(c, params, ids.slice(0, k));
    assert.deepEqual(prefix.logprobs, base.logprobs.slice(0, k - 1), `${name} prefix`);
  }
});

test('(d) sequence position enters only through RoPE: with no rotation, equal-context positions match', () => {
  // With invFreq = 0 the model is permutation-equivariant over the context: for a 1-layer model, position t of
  // [a, b, c] and of [b, a, c] attends over the same multiset, so logits at the last position agree.
  const c: EngineConfig = { ...TINY_CONFIGS.qwen3QkNorm, numLayers: 1, ropeInvFreq: new Float32Array(3) };
  const params = randomParams(c, 51);
  const x = referenceLogits(c, params, [3, 8, 5]);
  const y = referenceLogits(c, params, [8, 3, 5]);
  for (let v = 0; v < c.vocabSize; v++) close(x[2][v], y[2][v], 1e-12, `no-rope logits[2][${v}]`);
  // with real frequencies the order matters
  const cr = { ...c, ropeInvFreq: defaultInvFreq(6, 100) };
  const xr = referenceLogits(cr, params, [3, 8, 5]);
  const yr = referenceLogits(cr, params, [8, 3, 5]);
  assert.ok(Math.max(...xr[2].map((z, v) => Math.abs(z - yr[2][v]))) > 1e-6, 'RoPE makes order matter');
});

test('greedy generation: hand-built successor model, stop ids, consistency with referenceLogits', () => {
  // Zeroed layer outputs make logits depend on the current token only. lm_head row v = e_{v-1}/|e_{v-1}|, so the
  // logit of v is |h| cos(e_cur, e_{v-1}) (norm weights set to 1): maximal exactly at v = cur + 1 (mod V).
  const c: EngineConfig = { ...mhaUntied };
  const params = zeroLayerOutputs(c, randomParams(c, 61));
  const layout = new Map(tensorLayout(c).map((t) => [t.name, t]));
  const emb = layout.get('model.embed_tokens.weight')!,
    head = layout.get('lm_head.weight')!,
    norm = layout.get('model.norm.weight')!;
  params.fill(1, norm.offset, norm.offset + norm.size);
  const C = c.hiddenSize,
    V = c.vocabSize;
  for (let v = 0; v < V; v++) {
    const src = ((v - 1 + V) % V) * C;
    const e = params.slice(emb.offset + src, emb.offset + src + C);
    const len = Math.hypot(...e);
    for (let i = 0; i < C; i++) params[head.offset + v * C + i] = e[i] / len;
  }
  assert.deepEqual(referenceGenerateGreedy(c, params, [3], 6), [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(referenceGenerateGreedy(c, params, [2, 9], 4), [10, 0, 1, 2]);
  assert.deepEqual(referenceGenerateGreedy(c, params, [3], 6, [6]), [4, 5, 6]);
  assert.deepEqual(referenceGenerateGreedy(c, params, [3], 0), []);

  // on a real random model, each generated token is the argmax of the last row of the full recomputation
  const g = gqaTied;
  const gp = randomParams(g, 62);
  const prompt = [1, 2, 3];
  const out = referenceGenerateGreedy(g, gp, prompt, 5);
  assert.equal(out.length, 5);
  const seq = prompt.slice();
  for (const tok of out) {
    const last = referenceLogits(g, gp, seq).at(-1)!;
    assert.equal(tok, last.indexOf(Math.max(...last)));
    seq.push(tok);
  }
});

test('bad inputs are rejected with a message naming the problem', () => {
  const c = gqaTied;
  const p = randomParams(c, 1);
  assert.throws(() => referenceForward(c, p.subarray(1), [1, 2]), /params has/);
  assert.throws(() => referenceForward(c, p, [1, c.vocabSize]), /ids\[1\]/);
  assert.throws(() => referenceForward(c, p, [1, -1]), /ids\[1\]/);
  assert.throws(() => referenceForward(c, p, []), /empty/);
  assert.throws(() => referenceForward({ ...c, ropeInvFreq: new Float32Array(1) }, p, [1]), /ropeInvFreq/);
  // one token is valid and yields no predictions
  const one = referenceForward(c, p, [4]);
  assert.equal(one.logprobs.length, 0);
  assert.equal(one.entropy.length, 0);
});

test('(e) centralDifferenceGrad matches an analytic gradient and leaves params untouched', () => {
  const f = (p: Float64Array) => Math.sin(p[0] * p[1]) + p[2] ** 3 - 2 * p[3] * p[2] + Math.exp(p[4]);
  const grad = (p: number[]) => [
    Math.cos(p[0] * p[1]) * p[1],
    Math.cos(p[0] * p[1]) * p[0],
    3 * p[2] ** 2 - 2 * p[3],
    -2 * p[2],
    Math.exp(p[4]),
  ];
  const p = Float64Array.of(0.7, -1.3, 0.4, 2.2, -0.5);
  const before = p.slice();
  const fd = centralDifferenceGrad(f, p, [0, 1, 2, 3, 4]);
  const g = grad(Array.from(p));
  for (let i = 0; i < 5; i++) close(fd[i], g[i], 1e-9, `d/dp${i}`);
  assert.deepEqual(p, before);
  // a subset and a float32 input
  const fd32 = centralDifferenceGrad((q) => q[1] * q[1], Float32Array.of(1, 3), [1], 1e-3);
  close(fd32[0], 6, 1e-12, 'quadratic is exact');
  assert.throws(() => centralDifferenceGrad(f, p, [5]), /index 5/);
});

test('(e) finite differences through the reference match the analytic lm_head gradient', () => {
  // With zeroed layer outputs, logprob_t = h_t . W[target] - lse(h_t W^T), so
  // d sum_t logprob_t / dW[v, i] = sum_t (1[v = target_t] - p_tv) h_ti.
  const c = mhaUntied;
  const params = zeroLayerOutputs(c, randomParams(c, 71));
  const ids = [1, 4, 4, 9, 0];
  const head = tensorLayout(c).find((t) => t.name === 'lm_head.weight')!;
  const indices = sampleTensorIndices([head], 12, 3);
  const f = (p: Float64Array) => referenceForward(c, p, ids).logprobs.reduce((s, x) => s + x, 0);
  const fd = centralDifferenceGrad(f, params, indices);
  const { vec, mat } = named(c, params);
  const E = mat('model.embed_tokens.weight'),
    W = mat('lm_head.weight'),
    g = vec('model.norm.weight');
  indices.forEach((idx, k) => {
    const v = Math.floor((idx - head.offset) / c.hiddenSize),
      i = (idx - head.offset) % c.hiddenSize;
    let analytic = 0;
    for (let t = 0; t < ids.length - 1; t++) {
      const e = E[ids[t]];
      const rms = Math.sqrt(e.reduce((s, x) => s + x * x, 0) / e.length + c.rmsNormEps);
      const h = e.map((x, j) => (x / rms) * g[j]);
      const logits = W.map((row) => row.reduce((s, w, j) => s + w * h[j], 0));
      const lse = Math.log(logits.reduce((s, z) => s + Math.exp(z), 0));
      analytic += ((v === ids[t + 1] ? 1 : 0) - Math.exp(logits[v] - lse)) * h[i];
    }
    close(fd[k], analytic, 1e-8, describeIndex([head], idx));
  });
});

test('sampleTensorIndices covers every tensor deterministically; describeIndex names them', () => {
  for (const c of Object.values(TINY_CONFIGS)) {
    const layout = tensorLayout(c);
    const idx = sampleTensorIndices(layout, 4, 99);
    assert.deepEqual(idx, sampleTensorIndices(layout, 4, 99));
    assert.equal(new Set(idx).size, idx.length, 'distinct');
    assert.deepEqual(
      idx,
      idx.slice().sort((a, b) => a - b),
      'sorted',
    );
    for (const t of layout) {
      const mine = idx.filter((i) => i >= t.offset && i < t.offset + t.size);
      assert.equal(mine.length, Math.min(4, t.size), t.name);
      assert.ok(mine.includes(t.offset) && mine.includes(t.offset + t.size - 1), `${t.name} boundaries`);
    }
  }
  const layout = tensorLayout(gqaTied);
  assert.equal(describeIndex(layout, 0), 'model.embed_tokens.weight[0,0]');
  assert.equal(describeIndex(layout, 17), 'model.embed_tokens.weight[1,1]');
  const q = layout.find((t) => t.name === 'model.layers.1.self_attn.q_proj.weight')!;
  assert.equal(describeIndex(layout, q.offset + 2 * 16 + 5), 'model.layers.1.self_attn.q_proj.weight[2,5]');
  assert.match(describeIndex(layout, parameterCount(gqaTied)), /outside/);
});
