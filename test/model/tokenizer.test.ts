import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../../src/model/tokenizer.ts';
import { resolveSpecialTokens, tokenContent } from '../../src/model/specialTokens.ts';
import { AhaError } from '../../src/errors.ts';
import { fixtureModelDir, TOKENIZER_FIXTURES } from '../fixtures/tokenizers/materialize.ts';

// Reference ids: computed with Hugging Face's Rust `tokenizers` (npm package `tokenizers` 0.23.2, the Node
// binding of the same Rust core that Python's `tokenizers` wraps) from the very same tokenizer.json files, i.e.
// independently of @huggingface/tokenizers (pure JS) that aha uses. Cross-checks against published encodings:
// "Hello, world!" → [9707, 11, 1879, 0] matches the DeepSeek-R1-Distill-Qwen (Qwen2.5 vocabulary) encoding of
// "<｜begin▁of▁sentence｜><｜User｜>Hello, world!<｜Assistant｜>" = [151646, 151644, 9707, 11, 1879, 0, 151645]
// printed by a Rust user; "<|im_start|>assistant" → 151644, 77091 is the well-known Qwen chat prefix.
interface Case {
  text: string;
  ids: number[];
}

const QWEN3_CASES: Case[] = [
  { text: 'Hello, world!', ids: [9707, 11, 1879, 0] },
  { text: 'Hello world', ids: [9707, 1879] },
  { text: ' leading space and  double  spaces ', ids: [6388, 3550, 323, 220, 1990, 220, 12621, 220] },
  { text: 'line one\nline two\n\n\ttabbed', ids: [1056, 825, 198, 1056, 1378, 271, 58149, 2721] },
  { text: 'The answer is 12345678.', ids: [785, 4226, 374, 220, 16, 17, 18, 19, 20, 21, 22, 23, 13] },
  {
    text: '<think>\nLet me think.\n</think>\n<answer>42</answer>',
    ids: [151667, 198, 10061, 752, 1744, 624, 151668, 198, 27, 9217, 29, 19, 17, 522, 9217, 29],
  },
  {
    text: 'naïve café — 東京 🤖 Ünïcödé',
    ids: [3376, 37572, 586, 51950, 1959, 60596, 109, 46553, 11162, 97, 244, 30512, 77, 37572, 66, 2956, 128505],
  },
  { text: '<|im_start|>user\nhi<|im_end|>', ids: [151644, 872, 198, 6023, 151645] },
  {
    text: "x = f(a, b) // it's 3.14\r\n",
    ids: [87, 284, 282, 2877, 11, 293, 8, 442, 432, 594, 220, 18, 13, 16, 19, 319],
  },
  { text: '', ids: [] },
  {
    text: '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.<|im_end|>\n',
    ids: [
      151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 3838, 374, 220, 17, 10, 18,
      30, 151645, 198, 151644, 77091, 198, 151667, 198, 2212, 220, 17, 323, 220, 18, 624, 151668, 271, 785, 4226, 374,
      220, 20, 13, 151645, 198,
    ],
  },
];

const DEEPSEEK_V3_CASES: Case[] = [
  { text: 'Hello, world!', ids: [19923, 14, 2058, 3] },
  { text: ' leading space and  double  spaces ', ids: [6646, 3987, 305, 223, 6042, 223, 13564, 223] },
  { text: 'line one\nline two\n\n\ttabbed', ids: [1836, 834, 201, 1836, 1234, 271, 200, 14278, 15130] },
  { text: 'The answer is 12345678.', ids: [671, 3287, 344, 223, 6895, 18009, 2597, 16] },
  {
    text: 'naïve café — 東京 🤖 Ünïcödé',
    ids: [2720, 91223, 57664, 2136, 223, 66771, 112838, 247, 25132, 80, 16709, 69, 54879, 619],
  },
  {
    text: '<｜begin▁of▁sentence｜><｜User｜>Hello, world!<｜Assistant｜>',
    ids: [0, 128803, 19923, 14, 2058, 3, 128804],
  },
  {
    text: '<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+3?<｜Assistant｜>',
    ids: [0, 3476, 477, 260, 11502, 22896, 16, 128803, 3085, 344, 223, 20, 13, 21, 33, 128804],
  },
];

let qwen: Tokenizer | undefined;
let deepseek: Tokenizer | undefined;
const qwen3 = () => (qwen ??= loadTokenizer(fixtureModelDir('qwen3')));
const deepseekV3 = () => (deepseek ??= loadTokenizer(fixtureModelDir('deepseek-v3')));

