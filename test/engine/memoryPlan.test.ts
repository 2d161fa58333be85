import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.ts';
import { assertMemoryFits, availableMemory, estimateMemory, formatBytes } from '../../src/engine/memoryPlan.ts';
import { parameterCount, tensorLayout } from '../../src/engine/types.ts';
import { loraLayout, resolveLora } from '../../src/engine/lora.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS } from '../support/tinyConfigs.ts';

test('estimateMemory: hand count for gqaTied (vocab 13, hidden 16, inter 24, 2 layers, 4 heads, 2 kv heads, head_dim 4)', () => {
  const c = TINY_CONFIGS.gqaTied;
  // embed 13*16 = 208; per layer: norms 2*16, q 16*16, k 8*16, v 8*16, o 16*16, mlp 3*24*16 = 1952; final norm 16
  const params = 208 + 2 * 1952 + 16;
  const e = estimateMemory(c, { training: true, reference: true, batchTokens: 10 });
  assert.equal(e.weights, params * 4);
  assert.equal(e.gradients, params * 4);
  assert.equal(e.optimizer, 2 * params * 4);
  assert.equal(e.reference, params * 4);
  // Per token and layer: x, ln1, xMid, ln2 (4*16) + 2 rstd + q, att, qPre (3*16) + k, v, kPre, one spare (4*8)
  // + 2 per head (lse, qRstd) * 4 + 2 kRstd + gate, up, act (3*24) = 228; both layers kept for backward, then the
  // final norm (2*16 + 1) and the logits (13); backward scratch 2*16 + 3*16 + 3*8 + 3*24 = 176.
  assert.equal(e.activations, 10 * (228 * 2 + 33 + 13 + 176) * 4);
  assert.equal(e.kvCache, 0);
  assert.equal(e.total, 5 * params * 4 + e.activations);
  // A 16-bit reference copy: 2 bytes a parameter.
  assert.equal(estimateMemory(c, { training: true, reference: 'bf16' }).reference, params * 2);
  assert.equal(estimateMemory(c, { training: true, reference: 'f32' }).reference, params * 4);
  const inf = estimateMemory(c, { batchTokens: 10, sampling: { sequences: 3, positions: 20 } });
  assert.equal(inf.activations, 10 * (228 + 33 + 13) * 4);
  // keys and values of 2 layers x 3 sequences x 20 positions x 8, plus each row's logits and sampling weights
  assert.equal(inf.kvCache, 2 * 2 * 3 * 20 * 8 * 4 + 3 * 13 * 8);
  assert.equal(inf.gradients + inf.optimizer + inf.reference, 0);
  // Gradient checkpointing: one layer slot (228) plus layer 1's input (16; layer 0's is the slot's), the same final
  // norm, logits and scratch.
  const ckpt = estimateMemory(c, { training: true, gradientCheckpointing: true, batchTokens: 10 });
  assert.equal(ckpt.activations, 10 * (228 + 16 + 33 + 13 + 176) * 4);
  // The option means nothing without training.
  assert.equal(estimateMemory(c, { gradientCheckpointing: true, batchTokens: 10 }).activations, inf.activations);
  // A head of 4 rows holds 4 rows of 13 logits, whatever the batch.
  const chunked = estimateMemory(c, { training: true, headChunkRows: 4, batchTokens: 10 });
  assert.equal(chunked.activations, (10 * (228 * 2 + 33 + 176) + 4 * 13) * 4);
});

test('estimateMemory: a Qwen2.5-0.5B shape holds 110 rows of logits (64 MiB / (151936 * 4 bytes)), not the batch', () => {
  const q = {
    ...TINY_CONFIGS.gqaTied,
    vocabSize: 151936,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
  };
  // Per token and layer: 4*896 + 2 + 3*896 (q, att, qPre) + 4*128 (k, v, kPre, spare) + 2*14 (lse, qRstd)
  // + 2 (kRstd) + 3*4864 = 21408;
  // final norm 2*896 + 1 = 1793; backward scratch 2*896 + 3*896 + 3*128 + 3*4864 = 19456.
  const N = 4096;
  const full = estimateMemory(q, { training: true, batchTokens: N });
  assert.equal(full.activations, (N * (21408 * 24 + 1793 + 19456) + 110 * 151936) * 4);
  // Checkpointing: one slot and 23 layer inputs of 896.
  const ckpt = estimateMemory(q, { training: true, gradientCheckpointing: true, batchTokens: N });
  assert.equal(ckpt.activations, (N * (21408 + 23 * 896 + 1793 + 19456) + 110 * 151936) * 4);
  // 8.83 GB of activations for 4096 tokens become 1.10 GB.
  assert.ok(full.activations > 8.8e9 && ckpt.activations < 1.11e9, `${full.activations} ${ckpt.activations}`);
});

