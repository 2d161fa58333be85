/**
 * Checkpoints in the exact tensor names and shapes of Qwen2.5, Qwen3, Llama-3.2 and SmolLM2 (layer counts cut to
 * two, which changes no tensor's shape), written as BF16 shards with an index as the Hub ships them: they load as
 * 16-bit weights bit for bit, and score as float32 math on the same weights does (the engine's float32 path, and the
 * float64 reference for the smaller ones).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MODEL_SHAPES } from '../../src/model/modelShapes.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { tensorLayout } from '../../src/engine/types.ts';
import { writeSafetensors, float32ToBfloat16Bits } from '../../src/model/safetensors.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { mulberry32 } from '../../src/data/rng.ts';
import { referenceForward } from '../support/referenceTransformer.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-shapes-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Writes a 2-shard BF16 checkpoint of `shape` with `layers` layers; returns its directory and the float values. */
function writeCheckpoint(name: string, over: Record<string, unknown>): { dir: string; values: Float32Array } {
  const config = { ...MODEL_SHAPES[name], num_hidden_layers: 2, ...over };
  const { engine } = parseHfConfig(config, name);
  const layout = tensorLayout(engine);
  const total = layout[layout.length - 1].offset + layout[layout.length - 1].size;
  const values = new Float32Array(total);
  const rand = mulberry32(7);
  for (const t of layout) {
    const v = values.subarray(t.offset, t.offset + t.size);
    if (t.name.endsWith('norm.weight')) for (let i = 0; i < v.length; i++) v[i] = 1 + 0.2 * (rand() - 0.5);
    else for (let i = 0; i < v.length; i++) v[i] = 0.08 * (rand() - 0.5);
  }
  // What the checkpoint holds: the values rounded to bf16 (writeSafetensors rounds; the test keeps the rounded copy).
  const bits = float32ToBfloat16Bits(values);
  const u32 = new Uint32Array(values.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16;
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  // Embeddings in the first shard, the rest in the second, as sharded Hub checkpoints split by size.
  const shards = [
    layout.filter((t) => t.name === 'model.embed_tokens.weight'),
    layout.filter((t) => t.name !== 'model.embed_tokens.weight'),
  ];
  const weightMap: Record<string, string> = {};
  shards.forEach((ts, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(
      join(dir, file),
      ts.map((t) => ({ name: t.name, shape: t.shape, data: values.subarray(t.offset, t.offset + t.size) })),
      { dtype: 'BF16' },
    );
    for (const t of ts) weightMap[t.name] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return { dir, values };
}

const CASES: [string, Record<string, unknown>, boolean][] = [
  ['qwen2.5-0.5b', {}, true],
  ['qwen3-0.6b', {}, true],
  ['smollm2-360m', { tie_word_embeddings: false }, true],
  ['llama-3.2-1b', {}, false],
];

for (const [name, over, withReference] of CASES) {
  test(`${name}${over.tie_word_embeddings === false ? ' (untied)' : ''}: BF16 shards load as bf16 and score as float32 math`, async () => {
    const { dir, values } = writeCheckpoint(name, over);
    const half = loadPretrained(dir);
    assert.equal(half.model.weightsDtype, 'bf16', 'inference keeps the checkpoint type');
    const full = loadPretrained(dir, { weights: 'f32' });
    assert.deepEqual(full.model.params, values, 'float32 load widens the stored bits exactly');
    const bits = float32ToBfloat16Bits(values);
    const got = half.model.halfView(0, half.model.numParams);
    for (let i = 0; i < bits.length; i += 9973) assert.equal(got[i], bits[i], `bits at ${i}`);
    const V = full.model.config.vocabSize;
    const seq = [1, 17, V - 1, 4242 % V, 5, 99, 3];
    const a = await half.model.forward([seq]);
    const b = await full.model.forward([seq]);
    a.logprobs[0].forEach((x, i) =>
      assert.ok(Math.abs(x - b.logprobs[0][i]) < 1e-4, `pos ${i}: ${x} vs ${b.logprobs[0][i]}`),
    );
    if (withReference) {
      const ref = referenceForward(full.model.config, values, seq);
      a.logprobs[0].forEach((x, i) =>
        assert.ok(Math.abs(x - ref.logprobs[i]) < 1e-4, `ref pos ${i}: ${x} vs ${ref.logprobs[i]}`),
      );
    }
  });
}