describe('Qwen3 tokenizer (real tokenizer.json)', () => {
  test('encodes to the reference ids and decodes back to the same text', () => {
    const tok = qwen3();
    for (const { text, ids } of QWEN3_CASES) {
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
      // Qwen2TokenizerFast adds nothing around the text, so the special-token flag changes nothing.
      assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
    }
  });

  test('special tokens, vocabulary size and token lookup', () => {
    const tok = qwen3();
    assert.equal(tok.vocabSize, 151669); // 151643 BPE tokens + 26 added (<|endoftext|> … </think>)
    assert.deepEqual(tok.eosTokenIds, [151645]); // eos_token <|im_end|>; no generation_config.json here
    assert.equal(tok.bosTokenId, undefined); // "bos_token": null
    assert.equal(tok.padTokenId, 151643); // "<|endoftext|>"
    assert.equal(tok.unkTokenId, undefined);
    assert.equal(tok.tokenToId('<think>'), 151667);
    assert.equal(tok.idToToken(151668), '</think>');
    assert.equal(tok.idToToken(9707), 'Hello');
    assert.equal(tok.idToToken(1879), 'Ġworld'); // byte-level: Ġ is the space byte
    assert.equal(tok.tokenToId('no such token'), undefined);
    assert.equal(tok.idToToken(151669), undefined);
    assert.ok(tok.isSpecialId(151645));
    assert.ok(!tok.isSpecialId(151667)); // <think> is an added but not special token
  });

  test('skipSpecialTokens drops chat markers but keeps <think>', () => {
    const tok = qwen3();
    assert.equal(tok.decode([151644, 872, 198, 6023, 151645], { skipSpecialTokens: true }), 'user\nhi');
    assert.equal(
      tok.decode([151667, 198, 10061, 752, 1744, 624, 151668, 151643], { skipSpecialTokens: true }),
      '<think>\nLet me think.\n</think>',
    );
  });

  test('decode: split UTF-8 gives U+FFFD like the Rust decoder, unknown ids are skipped, bad ids are AhaError', () => {
    const tok = qwen3();
    assert.equal(tok.decode([11162]), ' \uFFFD'); // first byte of 🤖 only
    assert.equal(tok.decode([11162, 97, 244]), ' 🤖');
    assert.equal(tok.decode([9707, 151700, 151935]), 'Hello'); // padded embedding rows have no token
    assert.equal(tok.decode([]), '');
    assert.throws(() => tok.decode([-1]), AhaError);
    assert.throws(() => tok.decode([1.5]), AhaError);
  });

  test('cleanUpTokenizationSpaces is off unless asked for', () => {
    const tok = qwen3();
    const ids = tok.encode('a , b .');
    assert.equal(tok.decode(ids), 'a , b .');
    assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: true }), 'a, b.');
  });
});

describe('DeepSeek-V3 tokenizer (real tokenizer.json, LlamaTokenizerFast)', () => {
  test('encodes to the reference ids and decodes back', () => {
    const tok = deepseekV3();
    for (const { text, ids } of DEEPSEEK_V3_CASES) {
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
    }
  });

  test('add_bos_token: true prepends <｜begin▁of▁sentence｜> as transformers does', () => {
    // tokenizer.json's post-processor adds nothing, but LlamaTokenizerFast rebuilds it from add_bos_token=true.
    const tok = deepseekV3();
    assert.deepEqual(tok.encode('Hello, world!'), [0, 19923, 14, 2058, 3]);
    assert.deepEqual(tok.encode(''), [0]);
    assert.equal(tok.bosTokenId, 0);
    assert.deepEqual(tok.eosTokenIds, [1]);
    assert.equal(tok.padTokenId, 1); // pad_token is <｜end▁of▁sentence｜> (an AddedToken object in the config)
    assert.equal(tok.vocabSize, 128815);
    assert.equal(tok.decode([0, 19923, 14, 2058, 3, 1], { skipSpecialTokens: true }), 'Hello, world!');
    assert.equal(tok.decode([0, 19923, 14, 2058, 3, 1]), '<｜begin▁of▁sentence｜>Hello, world!<｜end▁of▁sentence｜>');
  });
});

describe('loadTokenizer errors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'aha-tok-err-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

  test('missing directory', () => {
    assert.throws(
      () => loadTokenizer(join(tmp, 'nope')),
      (e: unknown) => e instanceof AhaError && /nope: not a directory/.test(e.message),
    );
  });

  test('missing tokenizer.json names the file, and hints when only a slow tokenizer exists', () => {
    const d = join(tmp, 'empty');
    mkdirSync(d);
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && e.message.includes(join(d, 'tokenizer.json')),
    );
    writeFileSync(join(d, 'tokenizer.model'), 'x');
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && /tokenizer\.model/.test(e.message),
    );
  });

  test('malformed JSON names the file', () => {
    const d = join(tmp, 'bad');
    mkdirSync(d);
    copyFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer.json'), join(d, 'tokenizer.json'));
    writeFileSync(join(d, 'tokenizer_config.json'), '{"eos_token": ');
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && e.message.includes('tokenizer_config.json: not valid JSON'),
    );
    writeFileSync(join(d, 'tokenizer_config.json'), '[1]');
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && /tokenizer_config\.json: expected a JSON object/.test(e.message),
    );
  });

  test('an eos token missing from the vocabulary is AhaError', () => {
    const d = join(tmp, 'eos');
    mkdirSync(d);
    copyFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer.json'), join(d, 'tokenizer.json'));
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && /eos_token "<\/s>" is not in the tokenizer's vocabulary/.test(e.message),
    );
  });

  test('a bad eos_token_id in generation_config.json is AhaError naming it', () => {
    const d = join(tmp, 'gen');
    mkdirSync(d);
    copyFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer.json'), join(d, 'tokenizer.json'));
    copyFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer_config.json'), join(d, 'tokenizer_config.json'));
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: ['2'] }));
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof AhaError && /generation_config\.json: eos_token_id/.test(e.message),
    );
  });
});

