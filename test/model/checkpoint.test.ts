import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhaError } from '../../src/errors.ts';
import { parameterCount, tensorLayout } from '../../src/engine/types.ts';
import { loadModelDir, saveModelDir } from '../../src/model/checkpoint.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { float32ToBfloat16Bits, readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-ckpt-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const newDir = (tag: string) => join(tmp, `${seq++}-${tag}`);

const TINY: Record<string, Record<string, unknown>> = {
  qwen2: {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: 37,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'bfloat16',
  },
  llama: {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 29,
    hidden_size: 12,
    intermediate_size: 20,
    num_hidden_layers: 2,
    num_attention_heads: 3,
    num_key_value_heads: 1,
    head_dim: 8,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: false,
    attention_bias: true,
    bos_token_id: 0,
    eos_token_id: [3, 4],
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    max_position_embeddings: 1024,
  },
  qwen3: {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    vocab_size: 31,
    hidden_size: 16,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 6,
    tie_word_embeddings: true,
  },
};

function randomParams(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 0.2;
  }
  return a;
}
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function expectAha(fn: () => void, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AhaError, `expected AhaError, got ${e}`);
    assert.match(e.message, re);
    return true;
  });
}

/** Save a tiny model of the given family with random weights, return dir, config and params. */
function saved(family: string, opts: { dtype?: 'F32' | 'BF16' } = {}) {
  const { engine, hf } = parseHfConfig(TINY[family], `${family}/config.json`);
  const params = randomParams(parameterCount(engine), family.length * 7919);
  const dir = newDir(family);
  saveModelDir(dir, { config: engine, hf, params, dtype: opts.dtype });
  return { dir, engine, hf, params };
}

test('save then load is bit-exact in F32 for Qwen2, Llama (untied, biases, llama3 rope) and Qwen3', () => {
  const dirs: Record<string, string> = {};
  for (const family of Object.keys(TINY)) {
    const { dir, engine, hf, params } = saved(family);
    dirs[family] = dir;
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
    const m = loadModelDir(dir);
    assert.deepEqual(m.config, engine, family);
    assert.deepEqual({ ...m.hf, torchDtype: null }, { ...hf, torchDtype: null }, family);
    assert.equal(m.hf.torchDtype, 'float32');
    assert.deepEqual(m.layout, tensorLayout(engine));
    assert.deepEqual(m.weightFiles, [join(dir, 'model.safetensors')]);
    const target = new Float32Array(parameterCount(m.config));
    m.loadParams(target);
    assert.deepEqual(bitsOf(target), bitsOf(params), family);
    // Every layout tensor is in the file under its HF name and shape.
    const header = readSafetensorsHeader(join(dir, 'model.safetensors'));
    for (const t of m.layout) assert.deepEqual(header.tensors.get(t.name)?.shape, t.shape, t.name);
    assert.equal(header.tensors.size, m.layout.length);
    assert.throws(() => m.loadParams(new Float32Array(3)), /target has 3 floats/);
  }
  const llama = JSON.parse(readFileSync(join(dirs.llama, 'config.json'), 'utf8'));
  assert.equal(llama.attention_bias, true);
  assert.deepEqual(llama.eos_token_id, [3, 4]);
  assert.equal(llama.rope_scaling.rope_type, 'llama3');
});

test('BF16 save stores round-to-nearest-even values and says so in config.json', () => {
  const { dir, params } = saved('qwen2', { dtype: 'BF16' });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.torch_dtype, 'bfloat16');
  const header = readSafetensorsHeader(join(dir, 'model.safetensors'));
  assert.ok([...header.tensors.values()].every((e) => e.dtype === 'BF16'));
  const m = loadModelDir(dir);
  const target = new Float32Array(params.length);
  m.loadParams(target);
  const want = Array.from(float32ToBfloat16Bits(params), (b) => (b << 16) >>> 0);
  assert.deepEqual(bitsOf(target), want);
  // Independent check of the rounding on a few values: the nearest bf16 (8 significant bits) to x.
  for (let i = 0; i < 50; i++) {
    const x = params[i];
    const e = Math.floor(Math.log2(Math.abs(x)));
    const q = 2 ** (e - 7);
    const lo = Math.floor(x / q) * q,
      hi = lo + q;
    const nearest = x - lo < hi - x ? lo : hi - x < x - lo ? hi : (lo / q) % 2 === 0 ? lo : hi;
    assert.equal(target[i], nearest, `param ${i}: ${x}`);
  }
});

test('missing config.json, missing weights, missing directory: errors name what is missing', () => {
  expectAha(() => loadModelDir(join(tmp, 'does-not-exist')), /does-not-exist: model directory not found/);
  const { dir } = saved('qwen3');
  renameSync(join(dir, 'model.safetensors'), join(dir, 'weights.bak'));
  expectAha(() => loadModelDir(dir), /: no model\.safetensors or model\.safetensors\.index\.json$/);
  renameSync(join(dir, 'weights.bak'), join(dir, 'model.safetensors'));
  loadModelDir(dir);
  rmSync(join(dir, 'config.json'));
  expectAha(() => loadModelDir(dir), /: config\.json not found$/);
  writeFileSync(join(dir, 'config.json'), '{"model_type": "qwen3",');
  expectAha(() => loadModelDir(dir), /config\.json: invalid JSON \(/);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY.qwen3, num_hidden_layers: 'two' }));
  expectAha(() => loadModelDir(dir), /config\.json: num_hidden_layers must be a positive integer \(got "two"\)/);
});

