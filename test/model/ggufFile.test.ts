import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/data/rng.ts';
import { gguf, writeGgufFile, type GgufTensor } from '../../src/model/gguf/ggufFile.ts';
import { quantizeQ8_0 } from '../../src/model/gguf/q8_0.ts';
import { permuteRopeRows, unpermuteRopeRows, llamaCppTensorName } from '../../src/model/gguf/llamaCppTensors.ts';
import { byteLevelForm, gpt2ByteToUnicode } from '../../src/model/gguf/ggufTokenizer.ts';
import { f16ToNumber, parseGguf } from '../support/ggufModels.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { ggufModelPlan } from '../../src/model/gguf/ggufModelMetadata.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-gguf-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const bytesOf = (x: Float32Array) => [new Uint8Array(x.buffer, x.byteOffset, x.byteLength)];

test('Q8_0 of a known block: d = amax/127 as float16, q = round(x/d)', () => {
  // x_i = (i - 16) / 4: amax 4, d = 4/127 = 0.0314960..., nearest float16 1.0078125 * 2^-5 = 0.031494140625
  // (exponent 10, mantissa 8: bits 0x2808).
  const x = Float32Array.from({ length: 32 }, (_, i) => (i - 16) / 4);
  const b = quantizeQ8_0(x);
  assert.equal(b.length, 34);
  assert.equal(b[0] | (b[1] << 8), 0x2808);
  assert.equal(f16ToNumber(0x2808), 0.031494140625);
  const q = Array.from(new Int8Array(b.buffer, 2, 32));
  // x/d: -4 → -127.007 → -127; -0.25 → -7.94 → -8; 0 → 0; 0.25 → 8; 3.75 → 119.07 → 119; 0.5 → 15.876 → 16.
  assert.equal(q[0], -127);
  assert.equal(q[15], -8);
  assert.equal(q[16], 0);
  assert.equal(q[17], 8);
  assert.equal(q[18], 16);
  assert.equal(q[31], 119);
  for (let i = 0; i < 32; i++) assert.equal(q[i], Math.round(x[i] / 0.031494140625));
  // An all-zero block: scale 0, quants 0.
  assert.deepEqual(Array.from(quantizeQ8_0(new Float32Array(32))), new Array(34).fill(0));
  assert.throws(() => quantizeQ8_0(new Float32Array(40)), /multiple of 32/);
});

test('Q8_0 reconstructs every value within d/2 of its block (random blocks, wide range of scales)', () => {
  const rand = mulberry32(4);
  const x = new Float32Array(32 * 200);
  for (let b = 0; b < 200; b++) {
    const scale = 10 ** (-9 + 11 * rand()); // from blocks whose d is below float16's range to 100
    for (let i = 0; i < 32; i++) x[32 * b + i] = (2 * rand() - 1) * scale;
  }
  const out = quantizeQ8_0(x);
  for (let b = 0; b < 200; b++) {
    const d = f16ToNumber(out[34 * b] | (out[34 * b + 1] << 8));
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[32 * b + i]));
    // The float16 nearest amax/127, or the next one up: within one float16 step (2^-10 relative, 2^-24 subnormal).
    const step = Math.max((amax / 127) * 2 ** -10, 2 ** -24);
    assert.ok(d >= amax / 127 - step / 2 && d <= amax / 127 + step, `block ${b}: d ${d} vs ${amax / 127}`);
    for (let i = 0; i < 32; i++) {
      const q = (out[34 * b + 2 + i] << 24) >> 24;
      assert.ok(Math.abs(x[32 * b + i] - d * q) <= d / 2 + 1e-12 * amax, `block ${b} value ${i}`);
    }
  }
});