describe('special-token precedence', () => {
  // A small stand-in vocabulary shaped like Llama 3.1's special ids.
  const vocab = new Map([
    ['<|begin_of_text|>', 128000],
    ['<|end_of_text|>', 128001],
    ['<|eom_id|>', 128008],
    ['<|eot_id|>', 128009],
    ['<pad>', 7],
  ]);
  const lookup = (t: string) => vocab.get(t);

  test('eos: tokenizer eos first, then generation_config.json ids (a list), without repeats', () => {
    const r = resolveSpecialTokens(
      {
        tokenizerConfig: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
        config: { eos_token_id: 128001 },
        generationConfig: { eos_token_id: [128001, 128008, 128009] },
      },
      lookup,
    );
    assert.deepEqual(r.eosTokenIds, [128009, 128001, 128008]);
    assert.equal(r.eosToken, '<|eot_id|>');
    assert.equal(r.bosTokenId, 128000);
    assert.equal(r.padTokenId, undefined); // nobody names a pad: none is invented
  });

  test('eos: config.json when generation_config.json does not set it (also inside text_config)', () => {
    const tc = { eos_token: '<|end_of_text|>' };
    assert.deepEqual(
      resolveSpecialTokens(
        { tokenizerConfig: tc, config: { eos_token_id: [128001, 128009] }, generationConfig: { temperature: 0.6 } },
        lookup,
      ).eosTokenIds,
      [128001, 128009],
    );
    assert.deepEqual(
      resolveSpecialTokens({ tokenizerConfig: tc, config: { text_config: { eos_token_id: 128008 } } }, lookup)
        .eosTokenIds,
      [128001, 128008],
    );
    assert.deepEqual(resolveSpecialTokens({ config: { eos_token_id: 128009 } }, lookup).eosTokenIds, [128009]);
  });

  test('bos/pad: tokenizer files win, an explicit null means none, model files only when the tokenizer is silent', () => {
    const cfg = { bos_token_id: 128000, pad_token_id: 7 };
    assert.equal(
      resolveSpecialTokens({ tokenizerConfig: { bos_token: null }, config: cfg }, lookup).bosTokenId,
      undefined,
    );
    assert.equal(resolveSpecialTokens({ tokenizerConfig: {}, config: cfg }, lookup).bosTokenId, 128000);
    assert.equal(
      resolveSpecialTokens({ tokenizerConfig: {}, config: cfg, generationConfig: { pad_token_id: 128001 } }, lookup)
        .padTokenId,
      128001,
    );
    assert.equal(
      resolveSpecialTokens({ tokenizerConfig: { pad_token: '<pad>' }, config: { pad_token_id: 128001 } }, lookup)
        .padTokenId,
      7,
    );
  });

  test('special_tokens_map.json fills keys tokenizer_config.json lacks; AddedToken objects are read by content', () => {
    const r = resolveSpecialTokens(
      {
        tokenizerConfig: { eos_token: { __type: 'AddedToken', content: '<|eot_id|>', lstrip: false } },
        specialTokensMap: { bos_token: { content: '<|begin_of_text|>' }, eos_token: '<|end_of_text|>' },
      },
      lookup,
    );
    assert.deepEqual(r.eosTokenIds, [128009]);
    assert.equal(r.bosTokenId, 128000);
    assert.equal(tokenContent('x', 'w'), 'x');
    assert.throws(() => tokenContent(3, 'where'), AhaError);
  });

  test('a real model directory: generation_config.json next to the char tokenizer', () => {
    const d = mkdtempSync(join(tmpdir(), 'aha-tok-gen-'));
    try {
      for (const f of ['tokenizer.json', 'tokenizer_config.json'])
        copyFileSync(join(TOKENIZER_FIXTURES, 'char-default', f), join(d, f));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ eos_token_id: 3, bos_token_id: 4 }));
      writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: [1, 5] }));
      const tok = loadTokenizer(d);
      assert.deepEqual(tok.eosTokenIds, [1, 5]); // <|endoftext|> = 1 from tokenizer_config.json, then 5
      assert.equal(tok.bosTokenId, undefined); // "bos_token": null in tokenizer_config.json beats config.json
      assert.equal(tok.padTokenId, 2);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
