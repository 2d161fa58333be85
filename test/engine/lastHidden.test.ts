import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import { tensorLayout } from '../../src/engine/types.ts';
import { float32ToBfloat16Bits } from '../../src/model/safetensors.ts';
import { TINY_CONFIGS, mulberry32, randomParams } from '../support/tinyConfigs.ts';
import { referenceHidden } from '../support/referenceTransformer.ts';

const lengths = [1, 7, 3, 19, 2];

for (const [name, config] of Object.entries(TINY_CONFIGS)) {
  test(`lastHidden equals the float64 reference's final-norm hidden state at each last token (${name})`, async () => {
    const m = new Model(config);
    const params = randomParams(config, 2, 0.3);
    m.params.set(params);
    const r = mulberry32(5);
    const seqs = lengths.map((n) => Array.from({ length: n }, () => Math.floor(r() * config.vocabSize)));
    const h = await m.lastHidden(seqs);
    const C = config.hiddenSize;
    assert.equal(h.length, seqs.length * C);
    seqs.forEach((s, i) => {
      const want = referenceHidden(config, params, s).at(-1)!;
      for (let c = 0; c < C; c++)
        assert.ok(Math.abs(h[i * C + c] - want[c]) < 1e-4, `${name} seq ${i} [${c}]: ${h[i * C + c]} vs ${want[c]}`);
    });
    // Each sequence's result is the one it gets alone (up to the products' float rounding, which depends on rows).
    const alone = await m.lastHidden([seqs[3]]);
    for (let c = 0; c < C; c++) assert.ok(Math.abs(alone[c] - h[3 * C + c]) < 1e-5);
    assert.equal((await m.lastHidden([])).length, 0);
  });
}

test('lastHidden on 16-bit weights equals the reference on the rounded weights', async () => {
  const config = TINY_CONFIGS.qwen2Bias;
  const params = randomParams(config, 3, 0.3);
  const bits = float32ToBfloat16Bits(params);
  const rounded = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer);
  const m = new Model(config, { weights: 'bf16' });
  const store = m.halfStore();
  for (const t of tensorLayout(config)) store(t, 0, t.size).set(bits.subarray(t.offset, t.offset + t.size));
  const seqs = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11], [12]];
  const h = await m.lastHidden(seqs);
  const C = config.hiddenSize;
  seqs.forEach((s, i) => {
    const want = referenceHidden(config, rounded, s).at(-1)!;
    for (let c = 0; c < C; c++) assert.ok(Math.abs(h[i * C + c] - want[c]) < 1e-4, `seq ${i} [${c}]`);
  });
});
