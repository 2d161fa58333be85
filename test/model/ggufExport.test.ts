import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { AhaError } from '../../src/errors.ts';
import { computeRopeInvFreq } from '../../src/model/hfConfig.ts';
import { exportGguf } from '../../src/model/gguf/exportGguf.ts';
import { unpermuteRopeRows } from '../../src/model/gguf/llamaCppTensors.ts';
import { ggufTokenizerMetadata, gpt2ByteToUnicode } from '../../src/model/gguf/ggufTokenizer.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { mergeAdapterDir } from '../../src/model/mergeAdapter.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { writeAdapterFiles } from '../../src/model/adapter.ts';
import { resolveLora } from '../../src/engine/lora.ts';
import { tensorLayout } from '../../src/engine/types.ts';
import { mulberry32 } from '../../src/data/rng.ts';
import { fixtureModelDir, TOKENIZER_FIXTURES } from '../fixtures/tokenizers/materialize.ts';
import { parseGguf, randomCheckpoint, type ParsedGguf } from '../support/ggufModels.ts';
import { GGUF_CHAR_ALPHABET, LLAMA_CONFIG, QWEN2_CHAR_CONFIG, QWEN3_CONFIG } from '../support/ggufConfigs.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-gguf-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const charModel = randomCheckpoint(join(dir, 'qwen2-char'), QWEN2_CHAR_CONFIG, {
  tokenizer: 'chars',
  alphabet: GGUF_CHAR_ALPHABET,
  seed: 2,
  std: 0.3,
});
const qwen3Tokenizer = fixtureModelDir('qwen3');

/** The HF tensor of `name` for llama.cpp tensor `ggufName` in a parsed file, as numbers. */
const values = (g: ParsedGguf, name: string) => {
  const t = g.tensors.get(name);
  assert.ok(t, `${name} is in the file`);
  return t.values;
};

const expectedNames = (layers: number, o: { bias: boolean; oBias?: boolean; qkNorm?: boolean; output: boolean }) => {
  const names = ['token_embd.weight', 'output_norm.weight'];
  if (o.output) names.push('output.weight');
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    names.push(p + 'attn_norm.weight', p + 'ffn_norm.weight');
    for (const m of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'])
      names.push(p + m + '.weight');
    if (o.bias) names.push(p + 'attn_q.bias', p + 'attn_k.bias', p + 'attn_v.bias');
    if (o.oBias) names.push(p + 'attn_output.bias');
    if (o.qkNorm) names.push(p + 'attn_q_norm.weight', p + 'attn_k_norm.weight');
  }
  return names.sort();
};

