/**
 * `aha export` at the command line: a model directory becomes a .gguf file (read back with @huggingface/gguf), and
 * bad options, unsupported models and an existing --out are one-line errors with exit status 1.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseGguf, randomCheckpoint } from '../support/ggufModels.ts';
import { QWEN2_CHAR_CONFIG, QWEN3_CONFIG } from '../support/ggufConfigs.ts';

const root = resolve(import.meta.dirname, '../..');
const aha = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/aha.js'), ...args], { cwd: root, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'aha-export-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = randomCheckpoint(join(dir, 'm'), QWEN2_CHAR_CONFIG, { tokenizer: 'chars', alphabet: 'abc' }).dir;

test('aha export --format gguf writes the file and says what it wrote', async () => {
  const out = join(dir, 'out', 'm.gguf');
  const r = aha(['export', '--model', model, '--format', 'gguf', '--out', out, '--dtype', 'q8_0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^wrote .*m\.gguf: qwen2, q8_0, 26 tensors, [\d.]+ MiB; tokenizer character \(pre default, 104 tokens, 0 merges, chat template\)\n$/,
  );
  const g = await parseGguf(out);
  assert.equal(g.metadata['general.file_type'].value, 7);
  assert.equal(g.tensors.get('blk.0.ffn_down.weight')!.type, 8);
  // Again without --overwrite: refused, the file kept.
  const again = aha(['export', '--model', model, '--format', 'gguf', '--out', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists \(pass --overwrite to replace it\)/);
  const over = aha(['export', '--model', model, '--format', 'gguf', '--out', out, '--overwrite']);
  assert.equal(over.status, 0, over.stderr);
  assert.match(over.stdout, /qwen2, f32, 26 tensors/);
});

test('bad options and unexportable models: one line on stderr, exit 1, no file', () => {
  const biased = randomCheckpoint(
    join(dir, 'q3'),
    { ...QWEN3_CONFIG, attention_bias: true, vocab_size: 104 },
    {
      tokenizer: 'chars',
    },
  ).dir;
  writeFileSync(join(dir, 'dir.gguf'), '');
  const cases: [string[], RegExp][] = [
    [['--model', model, '--format', 'onnx', '--out', join(dir, 'a.gguf')], /--format: expected gguf \(got "onnx"\)/],
    [
      ['--model', model, '--format', 'gguf', '--out', join(dir, 'a.gguf'), '--dtype', 'q4_0'],
      /--dtype: expected one of f32, f16, bf16, q8_0 \(got "q4_0"\)/,
    ],
    [['--model', join(dir, 'none'), '--format', 'gguf', '--out', join(dir, 'a.gguf')], /none: directory not found/],
    [
      ['--model', biased, '--format', 'gguf', '--out', join(dir, 'a.gguf')],
      /qwen3 architecture has no attention biases/,
    ],
    [['--model', model, '--format', 'gguf', '--out', dir], /is a directory; --out names the \.gguf file/],
  ];
  for (const [args, re] of cases) {
    const r = aha(['export', ...args]);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!existsSync(join(dir, 'a.gguf')));
});