test('weights that do not match config.json fail in loadModelDir, before any engine exists', () => {
  const { dir } = saved('qwen2');
  // One layer more in config.json than in the weights.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY.qwen2, num_hidden_layers: 3 }));
  expectAha(
    () => loadModelDir(dir),
    /: missing tensor model\.layers\.2\.input_layernorm\.weight, model\.layers\.2\.self_attn\.q_proj\.weight, model\.layers\.2\.self_attn\.q_proj\.bias and \d+ more$/,
  );
  // One layer fewer: the extra layer's tensors are unexpected.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY.qwen2, num_hidden_layers: 1 }));
  expectAha(() => loadModelDir(dir), /unexpected tensors model\.layers\.1\./);
  // A different intermediate size: wrong shape, both shapes named.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY.qwen2, intermediate_size: 32 }));
  expectAha(
    () => loadModelDir(dir),
    /model\.safetensors: tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[24, 16\], expected \[32, 16\]/,
  );
});

test('sharded model directories load through the index', () => {
  const { engine, hf } = parseHfConfig(TINY.llama, 'config.json');
  const params = randomParams(parameterCount(engine), 99);
  const dir = newDir('sharded');
  saveModelDir(dir, { config: engine, hf, params });
  rmSync(join(dir, 'model.safetensors'));
  const layout = tensorLayout(engine);
  const shardOf = (name: string) => (name.startsWith('model.layers.1.') || name === 'lm_head.weight' ? 2 : 1);
  const weightMap: Record<string, string> = {};
  for (const k of [1, 2]) {
    const file = `model-0000${k}-of-00002.safetensors`;
    const mine = layout.filter((t) => shardOf(t.name) === k);
    writeSafetensors(
      join(dir, file),
      mine.map((t) => ({ name: t.name, shape: t.shape, data: params.subarray(t.offset, t.offset + t.size) })),
      { dtype: 'F32' },
    );
    for (const t of mine) weightMap[t.name] = file;
  }
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: params.length * 4 }, weight_map: weightMap }),
  );
  const m = loadModelDir(dir);
  assert.equal(m.weightFiles.length, 2);
  const target = new Float32Array(params.length);
  m.loadParams(target);
  assert.deepEqual(bitsOf(target), bitsOf(params));
});

test('tokenizer files are copied, generation_config.json copied or written, extra files written', () => {
  const src = newDir('tok-src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'tokenizer.json'), '{"model": {}}');
  writeFileSync(join(src, 'tokenizer_config.json'), '{"eos_token": "<|im_end|>"}');
  writeFileSync(join(src, 'generation_config.json'), '{"temperature": 0.7}');
  writeFileSync(join(src, 'unrelated.txt'), 'no');
  const { engine, hf } = parseHfConfig(TINY.qwen2, 'config.json');
  const params = randomParams(parameterCount(engine), 5);
  const dir = newDir('tok-dst');
  saveModelDir(dir, {
    config: engine,
    hf,
    params,
    tokenizerFrom: src,
    extraFiles: { 'training_args.json': '{"lr": 1e-6}\n', 'tokenizer_config.json': '{"eos_token": "x"}' },
  });
  assert.deepEqual(readdirSync(dir).sort(), [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
    'training_args.json',
  ]);
  assert.equal(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), '{"model": {}}');
  assert.equal(readFileSync(join(dir, 'generation_config.json'), 'utf8'), '{"temperature": 0.7}');
  assert.equal(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'), '{"eos_token": "x"}'); // extraFiles win
  assert.equal(readFileSync(join(dir, 'training_args.json'), 'utf8'), '{"lr": 1e-6}\n');
  // Without a source, generation_config.json carries the token ids.
  const plain = saved('llama').dir;
  assert.deepEqual(JSON.parse(readFileSync(join(plain, 'generation_config.json'), 'utf8')), {
    bos_token_id: 0,
    eos_token_id: [3, 4],
  });
  // No temp files left behind by the atomic writes.
  assert.ok(readdirSync(dir).every((f) => !f.includes('.tmp-')));

  expectAha(
    () => saveModelDir(newDir('bad'), { config: engine, hf, params, extraFiles: { '../escape.json': '{}' } }),
    /extra file name "\.\.\/escape\.json" must be a plain file name/,
  );
  expectAha(
    () => saveModelDir(newDir('bad'), { config: engine, hf, params, tokenizerFrom: join(tmp, 'nope') }),
    /nope: tokenizer directory not found/,
  );
  assert.throws(
    () => saveModelDir(newDir('bad'), { config: engine, hf, params: params.subarray(1) }),
    /params has \d+ floats/,
  );
  assert.ok(!existsSync(join(tmp, 'escape.json')));
});

test('saving over an existing model replaces it', () => {
  const { dir, engine, hf } = saved('qwen3');
  const params2 = randomParams(parameterCount(engine), 4242);
  saveModelDir(dir, { config: engine, hf, params: params2 });
  const target = new Float32Array(params2.length);
  loadModelDir(dir).loadParams(target);
  assert.deepEqual(bitsOf(target), bitsOf(params2));
});
