import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildCharTokenizer,
  charTokenizerFromFiles,
  DEFAULT_CHAR_ALPHABET,
  DEFAULT_CHAR_SPECIALS,
  writeCharTokenizer,
} from '../../src/model/charTokenizer.ts';
import { loadTokenizer } from '../../src/model/tokenizer.ts';
import { renderChat } from '../../src/model/chatTemplate.ts';
import { AhaError } from '../../src/errors.ts';
import { TOKENIZER_FIXTURES } from '../fixtures/tokenizers/materialize.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-chartok-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// Default layout, by hand: 0 <|unk|>, 1 <|endoftext|>, 2 <|pad|>, 3 <|system|>, 4 <|user|>, 5 <|assistant|>,
// then printable ASCII from ' ' (code 32) at id 6, so char c has id 6 + code(c) - 32, and '\n' is 6 + 95 = 101.
const id = (c: string, offset = 6) => (c === '\n' ? offset + 95 : offset + c.charCodeAt(0) - 32);

describe('default char tokenizer', () => {
  const tok = charTokenizerFromFiles(buildCharTokenizer());

  test('layout and special tokens', () => {
    assert.equal(DEFAULT_CHAR_ALPHABET.length, 96);
    assert.equal(tok.vocabSize, 102);
    assert.deepEqual(tok.eosTokenIds, [1]);
    assert.equal(tok.padTokenId, 2);
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.bosTokenId, undefined);
    DEFAULT_CHAR_SPECIALS.forEach((t, i) => assert.equal(tok.tokenToId(t), i));
    assert.equal(tok.idToToken(6), ' ');
    assert.equal(tok.idToToken(101), '\n');
    assert.equal(tok.idToToken(100), '~');
  });

  test('hand-checkable ids', () => {
    assert.deepEqual(tok.encode('2+3=5\n'), [24, 17, 25, 35, 27, 101]); // '2' = 6+50-32 = 24, '+' = 6+43-32 = 17, …
    assert.deepEqual(tok.encode('Hi!'), [46, 79, 7]);
    assert.deepEqual(
      tok.encode('Hi!'),
      [...'Hi!'].map((c) => id(c)),
    );
    assert.deepEqual(tok.encode(''), []);
  });

  test('every character of the alphabet round-trips, one token each', () => {
    const ids = tok.encode(DEFAULT_CHAR_ALPHABET);
    assert.deepEqual(
      ids,
      Array.from({ length: 96 }, (_, i) => 6 + i),
    );
    assert.equal(tok.decode(ids), DEFAULT_CHAR_ALPHABET);
    const text = 'def f(x):\n    return x * 2  # "quoted" {braces} [ok] `tick` ~tilde|pipe\\back\n';
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(tok.encode(text).length, text.length);
  });

  test('special tokens inside text are one token; unknown characters are <|unk|>', () => {
    assert.deepEqual(tok.encode('<|user|>1<|endoftext|>'), [4, id('1'), 1]);
    assert.deepEqual(tok.encode('a\té🤖b'), [id('a'), 0, 0, 0, id('b')]); // tab is not in the default alphabet
    assert.equal(tok.decode(tok.encode('a\té')), 'a<|unk|><|unk|>');
    assert.equal(tok.decode([4, id('1'), 1], { skipSpecialTokens: true }), '1');
    assert.deepEqual(
      tok.encode('<think>'),
      [...'<think>'].map((c) => id(c)),
    ); // no reasoning tags by default
  });

  test('chat template: rendered prompt encodes to hand-computed ids', () => {
    const { tokenizerConfig } = buildCharTokenizer();
    const text = renderChat(tokenizerConfig, [{ role: 'user', content: '1+1' }], { addGenerationPrompt: true });
    assert.equal(text, '<|user|>1+1<|endoftext|><|assistant|>');
    assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), [4, id('1'), id('+'), id('1'), 1, 5]);
  });
});