test('llama rope permutation: per head, row 2i+j comes from row j·D/2+i; the inverse gives the rows back', () => {
  // One head of dim 4, bias-like rows of length 1: halves [x0 x1 | x2 x3] interleave to x0 x2 x1 x3.
  assert.deepEqual(Array.from(permuteRopeRows(Float32Array.from([0, 1, 2, 3]), 1, 4, 1)), [0, 2, 1, 3]);
  // Two heads of dim 6, rows of length 2 (row r holds [10r, 10r+1]).
  const rows = Float32Array.from({ length: 24 }, (_, k) => 10 * Math.floor(k / 2) + (k % 2));
  const p = permuteRopeRows(rows, 2, 6, 2);
  const order = Array.from({ length: 12 }, (_, r) => p[2 * r] / 10);
  assert.deepEqual(order, [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
  for (let r = 0; r < 12; r++) assert.equal(p[2 * r + 1], p[2 * r] + 1);
  assert.deepEqual(unpermuteRopeRows(p, 2, 6, 2), rows);
  assert.throws(() => permuteRopeRows(new Float32Array(10), 2, 6, 1), /values/);
});

test("llama.cpp's tensor names", () => {
  assert.equal(llamaCppTensorName('model.embed_tokens.weight'), 'token_embd.weight');
  assert.equal(llamaCppTensorName('model.layers.3.self_attn.q_proj.bias'), 'blk.3.attn_q.bias');
  assert.equal(llamaCppTensorName('model.layers.0.self_attn.o_proj.weight'), 'blk.0.attn_output.weight');
  assert.equal(llamaCppTensorName('model.layers.1.self_attn.k_norm.weight'), 'blk.1.attn_k_norm.weight');
  assert.equal(llamaCppTensorName('model.layers.1.post_attention_layernorm.weight'), 'blk.1.ffn_norm.weight');
  assert.equal(llamaCppTensorName('model.layers.1.mlp.down_proj.weight'), 'blk.1.ffn_down.weight');
  assert.equal(llamaCppTensorName('model.norm.weight'), 'output_norm.weight');
  assert.equal(llamaCppTensorName('lm_head.weight'), 'output.weight');
  assert.throws(() => llamaCppTensorName('score.weight'));
});

test("GPT-2's byte characters: printable bytes stand for themselves, the others from U+0100 on", () => {
  const t = gpt2ByteToUnicode();
  assert.equal(new Set(t).size, 256);
  assert.equal(t[0x41], 'A');
  assert.equal(t[0x20], '\u0120'); // Ġ
  assert.equal(t[0x0a], '\u010a'); // Ċ
  assert.equal(t[0x00], '\u0100');
  assert.equal(t[0x7f], '\u0121'); // the 34th non-printable byte (after 0x00..0x20)
  assert.equal(t[0xad], '\u0143'); // the last one
  assert.equal(byteLevelForm(' é€'), 'Ġ' + 'Ã©' + 'âĤ¬'); // GPT-2's vocabulary spells "€" as "âĤ¬"
});

test('a GGUF file reads back in @huggingface/gguf: every metadata type, reversed dims, aligned offsets, data', async () => {
  const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i - 7.5);
  const b = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
  const tensors: GgufTensor[] = [
    { name: 'a', shape: [3, 5], type: 'F32', data: () => bytesOf(a) },
    { name: 'b', shape: [2, 32], type: 'Q8_0', data: () => [quantizeQ8_0(b)] },
    { name: 'c', shape: [7], type: 'F32', data: () => bytesOf(new Float32Array(7).fill(2)) },
  ];
  const path = join(dir, 'x.gguf');
  writeGgufFile(
    path,
    {
      'general.architecture': gguf.str('llama'),
      'x.u32': gguf.u32(4_000_000_000),
      'x.i32': gguf.i32(-5),
      'x.u64': gguf.u64(2 ** 40),
      'x.f32': gguf.f32(0.5),
      'x.bool': gguf.bool(true),
      'x.strs': gguf.strings(['a b', 'Ġ', '']),
      'x.ints': gguf.i32s([1, -2, 3]),
      'x.floats': gguf.f32s([0.25, -1]),
    },
    tensors,
  );
  assert.deepEqual(readdirSync(dir), ['x.gguf']); // no temporary file left
  const raw = readFileSync(path);
  assert.equal(raw.subarray(0, 4).toString('latin1'), 'GGUF');
  const g = await parseGguf(path);
  assert.equal(g.version, 3);
  const m = g.metadata;
  assert.equal(m['general.alignment'].value, 32);
  assert.equal(m['x.u32'].value, 4_000_000_000);
  assert.equal(m['x.u32'].type, 4);
  assert.equal(m['x.i32'].value, -5);
  assert.equal(m['x.i32'].type, 5);
  assert.equal(Number(m['x.u64'].value), 2 ** 40);
  assert.equal(m['x.u64'].type, 10);
  assert.equal(m['x.f32'].value, 0.5);
  assert.equal(m['x.bool'].value, true);
  assert.deepEqual(m['x.strs'].value, ['a b', 'Ġ', '']);
  assert.deepEqual(m['x.ints'].value, [1, -2, 3]);
  assert.equal(m['x.ints'].subType, 5);
  assert.deepEqual(m['x.floats'].value, [0.25, -1]);
  // ne[0] is the row length; offsets are multiples of 32 (a: 60 bytes → b at 64; b: 68 bytes → c at 64 + 96).
  assert.deepEqual(g.tensors.get('a')!.ne, [5, 3]);
  assert.deepEqual(g.offsets, [0, 64, 160]);
  assert.equal(g.tensorDataOffset % 32, 0);
  assert.deepEqual(Array.from(g.tensors.get('a')!.values), Array.from(a));
  assert.equal(g.tensors.get('b')!.type, 8);
  const bq = g.tensors.get('b')!;
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(bq.values[i] - b[i]) <= bq.scales![i >> 5] / 2 + 1e-12);
  assert.deepEqual(Array.from(g.tensors.get('c')!.values), new Array(7).fill(2));
  assert.equal(raw.length, g.tensorDataOffset + 160 + 32);
});

