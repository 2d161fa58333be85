// A model whose float32 parameters exceed 4 GiB (Node's limit on one external ArrayBuffer): it used to abort the
// process with a double free while loading. Qwen2.5-1.5B's exact shape with 20 of its 28 layers: 1.17B parameters,
// 4.68 GB as float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.ts';
import { availableMemory, formatBytes } from '../../src/engine/memoryPlan.ts';
import { MAX_VIEW_FLOATS, parameterCount, tensorChunks, type TensorInfo } from '../../src/engine/types.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { mulberry32 } from '../support/tinyConfigs.ts';
import { referenceForward } from '../support/referenceTransformer.ts';

const QWEN25_15B_20_LAYERS = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 151936,
  hidden_size: 1536,
  intermediate_size: 8960,
  num_hidden_layers: 20,
  num_attention_heads: 12,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

const { engine: config, hf } = parseHfConfig(QWEN25_15B_20_LAYERS, 'test');
const bytes = parameterCount(config) * 4;
// Two copies of the weights (the model and its reload) plus the reference's float64 copy of the embeddings.
const needed = 2 * bytes + 3e9;
const skip =
  availableMemory() < needed
    ? `needs ${formatBytes(needed)} of memory, the machine has ${formatBytes(availableMemory())} available`
    : false;
if (skip) console.log(`# skipped: a >4 GiB model ${skip}`);

/** Uniform(-a, a) weights, norms near 1; seeded, chunk by chunk through the engine's views. */
function fillRandom(m: Model, seed: number): void {
  const r = mulberry32(seed);
  const a = 0.04;
  const store = m.store('params');
  for (const t of m.layout) {
    const norm = t.name.endsWith('norm.weight');
    for (const v of tensorChunks(store, t)) {
      for (let i = 0; i < v.length; i++) v[i] = norm ? 1 + 0.2 * (r() - 0.5) : a * (2 * r() - 1);
    }
  }
}

test('a model over 4 GiB of float32 parameters loads, matches the reference and round-trips', { skip }, async () => {
  assert.ok(bytes > 2 ** 32, `the test model must exceed 4 GiB (has ${bytes} bytes)`);
  assert.ok(parameterCount(config) > MAX_VIEW_FLOATS);
  const dir = mkdtempSync(join(tmpdir(), 'aha-large-'));
  try {
    const a = new Model(config);
    fillRandom(a, 11);
    // One view cannot hold it: the error says what to use instead, and nothing crashes.
    assert.throws(() => a.params, /over one JavaScript view; use tensorView/);
    assert.equal([...a.chunks('params')].length, Math.ceil(parameterCount(config) / MAX_VIEW_FLOATS));

    const seqs = [
      [151643, 9707, 11, 1879],
      [17, 488, 220],
    ];
    const got = await a.forward(seqs);
    const byName = (t: TensorInfo) => a.tensorView(t);
    seqs.forEach((s, i) => {
      const ref = referenceForward(config, byName, s).logprobs;
      for (let t = 0; t < ref.length; t++) {
        const d = Math.abs(got.logprobs[i][t] - ref[t]);
        assert.ok(d < 2e-4, `sequence ${i} position ${t}: engine ${got.logprobs[i][t]}, reference ${ref[t]}`);
      }
    });

    saveModelDir(join(dir, 'm'), { config, hf, params: a.store('params') });
    const b = loadPretrained(join(dir, 'm')).model;
    const sa = a.store('params'),
      sb = b.store('params');
    for (const t of a.layout) {
      const ca = tensorChunks(sa, t),
        cb = tensorChunks(sb, t);
      ca.forEach((x, k) => {
        const y = cb[k];
        assert.equal(
          Buffer.compare(
            Buffer.from(x.buffer, x.byteOffset, x.byteLength),
            Buffer.from(y.buffer, y.byteOffset, y.byteLength),
          ),
          0,
          `${t.name} differs after reload`,
        );
      });
    }
    const again = await b.forward(seqs);
    assert.deepEqual(
      again.logprobs.map((x) => Array.from(x)),
      got.logprobs.map((x) => Array.from(x)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