describe('options', () => {
  test('reasoning tags are added, non-special tokens after the specials', () => {
    const tok = charTokenizerFromFiles(
      buildCharTokenizer(DEFAULT_CHAR_ALPHABET, DEFAULT_CHAR_SPECIALS, { reasoningTags: true }),
    );
    assert.equal(tok.vocabSize, 106);
    const ids = tok.encode('<think>2+3</think><answer>5</answer>');
    assert.deepEqual(ids, [6, id('2', 10), id('+', 10), id('3', 10), 7, 8, id('5', 10), 9]);
    assert.equal(tok.decode(ids), '<think>2+3</think><answer>5</answer>');
    // Not special: skipSpecialTokens keeps them, so reward functions can still find the tags.
    assert.equal(tok.decode([...ids, 1], { skipSpecialTokens: true }), '<think>2+3</think><answer>5</answer>');
  });

  test('custom alphabet and specials; <|unk|> is put first when missing', () => {
    const files = buildCharTokenizer('0123456789+=', ['<|endoftext|>']);
    const tok = charTokenizerFromFiles(files);
    assert.equal(tok.tokenToId('<|unk|>'), 0);
    assert.equal(tok.tokenToId('<|endoftext|>'), 1);
    assert.deepEqual(tok.encode('12+30=42'), [3, 4, 12, 5, 2, 13, 6, 4]);
    assert.deepEqual(tok.encode('1 a'), [3, 0, 0]);
    assert.equal(tok.padTokenId, undefined);
    assert.equal(files.tokenizerConfig.chat_template, undefined); // no role tokens, so no default template
    assert.equal(tok.vocabSize, 14);
  });

  test('bad options are AhaError', () => {
    assert.throws(() => buildCharTokenizer(''), AhaError);
    assert.throws(
      () => buildCharTokenizer('abca'),
      (e: unknown) => e instanceof AhaError && /"a" twice/.test(e.message),
    );
    assert.throws(
      () => buildCharTokenizer('ab', ['<|unk|>']),
      (e: unknown) => e instanceof AhaError && /eos token/.test(e.message),
    );
    assert.throws(() => buildCharTokenizer('ab', ['<|endoftext|>', '<|endoftext|>']), AhaError);
    assert.throws(
      () => buildCharTokenizer('ab', ['<|endoftext|>', 'a']),
      (e: unknown) => e instanceof AhaError && /also a character/.test(e.message),
    );
    assert.throws(() => buildCharTokenizer('ab', ['<|endoftext|>'], { padToken: '<|pad|>' }), AhaError);
  });
});

describe('writeCharTokenizer', () => {
  // The golden files were checked to load in Hugging Face's Rust tokenizers 0.23.2 (the core Python's `tokenizers`
  // wraps): same ids and decodes as here, and re-saved by it byte-identical (bar the final newline).
  for (const [name, opts] of [
    ['char-default', {}],
    ['char-reasoning', { reasoningTags: true }],
  ] as const) {
    test(`writes files identical to the ${name} golden fixture, which loadTokenizer reads back`, () => {
      const dir = join(tmp, name);
      const written = writeCharTokenizer(dir, opts);
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
        assert.equal(readFileSync(join(dir, f), 'utf8'), readFileSync(join(TOKENIZER_FIXTURES, name, f), 'utf8'), f);
      }
      const loaded = loadTokenizer(dir);
      const text = 'Hi <think>2+3</think>\n<answer>5</answer><|endoftext|>é~';
      assert.deepEqual(loaded.encode(text), written.encode(text));
      assert.equal(loaded.vocabSize, written.vocabSize);
      assert.deepEqual(loaded.eosTokenIds, [1]);
    });
  }

  test('the tokenizer.json follows the HF schema: keys in order, BPE without merges, Fuse decoder', () => {
    const j = JSON.parse(readFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer.json'), 'utf8'));
    assert.deepEqual(Object.keys(j), [
      'version',
      'truncation',
      'padding',
      'added_tokens',
      'normalizer',
      'pre_tokenizer',
      'post_processor',
      'decoder',
      'model',
    ]);
    assert.equal(j.model.type, 'BPE');
    assert.deepEqual(j.model.merges, []);
    assert.equal(j.model.unk_token, '<|unk|>');
    assert.deepEqual(j.decoder, { type: 'Fuse' });
    // Every added token is in the model vocabulary under the same id.
    for (const t of j.added_tokens) assert.equal(j.model.vocab[t.content], t.id);
    // Vocabulary written in id order, as the Rust library saves it (read from the text: parsing would reorder "0".."9").
    const text = readFileSync(join(TOKENIZER_FIXTURES, 'char-default', 'tokenizer.json'), 'utf8');
    const vocabText = text.slice(text.indexOf('"vocab": {'), text.indexOf('"merges"'));
    const ids = [...vocabText.matchAll(/^ {6}".*": (\d+),?$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      ids,
      Array.from({ length: 102 }, (_, i) => i),
    );
  });
});