test('a tensor whose data does not match its type and shape fails, leaving no file behind', () => {
  const path = join(dir, 'bad.gguf');
  assert.throws(
    () => writeGgufFile(path, {}, [{ name: 't', shape: [4], type: 'F32', data: () => bytesOf(new Float32Array(3)) }]),
    /produced 12 bytes, its F32 data needs 16/,
  );
  assert.throws(() => writeGgufFile(path, {}, [{ name: 't', shape: [2, 20], type: 'Q8_0', data: () => [] }]), /Q8_0/);
  assert.ok(!readdirSync(dir).some((f) => f.includes('bad.gguf')));
});

test('model metadata: Mistral is llama.cpp llama with q/k permuted and its context capped at the sliding window', () => {
  const { engine, hf } = parseHfConfig(
    {
      architectures: ['MistralForCausalLM'],
      vocab_size: 100,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      max_position_embeddings: 32768,
      sliding_window: 4096,
      rope_theta: 1e6,
    },
    'mistral',
  );
  const plan = ggufModelPlan(engine, hf, 'mistral');
  assert.equal(plan.arch, 'llama');
  assert.equal(plan.permuteQK, true);
  assert.equal(plan.ropeFreqs, null);
  assert.equal(plan.metadata['llama.context_length'].value, 4096);
  assert.equal(plan.metadata['llama.attention.head_count_kv'].value, 1);
  assert.equal(plan.metadata['llama.rope.freq_base'].value, 1e6);
  // Linear RoPE scaling is metadata (llama.cpp divides positions by the factor), on any architecture.
  const q = parseHfConfig(
    {
      architectures: ['Qwen2ForCausalLM'],
      vocab_size: 100,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 4,
      rope_scaling: { type: 'linear', factor: 4 },
    },
    'qwen2',
  );
  const qp = ggufModelPlan(q.engine, q.hf, 'qwen2');
  assert.equal(qp.permuteQK, false);
  assert.equal(qp.metadata['qwen2.rope.scaling.type'].value, 'linear');
  assert.equal(qp.metadata['qwen2.rope.scaling.factor'].value, 4);
  assert.equal(qp.metadata['qwen2.context_length'].value, 32768);
});
