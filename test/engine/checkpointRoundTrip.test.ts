import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel } from '../../src/model/initModel.ts';
import { loadPretrained, savePretrained } from '../../src/model/pretrained.ts';
import { AhaError } from '../../src/errors.ts';

test('save then load is bit-exact, and the reloaded model computes the same log-probs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aha-rt-'));
  try {
    const { model } = initModel({ config: 'tiny', tokenizer: 'chars', out: join(dir, 'a'), seed: 3 });
    // train one step so that the weights are not just the initialisation
    const seqs = [
      [5, 9, 13, 7, 22, 40],
      [3, 8, 8, 2],
    ];
    await model.forward(seqs, { train: true });
    await model.backward(seqs.map((s) => new Float32Array(s.length - 1).fill(-0.1)));
    await model.step({ lr: 1e-2 });
    const a = loadPretrained(join(dir, 'a'));
    a.model.params.set(model.params);
    savePretrained(a, join(dir, 'b'), { tokenizerFrom: join(dir, 'a') });
    const b = loadPretrained(join(dir, 'b'));
    assert.equal(
      Buffer.compare(
        Buffer.from(b.model.params.buffer, b.model.params.byteOffset, b.model.params.byteLength),
        Buffer.from(model.params.buffer, model.params.byteOffset, model.params.byteLength),
      ),
      0,
    );
    const la = await model.forward(seqs);
    const lb = await b.model.forward(seqs);
    assert.deepEqual(
      lb.logprobs.map((x) => Array.from(x)),
      la.logprobs.map((x) => Array.from(x)),
    );
    assert.deepEqual(
      b.tokenizer!.encode('12+3', { addSpecialTokens: false }),
      a.tokenizer!.encode('12+3', { addSpecialTokens: false }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated or mis-shaped checkpoint is a one-line error naming the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aha-bad-'));
  try {
    initModel({ config: 'tiny', tokenizer: 'chars', out: join(dir, 'm'), seed: 1 });
    const st = join(dir, 'm', 'model.safetensors');
    const bytes = readFileSync(st);
    writeFileSync(st, bytes.subarray(0, bytes.length - 1000));
    assert.throws(
      () => loadPretrained(join(dir, 'm')),
      (e: Error) =>
        e instanceof AhaError && /truncated|past the end|bytes/.test(e.message) && !e.message.includes('\n'),
    );
    const cfgPath = join(dir, 'm', 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(st, bytes);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, hidden_size: 64 }));
    assert.throws(
      () => loadPretrained(join(dir, 'm')),
      (e: Error) => e instanceof AhaError && /shape/.test(e.message),
    );
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, architectures: ['GPT2LMHeadModel'] }));
    assert.throws(
      () => loadPretrained(join(dir, 'm')),
      (e: Error) => e instanceof AhaError && /GPT2LMHeadModel/.test(e.message),
    );
    const { num_attention_heads: _h, ...noHeads } = cfg;
    writeFileSync(cfgPath, JSON.stringify(noHeads));
    assert.throws(
      () => loadPretrained(join(dir, 'm')),
      (e: Error) => e instanceof AhaError && /num_attention_heads/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