test('assertMemoryFits: one line with the parts, the memory there is, and what would fit', () => {
  const c = TINY_CONFIGS.gqaTied;
  const use = { training: true, batchTokens: 1000 };
  const e = estimateMemory(c, use);
  assert.doesNotThrow(() => assertMemoryFits(c, use, 'm', e.total));
  const oneLine = (fn: () => void, pattern: RegExp) =>
    assert.throws(
      fn,
      (err: Error) => err instanceof AhaError && pattern.test(err.message) && !err.message.includes('\n'),
    );
  // Room for everything but a tenth of the activations: a smaller batch fits, and the message says how small.
  const room = e.total - e.activations / 10;
  const perToken = e.activations / 1000;
  const fits = Math.floor((room - (e.total - e.activations)) / perToken);
  oneLine(
    () => assertMemoryFits(c, use, 'm', room),
    new RegExp(
      `out of memory: m needs .*weights .*gradients .*AdamW state .*activations .*a smaller batch would fit \\(at most about ${fits} tokens`,
    ),
  );
  // Inference fits (weights + one token's activations), training (three more copies of the weights) does not.
  const one = { training: true, batchTokens: 1 };
  oneLine(() => assertMemoryFits(c, one, 'm', 2 * e.weights), /inference fits, full training does not/);
  // The weights alone do not fit.
  oneLine(() => assertMemoryFits(c, {}, 'm', e.weights - 1), /the float32 weights alone do not fit/);
});

test('a model larger than the machine is a one-line error from the engine, before any allocation', () => {
  const huge = { ...TINY_CONFIGS.gqaTied, vocabSize: 2 ** 30, hiddenSize: 2 ** 16, intermediateSize: 2 ** 16 };
  assert.throws(
    () => new Model(huge),
    (e: Error) =>
      e instanceof AhaError &&
      /out of memory: the weights \(\d+ float32 parameters\) needs [\d.]+ GB, [\d.]+ GB available/.test(e.message) &&
      !e.message.includes('\n'),
  );
});

test('aha logprobs on a checkpoint larger than the machine: exit 1, one line, nothing allocated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aha-huge-'));
  try {
    // A 72B-parameter Qwen2 shape; its weights file is sparse (headers only, the rest a hole), so it costs no disk.
    const raw = {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      vocab_size: 152064,
      hidden_size: 8192,
      intermediate_size: 29568,
      num_hidden_layers: 80,
      num_attention_heads: 64,
      num_key_value_heads: 8,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: false,
      hidden_act: 'silu',
    };
    const { engine } = parseHfConfig(raw, 'test');
    const m = join(dir, 'm');
    mkdirSync(m);
    writeFileSync(join(m, 'config.json'), JSON.stringify(raw));
    let off = 0;
    const entries = tensorLayout(engine).map((t) => {
      const e = `${JSON.stringify(t.name)}:{"dtype":"BF16","shape":${JSON.stringify(t.shape)},"data_offsets":[${off},${off + t.size * 2}]}`;
      off += t.size * 2;
      return e;
    });
    const header = Buffer.from(`{${entries.join(',')}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const fd = openSync(join(m, 'model.safetensors'), 'w');
    writeSync(fd, len);
    writeSync(fd, header);
    ftruncateSync(fd, 8 + header.length + off);
    closeSync(fd);
    writeFileSync(join(dir, 'in.jsonl'), '{"ids":[1,2,3]}\n');
    const r = spawnSync(process.execPath, ['bin/aha.js', 'logprobs', '--model', m, '--input', join(dir, 'in.jsonl')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    // Inference keeps the checkpoint's bf16: 2 bytes a parameter.
    const m16 =
      /^aha: out of memory: .* needs [\d.]+ GB \(weights ([\d.]+) GB\), [\d.]+ GB available; the weights alone do not fit/.exec(
        lines[0],
      );
    assert.ok(m16, lines[0]);
    assert.equal(`${m16[1]} GB`, formatBytes(parameterCount(engine) * 2));
    assert.ok(availableMemory() > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('16-bit weights and LoRA: weights at 2 bytes, gradients and AdamW for the adapters only, no reference copy', () => {
  const c = TINY_CONFIGS.allFeatures;
  const lora = resolveLora({ r: 4, target_modules: ['q_proj', 'down_proj'] });
  const l = loraLayout(c, lora);
  const A = l[l.length - 1].offset + l[l.length - 1].size;
  const P = parameterCount(c);
  const e = estimateMemory(c, { weights: 'bf16', lora, training: true, reference: true });
  assert.equal(e.weights, 2 * P);
  assert.equal(e.adapters, 4 * A);
  assert.equal(e.gradients, 4 * A);
  assert.equal(e.optimizer, 8 * A);
  assert.equal(e.reference, 0, 'the base with the adapters off is the reference');
  // Activations: each layer slot gains 7 adapter products of r floats per token; backward's scratch r more.
  const N = 10;
  const without = estimateMemory(c, { weights: 'bf16', training: true, batchTokens: N }).activations;
  const withLora = estimateMemory(c, { weights: 'bf16', lora, training: true, batchTokens: N }).activations;
  assert.equal(withLora - without, 4 * (N * 7 * 4 * c.numLayers + N * 4));
  // The model the estimate describes holds those buffers.
  const m = new Model(c, { weights: 'bf16', lora });
  assert.equal(m.numTrainable, A);
  assert.equal(m.numParams, P);
});