test('a Qwen2 character model as f32 GGUF: qwen2 metadata, weights bit for bit, the tokenizer in byte-level form', async () => {
  const out = join(dir, 'qwen2-char.gguf');
  const r = await exportGguf({ model: charModel.dir, out });
  assert.equal(r.arch, 'qwen2');
  assert.equal(r.dtype, 'f32'); // stored F32 → F32 by default
  assert.deepEqual(r.f16Fallbacks, []);
  const g = await parseGguf(out);
  const m = g.metadata;
  const v = (k: string) => m[k]?.value;
  assert.equal(g.version, 3);
  assert.equal(v('general.architecture'), 'qwen2');
  assert.equal(v('general.file_type'), 0);
  assert.equal(v('general.alignment'), 32);
  assert.equal(v('qwen2.context_length'), 64);
  assert.equal(v('qwen2.embedding_length'), 64);
  assert.equal(v('qwen2.block_count'), 2);
  assert.equal(v('qwen2.feed_forward_length'), 128);
  assert.equal(v('qwen2.attention.head_count'), 4);
  assert.equal(v('qwen2.attention.head_count_kv'), 2);
  assert.equal(v('qwen2.rope.freq_base'), 10000);
  assert.equal(v('qwen2.attention.layer_norm_rms_epsilon'), Math.fround(1e-6));
  assert.equal(v('qwen2.rope.scaling.type'), undefined);

  assert.deepEqual([...g.tensors.keys()].sort(), expectedNames(2, { bias: true, output: false }));
  for (const t of tensorLayout(charModel.engine)) {
    const name = t.name
      .replace('model.embed_tokens', 'token_embd')
      .replace('model.norm', 'output_norm')
      .replace(/^model\.layers\.(\d+)\./, 'blk.$1.')
      .replace('input_layernorm', 'attn_norm')
      .replace('post_attention_layernorm', 'ffn_norm')
      .replace(/self_attn\.([qkv])_proj/, 'attn_$1')
      .replace('self_attn.o_proj', 'attn_output')
      .replace(/mlp\.(gate|up|down)_proj/, 'ffn_$1');
    const got = g.tensors.get(name)!;
    assert.equal(got.type, 0, name);
    assert.deepEqual(got.ne, [...t.shape].reverse(), name);
    assert.deepEqual(Array.from(got.values), Array.from(charModel.tensor(t.name)), name);
  }

  // Tokenizer: 6 specials (control), then the characters in GPT-2's byte form: " " is "Ġ", "\n" is "Ċ",
  // "é" is "Ã©" (one merge joins its two bytes), "€" is "âĤ¬" (two merges).
  const tokens = v('tokenizer.ggml.tokens') as string[];
  const types = v('tokenizer.ggml.token_type') as number[];
  assert.equal(v('tokenizer.ggml.model'), 'gpt2');
  assert.equal(v('tokenizer.ggml.pre'), 'default');
  assert.equal(tokens.length, 6 + GGUF_CHAR_ALPHABET.length);
  assert.deepEqual(tokens.slice(0, 8), [
    '<|unk|>',
    '<|endoftext|>',
    '<|pad|>',
    '<|system|>',
    '<|user|>',
    '<|assistant|>',
    'Ġ',
    '!',
  ]);
  assert.deepEqual(tokens.slice(-3), ['Ċ', 'Ã©', 'âĤ¬']);
  assert.deepEqual(types.slice(0, 7), [3, 3, 3, 3, 3, 3, 1]);
  assert.ok(types.slice(6).every((t) => t === 1));
  assert.deepEqual(v('tokenizer.ggml.merges'), ['Ã ©', 'â Ĥ', 'âĤ ¬']);
  assert.equal(v('tokenizer.ggml.eos_token_id'), 1);
  assert.equal(v('tokenizer.ggml.unknown_token_id'), 0);
  assert.equal(v('tokenizer.ggml.padding_token_id'), 2);
  assert.equal(v('tokenizer.ggml.bos_token_id'), undefined);
  assert.equal(v('tokenizer.ggml.add_bos_token'), false);
  const tc = JSON.parse(readFileSync(join(charModel.dir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(v('tokenizer.chat_template'), tc.chat_template);
});

test('f16, bf16 and q8_0: matrices in that type within its rounding error, norms and biases kept f32', async () => {
  const layout = tensorLayout(charModel.engine);
  const embed = charModel.tensor('model.embed_tokens.weight');
  const q = charModel.tensor('model.layers.1.self_attn.q_proj.weight');
  const qb = charModel.tensor('model.layers.1.self_attn.q_proj.bias');
  const norm = charModel.tensor('model.layers.0.input_layernorm.weight');
  const cases = [
    { dtype: 'f16', type: 1, fileType: 1, rel: 2 ** -11, abs: 2 ** -25 },
    { dtype: 'bf16', type: 30, fileType: 32, rel: 2 ** -8, abs: 0 },
    { dtype: 'q8_0', type: 8, fileType: 7, rel: 0, abs: 0 },
  ] as const;
  for (const c of cases) {
    const out = join(dir, `qwen2-char-${c.dtype}.gguf`);
    const r = await exportGguf({ model: charModel.dir, out, dtype: c.dtype });
    assert.equal(r.tensors, layout.length);
    const g = await parseGguf(out);
    assert.equal(g.metadata['general.file_type'].value, c.fileType, c.dtype);
    for (const [name, t] of g.tensors) assert.equal(t.type, t.ne.length === 1 ? 0 : c.type, `${c.dtype} ${name}`);
    assert.deepEqual(Array.from(values(g, 'blk.1.attn_q.bias')), Array.from(qb));
    assert.deepEqual(Array.from(values(g, 'blk.0.attn_norm.weight')), Array.from(norm));
    for (const [name, x] of [
      ['token_embd.weight', embed],
      ['blk.1.attn_q.weight', q],
    ] as const) {
      const t = g.tensors.get(name)!;
      for (let i = 0; i < x.length; i++) {
        const bound = c.dtype === 'q8_0' ? t.scales![i >> 5] / 2 : Math.abs(x[i]) * c.rel + c.abs;
        assert.ok(Math.abs(t.values[i] - x[i]) <= bound, `${c.dtype} ${name}[${i}]: ${t.values[i]} vs ${x[i]}`);
      }
    }
  }
  // A bf16 checkpoint exports as bf16 by default, unchanged.
  const bf = randomCheckpoint(join(dir, 'qwen2-char-bf16'), QWEN2_CHAR_CONFIG, {
    tokenizer: 'chars',
    seed: 3,
    dtype: 'BF16',
  });
  const r = await exportGguf({ model: bf.dir, out: join(dir, 'bf.gguf') });
  assert.equal(r.dtype, 'bf16');
  const g = await parseGguf(join(dir, 'bf.gguf'));
  assert.deepEqual(
    Array.from(values(g, 'blk.0.ffn_down.weight')),
    Array.from(bf.tensor('model.layers.0.mlp.down_proj.weight')),
  );
});

test("a Llama model: q/k rows and biases permuted for llama.cpp's RoPE (the inverse gives HF's), Llama 3 rope_freqs", async () => {
  const llama = randomCheckpoint(join(dir, 'llama'), LLAMA_CONFIG, { tokenizer: qwen3Tokenizer, seed: 5, std: 0.3 });
  const out = join(dir, 'llama.gguf');
  const r = await exportGguf({ model: llama.dir, out });
  assert.equal(r.arch, 'llama');
  const g = await parseGguf(out);
  const v = (k: string) => g.metadata[k]?.value;
  assert.equal(v('general.architecture'), 'llama');
  assert.equal(v('llama.attention.head_count_kv'), 2);
  assert.equal(v('llama.attention.key_length'), 16);
  assert.equal(v('llama.rope.dimension_count'), 16);
  assert.equal(v('llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
  assert.equal(v('llama.vocab_size'), 151680);
  assert.deepEqual(
    [...g.tensors.keys()].sort(),
    [...expectedNames(2, { bias: true, oBias: true, output: true }), 'rope_freqs.weight'].sort(),
  );
  const D = 16;
  for (const l of [0, 1]) {
    const hf = (n: string) => llama.tensor(`model.layers.${l}.self_attn.${n}`);
    const back = (n: string, heads: number, row: number) =>
      unpermuteRopeRows(Float32Array.from(values(g, `blk.${l}.${n}`)), heads, D, row);
    assert.deepEqual(back('attn_q.weight', 4, 64), hf('q_proj.weight'));
    assert.deepEqual(back('attn_k.weight', 2, 64), hf('k_proj.weight'));
    assert.deepEqual(back('attn_q.bias', 4, 1), hf('q_proj.bias'));
    assert.deepEqual(back('attn_k.bias', 2, 1), hf('k_proj.bias'));
    // Not a no-op: the file's rows differ from HF's.
    assert.notDeepEqual(Float32Array.from(values(g, `blk.${l}.attn_k.weight`)), hf('k_proj.weight'));
    assert.deepEqual(Float32Array.from(values(g, `blk.${l}.attn_v.weight`)), hf('v_proj.weight'));
    assert.deepEqual(Float32Array.from(values(g, `blk.${l}.attn_output.bias`)), hf('o_proj.bias'));
  }
  // Head 0 of k, by hand: file rows 0..3 are HF rows 0, 8, 1, 9 (D/2 = 8).
  const k = llama.tensor('model.layers.0.self_attn.k_proj.weight');
  const fk = values(g, 'blk.0.attn_k.weight');
  for (const [fileRow, hfRow] of [
    [0, 0],
    [1, 8],
    [2, 1],
    [3, 9],
    [15, 15],
    [16, 16],
    [17, 24],
  ])
    assert.equal(fk[fileRow * 64 + 5], k[hfRow * 64 + 5], `row ${fileRow}`);
  assert.deepEqual(Float32Array.from(values(g, 'output.weight')), llama.tensor('lm_head.weight'));
  // llama.cpp divides θ^(-2i/D) by rope_freqs[i]; the result must be transformers' llama3 frequencies.
  const freqs = values(g, 'rope_freqs.weight');
  const base = computeRopeInvFreq(D, 10000, null);
  assert.equal(freqs.length, D / 2);
  for (let i = 0; i < D / 2; i++) {
    const scaled = base[i] / freqs[i];
    assert.ok(Math.abs(scaled - llama.engine.ropeInvFreq[i]) <= 1e-6 * llama.engine.ropeInvFreq[i], `freq ${i}`);
  }
  // By the llama3 formula (factor 8, low 1, high 4, original context 16): wavelength 2π/θ_i below 4 keeps the
  // frequency (1), above 16 divides by 8, between blends 1/((1-s)/8 + s) with s = (16/λ - 1)/3.
  for (let i = 0; i < D / 2; i++) {
    const lambda = (2 * Math.PI) / base[i];
    const s = (16 / lambda - 1) / 3;
    const want = lambda < 4 ? 1 : lambda > 16 ? 8 : 1 / ((1 - s) / 8 + s);
    assert.ok(Math.abs(freqs[i] - want) <= 1e-5 * want, `rope_freqs[${i}] ${freqs[i]} vs ${want}`);
  }

  // The Qwen3 tokenizer: byte-level BPE, Qwen2's pre-tokenizer regex, ids past the tokenizer padded.
  const tj = JSON.parse(
    brotliDecompressSync(readFileSync(join(TOKENIZER_FIXTURES, 'qwen3', 'tokenizer.json.br'))).toString('utf8'),
  );
  const tokens = v('tokenizer.ggml.tokens') as string[];
  const types = v('tokenizer.ggml.token_type') as number[];
  assert.equal(v('tokenizer.ggml.pre'), 'qwen2');
  assert.equal(tokens.length, 151680);
  assert.equal(tokens[tj.model.vocab['Ġthe']], 'Ġthe');
  assert.equal(tokens[151644], '<|im_start|>');
  assert.equal(types[151644], 3);
  assert.equal(tokens[151667], '<think>');
  assert.equal(types[151667], 4); // added, not special
  assert.equal(tokens[151669], '[PAD151669]');
  assert.equal(types[151679], 5);
  const merges = v('tokenizer.ggml.merges') as string[];
  assert.equal(merges.length, tj.model.merges.length);
  assert.equal(merges[0], 'Ġ Ġ');
  assert.equal(v('tokenizer.ggml.eos_token_id'), 151645); // <|im_end|>
  assert.equal(v('tokenizer.ggml.padding_token_id'), 151643);
  assert.equal(v('tokenizer.ggml.add_bos_token'), false);
  assert.match(v('tokenizer.chat_template') as string, /<\|im_start\|>/);
});

test('a Qwen3 model as q8_0: q/k norms, rows of 48 fall back to f16 (named), rows of 64 and 96 are Q8_0', async () => {
  const q3 = randomCheckpoint(join(dir, 'qwen3'), QWEN3_CONFIG, { tokenizer: qwen3Tokenizer, seed: 6, std: 0.3 });
  const out = join(dir, 'qwen3.gguf');
  const r = await exportGguf({ model: q3.dir, out, dtype: 'q8_0' });
  assert.equal(r.arch, 'qwen3');
  const g = await parseGguf(out);
  assert.deepEqual([...g.tensors.keys()].sort(), expectedNames(2, { bias: false, qkNorm: true, output: false }));
  const f16 = ['token_embd.weight'];
  for (const l of [0, 1])
    f16.push(...['attn_q', 'attn_k', 'attn_v', 'ffn_gate', 'ffn_up'].map((n) => `blk.${l}.${n}.weight`));
  assert.deepEqual([...r.f16Fallbacks].sort(), f16.sort());
  for (const [name, t] of g.tensors) assert.equal(t.type, t.ne.length === 1 ? 0 : f16.includes(name) ? 1 : 8, name);
  assert.equal(g.metadata['qwen3.attention.key_length'].value, 16);
  assert.equal(g.metadata['qwen3.embedding_length'].value, 48);
  assert.deepEqual(
    Float32Array.from(values(g, 'blk.1.attn_k_norm.weight')),
    q3.tensor('model.layers.1.self_attn.k_norm.weight'),
  );
  // No permutation for qwen3 (NEOX RoPE): the q rows are HF's, up to f16 rounding.
  const q = q3.tensor('model.layers.0.self_attn.q_proj.weight');
  const fq = values(g, 'blk.0.attn_q.weight');
  for (let i = 0; i < q.length; i++) assert.ok(Math.abs(fq[i] - q[i]) <= Math.abs(q[i]) * 2 ** -11 + 2 ** -25);
});

test('an adapter directory exports its merge: the same weights as aha merge writes', async () => {
  const lora = resolveLora({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'k_proj', 'down_proj'] });
  const p = loadPretrained(charModel.dir, { lora, loraSeed: 1 });
  const rand = mulberry32(3);
  const a = p.model.adapters;
  for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * 0.2;
  const adapter = join(dir, 'adapter');
  mkdirSync(adapter);
  writeAdapterFiles(adapter, p.model, charModel.dir);
  const r = await exportGguf({ model: adapter, out: join(dir, 'adapter.gguf') });
  assert.equal(r.merged, 6);
  const merged = join(dir, 'merged');
  mergeAdapterDir({ adapter, out: merged, dtype: 'F32' });
  const md = loadModelDir(merged);
  const want = new Float32Array(md.layout.at(-1)!.offset + md.layout.at(-1)!.size);
  md.loadParams(want);
  const g = await parseGguf(join(dir, 'adapter.gguf'));
  const t = md.layout.find((x) => x.name === 'model.layers.1.self_attn.k_proj.weight')!;
  const before = charModel.tensor(t.name);
  const mergedK = want.subarray(t.offset, t.offset + t.size);
  assert.notDeepEqual(mergedK, before);
  assert.deepEqual(Float32Array.from(values(g, 'blk.1.attn_k.weight')), mergedK);
});

test('what cannot be exported is a one-line error, and nothing is written', async () => {
  const fails = async (o: Parameters<typeof exportGguf>[0], re: RegExp) => {
    await assert.rejects(
      exportGguf(o),
      (e: Error) => e instanceof AhaError && re.test(e.message) && !e.message.includes('\n'),
    );
    assert.ok(!existsSync(o.out) || o.out.endsWith('exists.gguf'));
  };
  const biased = randomCheckpoint(
    join(dir, 'qwen3-bias'),
    { ...QWEN3_CONFIG, attention_bias: true, vocab_size: 104 },
    { tokenizer: 'chars' },
  );
  await fails({ model: biased.dir, out: join(dir, 'e1.gguf') }, /qwen3 architecture has no attention biases/);
  // DeepSeek-V3's pre-tokenizer is not one of the regexes mapped here.
  const ds = randomCheckpoint(join(dir, 'ds'), QWEN2_CHAR_CONFIG, {
    tokenizer: fixtureModelDir('deepseek-v3'),
    std: 0.01,
  });
  await fails(
    { model: ds.dir, out: join(dir, 'e2.gguf') },
    /pre-tokenizer \(Split\+Split\+Split\+ByteLevel\) is none that llama\.cpp implements/,
  );
  // A model with fewer embedding rows than the tokenizer has tokens.
  const small = join(dir, 'small');
  mkdirSync(small);
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json'])
    writeFileSync(join(small, f), readFileSync(join(charModel.dir, f)));
  writeFileSync(join(small, 'tokenizer.json'), readFileSync(join(qwen3Tokenizer, 'tokenizer.json')));
  await fails({ model: small, out: join(dir, 'e3.gguf') }, /past the model's 104 embedding rows/);
  writeFileSync(join(dir, 'exists.gguf'), 'x');
  await fails({ model: charModel.dir, out: join(dir, 'exists.gguf') }, /already exists \(pass --overwrite/);
  assert.equal(readFileSync(join(dir, 'exists.gguf'), 'utf8'), 'x');
  await fails({ model: join(dir, 'nope'), out: join(dir, 'e4.gguf') }, /directory not found/);
  // Weights past float16's largest value (65504) would become infinities: refused for f16, fine for bf16.
  const big = randomCheckpoint(join(dir, 'big'), QWEN2_CHAR_CONFIG, { tokenizer: 'chars', std: 1e5 });
  await fails(
    { model: big.dir, out: join(dir, 'e5.gguf'), dtype: 'f16' },
    /token_embd\.weight: .* is past float16's range \(65504\); export as bf16 or f32/,
  );
  assert.equal((await exportGguf({ model: big.dir, out: join(dir, 'big.gguf'), dtype: 'bf16' })).dtype, 'bf16');
});

test("byte-level pre-tokenizers map to llama.cpp's names by their regex; others are refused", () => {
  const byteChars = gpt2ByteToUnicode();
  const vocab = Object.fromEntries(byteChars.map((c, i) => [c, i]));
  const level = (useRegex: boolean, prefix = false) => ({
    type: 'ByteLevel',
    add_prefix_space: prefix,
    trim_offsets: false,
    use_regex: useRegex,
  });
  const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
  const llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const pre = (pretokenizers: unknown[]) => ({ type: 'Sequence', pretokenizers });
  const cases: [unknown, string | RegExp][] = [
    [pre([split(llama3), level(false)]), 'llama-bpe'],
    [pre([{ type: 'Digits', individual_digits: true }, level(true)]), 'smollm'],
    [level(true), 'gpt-2'],
    [level(true, true), /adds a prefix space/],
    [
      pre([split('\\p{N}{1,3}'), level(false)]),
      /pre-tokenizer \(Split\+ByteLevel\) is none that llama\.cpp implements/,
    ],
    [pre([{ type: 'Digits', individual_digits: false }, level(true)]), /\(Digits\+ByteLevel\)/],
  ];
  cases.forEach(([preTokenizer, want], i) => {
    const d = join(dir, `pre-${i}`);
    mkdirSync(d);
    const tj = {
      version: '1.0',
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: { type: 'BPE', vocab, merges: [['Ġ', 't']], byte_fallback: false, ignore_merges: false },
    };
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tj));
    if (typeof want === 'string') {
      const { metadata } = ggufTokenizerMetadata(d, 260, {});
      assert.equal(metadata['tokenizer.ggml.pre'].value, want);
      assert.deepEqual(metadata['tokenizer.ggml.merges'].value, ['Ġ t']);
      assert.equal((metadata['tokenizer.ggml.tokens'].value as string[])[0x20], 'Ġ');
    } else
      assert.throws(
        () => ggufTokenizerMetadata(d, 260, {}),
        (e: Error) => e instanceof AhaError && want.test(e.message),
      );
  });
});
