/**
 * SentencePiece-style tokenizers (byte-fallback BPE, '▁' for spaces: Llama 2, TinyLlama, Mistral 7B) exported to
 * GGUF for llama.cpp's SPM tokenizer. A small tokenizer.json is built here in the structure of Llama 2's (the
 * "legacy" Prepend + Replace normalizer, no pre-tokenizer) and of the newer one (a Metaspace pre-tokenizer with
 * prepend_scheme "first"), with 23 merges laid out as transformers' SentencePiece converter writes them (every
 * split of a token, grouped by token, in its order). The metadata is checked against hand-computed values; with
 * node-llama-cpp installed (see ggufLlamaCpp.test.ts; skipped without it), llama.cpp's tokenization of texts must
 * be aha's ids, a random Llama model must generate in llama.cpp as in aha, and with a vocabulary trained here
 * (180 tokens) llama.cpp must tokenize 300 random texts as aha does. (Scoring every token alike, as llama.cpp's own
 * converter does from a tokenizer.json alone, fails both the hand-built and the trained checks.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhaError } from '../../src/errors.ts';
import { exportGguf } from '../../src/model/gguf/exportGguf.ts';
import { ggufTokenizerMetadata, TOKEN_TYPE } from '../../src/model/gguf/ggufTokenizer.ts';
import { loadTokenizer } from '../../src/model/tokenizer.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { parseGguf, randomCheckpoint } from '../support/ggufModels.ts';
import { mulberry32 } from '../../src/data/rng.ts';
import { llamaCppGreedy, loadLlamaCpp } from '../support/llamaCpp.ts';

const { llama, skip } = await loadLlamaCpp();

const dir = mkdtempSync(join(tmpdir(), 'aha-gguf-spm-'));
after(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const S = '\u2581';
/** Merges in rank order; each made token's id is 259 + its first merge's position among the made tokens. */
const MERGES: [string, string][] = [
  [S, 't'],
  ['h', 'e'],
  ['l', 'l'],
  ['n', 'd'],
  [S, 'a'],
  [S + 't', 'he'],
  ['e', 'll'],
  [S + 'a', 'n'],
  ['H', 'ell'],
  ['Hell', 'o'],
  ['o', 'r'],
  [S, 'w'],
  [S + 'w', 'or'],
  ['l', 'd'],
  [S + 'wor', 'ld'],
  [S, S],
  [S + S, S + S],
  // Two splits of ▁and, consecutive, as the converter lists them (by the left token's id).
  [S + 'a', 'nd'],
  [S + 'an', 'd'],
  // all (rank 19) before ▁ta (rank 20): " tall" is ▁t + all, where joining the leftmost pair first gives ▁ta + ll.
  ['a', 'll'],
  [S + 't', 'a'],
  [S, 'Hello'],
  [S, 'h'],
];
const CHARS = [S, 'H', 'e', 'l', 'o', 'w', 'r', 'd', 't', 'h', 'a', 'n', ',', '.', '!'];
const MADE = [...new Set(MERGES.map(([a, b]) => a + b))];
const ID: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
for (let b = 0; b < 256; b++) ID[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
MADE.forEach((p, i) => (ID[p] = 259 + i));
CHARS.forEach((c, i) => (ID[c] = 259 + MADE.length + i));
/** One added token that is not special (llama.cpp's USER_DEFINED), past the model's vocabulary. */
const TOOL = { id: 259 + MADE.length + CHARS.length, content: '<tool>' };
const ROWS = TOOL.id + 1 + 7; // 7 padding rows

const addedToken = (id: number, content: string, special: boolean) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special,
});

/** A tokenizer.json of Llama 2's structure (`legacy`) or of the newer Metaspace form. */
function spmTokenizerJson(form: 'legacy' | 'metaspace', merges: [string, string][] = MERGES) {
  const legacy = form === 'legacy';
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      addedToken(0, '<unk>', true),
      addedToken(1, '<s>', true),
      addedToken(2, '</s>', true),
      addedToken(TOOL.id, TOOL.content, false),
    ],
    normalizer: legacy
      ? {
          type: 'Sequence',
          normalizers: [
            { type: 'Prepend', prepend: S },
            { type: 'Replace', pattern: { String: ' ' }, content: S },
          ],
        }
      : null,
    pre_tokenizer: legacy ? null : { type: 'Metaspace', replacement: S, prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    // transformers' converter writes this decoder for both forms.
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: S }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: ID,
      // Llama 2's file has "a b" strings, newer ones [a, b] pairs.
      merges: legacy ? merges.map(([a, b]) => `${a} ${b}`) : merges,
    },
  };
}

/** A tokenizer directory (tokenizer.json and a Llama tokenizer_config.json). */
function spmTokenizerDir(name: string, tj: unknown): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(
    join(d, 'tokenizer_config.json'),
    JSON.stringify({
      add_bos_token: true,
      add_eos_token: false,
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      pad_token: null,
      legacy: false,
      tokenizer_class: 'LlamaTokenizer',
    }),
  );
  return d;
}

/** Llama 2's shape, small: no biases, untied output, plain RoPE; the tokenizer above in ROWS rows. */
const LLAMA2_SPM_CONFIG: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: ROWS,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

const legacyDir = spmTokenizerDir('legacy-tok', spmTokenizerJson('legacy'));
const metaspaceDir = spmTokenizerDir('metaspace-tok', spmTokenizerJson('metaspace'));
const ids = (...pieces: string[]) => pieces.map((p) => ID[p]);
const bytes = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 3 + b);

test("aha's tokenizer loads both forms and tokenizes by the merges' ranks, with byte fallback", () => {
  for (const d of [legacyDir, metaspaceDir]) {
    const tok = loadTokenizer(d);
    const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
    assert.deepEqual(tok.encode('Hello world'), [1, ...ids(S + 'Hello', S + 'world')]);
    // ▁ ▁ t a l l: ▁t (0), ll (2), then all (19) before ▁ta (20).
    assert.deepEqual(enc('the tall hand'), ids(S + 'the', S + 't', 'all', S + 'h', 'a', 'nd'));
    // é is no token: its UTF-8 bytes C3 A9; the newline is <0x0A>.
    assert.deepEqual(enc('é'), [ID[S], ...bytes('é')]);
    assert.deepEqual(enc('Hello\nworld'), [...ids(S + 'Hello'), 3 + 0x0a, ...ids('w', 'or', 'ld')]);
    assert.equal(tok.decode(enc('Hello\nworld, é 🙂')), 'Hello\nworld, é 🙂');
  }
  // The Prepend normalizer adds '▁' before a leading space; Metaspace does not (the text already starts with one).
  assert.deepEqual(loadTokenizer(legacyDir).encode(' Hello', { addSpecialTokens: false }), ids(S + S, 'Hello'));
  assert.deepEqual(loadTokenizer(metaspaceDir).encode(' Hello', { addSpecialTokens: false }), ids(S + 'Hello'));
});

test('the GGUF metadata: llama model, tokens as they are, types, scores -rank of the first merge, space prefix', () => {
  for (const [d, form] of [
    [legacyDir, 'legacy'],
    [metaspaceDir, 'metaspace'],
  ] as const) {
    const { metadata, info } = ggufTokenizerMetadata(d, ROWS, {});
    const v = (k: string) => metadata[k]?.value;
    assert.equal(v('tokenizer.ggml.model'), 'llama', form);
    assert.equal(v('tokenizer.ggml.pre'), undefined);
    assert.equal(v('tokenizer.ggml.merges'), undefined);
    assert.equal(v('tokenizer.ggml.add_space_prefix'), true);
    assert.equal(metadata['tokenizer.ggml.scores'].type, 'f32[]');
    const tokens = v('tokenizer.ggml.tokens') as string[];
    const types = Array.from(v('tokenizer.ggml.token_type') as ArrayLike<number>);
    const scores = Array.from(v('tokenizer.ggml.scores') as ArrayLike<number>);
    assert.equal(tokens.length, ROWS);
    assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
    assert.equal(tokens[3 + 0x0a], '<0x0A>');
    assert.equal(tokens[3 + 0xff], '<0xFF>');
    assert.equal(tokens[259], S + 't');
    assert.equal(tokens[ID[S + 'Hello']], '▁Hello');
    assert.equal(tokens[TOOL.id], '<tool>');
    assert.equal(tokens[ROWS - 1], `[PAD${ROWS - 1}]`);
    const T = TOKEN_TYPE;
    assert.deepEqual(types.slice(0, 5), [T.UNKNOWN, T.CONTROL, T.CONTROL, T.BYTE, T.BYTE]);
    assert.ok(types.slice(3, 259).every((t) => t === T.BYTE));
    assert.ok(types.slice(259, TOOL.id).every((t) => t === T.NORMAL));
    assert.equal(types[TOOL.id], T.USER_DEFINED);
    assert.ok(types.slice(TOOL.id + 1).every((t) => t === T.UNUSED));
    // Made tokens score -(rank of their first merge); ▁and's two merges are ranks 17 and 18: -17. Everything no
    // merge makes scores -23 (the number of merges), below them all.
    const want = new Array(ROWS).fill(-23);
    const firstRank = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22];
    MADE.forEach((_, i) => (want[259 + i] = firstRank[i] === 0 ? 0 : -firstRank[i]));
    assert.deepEqual(scores, want);
    assert.equal(scores[ID[S + 'and']], -17);
    assert.ok(scores[ID.all] > scores[ID[S + 'ta']]);
    assert.deepEqual(info, {
      kind: 'SentencePiece BPE',
      pre: 'none',
      tokens: ROWS,
      merges: 23,
      addBos: true,
      chatTemplate: false,
      addSpacePrefix: true,
      unmatched: 0,
    });
  }
  // No prefix: Replace alone, or Metaspace "never".
  const noPrefix = spmTokenizerJson('legacy');
  noPrefix.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: S } as never;
  const never = spmTokenizerJson('metaspace');
  never.pre_tokenizer = { type: 'Metaspace', replacement: S, prepend_scheme: 'never', split: false };
  for (const [name, tj] of [
    ['replace-only', noPrefix],
    ['never', never],
  ] as const) {
    const { metadata } = ggufTokenizerMetadata(spmTokenizerDir(name, tj), ROWS, {});
    assert.equal(metadata['tokenizer.ggml.add_space_prefix'].value, false, name);
  }
  // Without the merge "▁an d", llama.cpp can still join ▁an + d into ▁and; "▁ ▁" again after "▁ h" makes ▁▁'s
  // merges not consecutive: 2 tokens unmatched.
  const odd = MERGES.filter(([a, b]) => !(a === S + 'an' && b === 'd'));
  odd.push([S, S]);
  const { info } = ggufTokenizerMetadata(spmTokenizerDir('odd', spmTokenizerJson('legacy', odd)), ROWS, {});
  assert.equal(info.unmatched, 2);
});

test('SentencePiece-style tokenizers llama.cpp cannot match are a one-line error', () => {
  const refused = (name: string, edit: (tj: ReturnType<typeof spmTokenizerJson>) => void, re: RegExp) => {
    const tj = spmTokenizerJson(name.startsWith('meta') ? 'metaspace' : 'legacy');
    edit(tj);
    const d = spmTokenizerDir(`bad-${name}`, tj);
    assert.throws(
      () => ggufTokenizerMetadata(d, ROWS, {}),
      (e: Error) => e instanceof AhaError && re.test(e.message) && !e.message.includes('\n'),
      name,
    );
  };
  refused(
    'meta-split',
    (tj) => ((tj.pre_tokenizer as Record<string, unknown>).split = true),
    /Metaspace pre-tokenizer splits the text at each "▁"/,
  );
  refused(
    'nfkc',
    (tj) => (tj.normalizer!.normalizers as unknown[]).unshift({ type: 'NFKC' }),
    /its normalizer \(NFKC\+Prepend\+Replace\) is not the Prepend "▁" \+ Replace/,
  );
  refused(
    'whitespace',
    (tj) => ((tj as Record<string, unknown>).pre_tokenizer = { type: 'Whitespace' }),
    /no pre-tokenizer or a Metaspace one \(this one is Whitespace\)/,
  );
  refused(
    'no-bytes',
    (tj) => delete (tj.model.vocab as Record<string, number>)['<0x80>'],
    /without the byte token <0x80> is not exportable/,
  );
  refused(
    'unigram',
    (tj) => {
      // A Unigram model of the same pieces, as T5's tokenizer.json has.
      const pieces = Object.entries(ID).map(([piece, id]) => [piece, -id]);
      (tj as Record<string, unknown>).model = { type: 'Unigram', unk_id: 0, vocab: pieces, byte_fallback: true };
    },
    /only BPE tokenizers are exportable to GGUF \(this one is Unigram\)/,
  );
});

/** Texts whose ids llama.cpp must give as aha does (no BOS: node-llama-cpp's tokenize adds none). */
const TEXTS = [
  'Hello world',
  'the tall hand and the world',
  'Hello, world! the  tall   and    hand',
  'trailing spaces   ',
  'Hello\nworld\n\n the\n',
  'café é and 🙂!',
  '  two leading spaces',
  'Hello<tool> world',
];

for (const [form, tokDir] of [
  ['legacy', legacyDir],
  ['metaspace', metaspaceDir],
] as const) {
  test(`llama.cpp tokenizes the ${form} form's export as aha does and generates as aha does`, { skip }, async (t) => {
    const m = randomCheckpoint(join(dir, `llama2-${form}`), LLAMA2_SPM_CONFIG, {
      tokenizer: tokDir,
      seed: 21,
      std: 0.3,
    });
    const out = join(dir, `llama2-${form}.gguf`);
    const r = await exportGguf({ model: m.dir, out });
    assert.equal(r.tokenizer.kind, 'SentencePiece BPE');
    const g = await parseGguf(out);
    assert.equal(g.metadata['tokenizer.ggml.bos_token_id'].value, 1);
    assert.equal(g.metadata['tokenizer.ggml.eos_token_id'].value, 2);
    assert.equal(g.metadata['tokenizer.ggml.unknown_token_id'].value, 0);
    assert.equal(g.metadata['tokenizer.ggml.add_bos_token'].value, true);
    const p = loadPretrained(m.dir);
    const tok = p.tokenizer!;
    const model = await llama!.loadModel({ modelPath: out });
    try {
      // With the Metaspace form, transformers (and aha) add no '▁' before a leading space or after an added token,
      // where llama.cpp does (below).
      const texts = form === 'legacy' ? TEXTS : TEXTS.filter((s) => !s.includes('<tool>') && !s.startsWith(' '));
      for (const text of texts) {
        const want = tok.encode(text, { addSpecialTokens: false });
        assert.deepEqual(model.tokenize(text), want, JSON.stringify(text));
        assert.equal(model.detokenize(want), tok.decode(want), JSON.stringify(text));
      }
      // A leading space: the Prepend normalizer and llama.cpp both give ▁▁Hello; Metaspace, which prepends only
      // where the text does not start with '▁', gives ▁Hello, as llama.cpp does not.
      assert.deepEqual(model.tokenize(' Hello'), ids(S + S, 'Hello'));
      assert.deepEqual(
        tok.encode(' Hello', { addSpecialTokens: false }),
        form === 'legacy' ? ids(S + S, 'Hello') : ids(S + 'Hello'),
      );
      // After an added token: llama.cpp prepends '▁' as the Prepend normalizer does; Metaspace "first" does not.
      const withTool = [ID[S + 'Hello'], TOOL.id];
      assert.deepEqual(model.tokenize('Hello<tool>world'), [...withTool, ID[S + 'world']]);
      assert.deepEqual(
        tok.encode('Hello<tool>world', { addSpecialTokens: false }),
        form === 'legacy' ? [...withTool, ID[S + 'world']] : [...withTool, ...ids('w', 'or', 'ld')],
      );

      const prompt = tok.encode('Hello world, the tall hand');
      assert.equal(prompt[0], 1);
      const [aha] = await p.model.generate([prompt], {
        maxNewTokens: 16,
        temperature: 0,
        stopTokenIds: [],
        seeds: [0],
      });
      const got = await llamaCppGreedy(model, prompt, 16, 64);
      t.diagnostic(`aha       ${Array.from(aha.tokens).join(' ')}`);
      t.diagnostic(`llama.cpp ${got.join(' ')}`);
      assert.ok(new Set(got).size > 1, 'the continuation is not one token repeated');
      assert.deepEqual(got, Array.from(aha.tokens));
    } finally {
      await model.dispose();
    }
  });
}

const CORPUS = `It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of
foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the
season of Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had
nothing before us, we were all going direct to Heaven, we were all going direct the other way. Banana bandana
cabana; assess, possess, mississippi, aaaa abab baba abba.`;

/**
 * A SentencePiece-style tokenizer trained here: BPE on the corpus's '▁'-prefixed words (the most frequent adjacent
 * pair first, ties by the pair's text), then merges as transformers' SentencePiece converter writes them: for each
 * token in training order, every split into two tokens, ordered by the left then right token's id.
 */
function trainedSpmTokenizer(merges: number) {
  const words = CORPUS.split(/\s+/).map((w) => Array.from(S + w));
  const chars = [...new Set(words.flat())].sort();
  const pieces: string[] = [];
  for (let m = 0; m < merges; m++) {
    const count = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++) {
        const k = JSON.stringify([w[i], w[i + 1]]);
        count.set(k, (count.get(k) ?? 0) + 1);
      }
    let best: string | undefined;
    for (const [k, c] of count)
      if (best === undefined || c > count.get(best)! || (c === count.get(best)! && k < best)) best = k;
    if (best === undefined) break;
    const [a, b] = JSON.parse(best) as [string, string];
    pieces.push(a + b);
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
  }
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const p of [...pieces, ...chars]) vocab[p] ??= Object.keys(vocab).length;
  const pairs: [string, string][] = [];
  for (const p of pieces) {
    const local: [string, string][] = [];
    const cs = Array.from(p);
    for (let k = 1; k < cs.length; k++) {
      const a = cs.slice(0, k).join('');
      const b = cs.slice(k).join('');
      if (a in vocab && b in vocab) local.push([a, b]);
    }
    local.sort((x, y) => vocab[x[0]] - vocab[y[0]] || vocab[x[1]] - vocab[y[1]]);
    pairs.push(...local);
  }
  const tj = spmTokenizerJson('legacy', pairs) as ReturnType<typeof spmTokenizerJson> & { model: { vocab: unknown } };
  tj.model.vocab = vocab;
  tj.added_tokens = tj.added_tokens.slice(0, 3);
  return { tj, rows: Object.keys(vocab).length, pieces: pieces.length, merges: pairs.length };
}

test(
  'llama.cpp tokenizes 300 random texts as aha does with a trained SentencePiece-style vocabulary',
  { skip },
  async (t) => {
    const trained = trainedSpmTokenizer(200);
    t.diagnostic(`${trained.pieces} tokens made by ${trained.merges} merges`);
    const tokDir = spmTokenizerDir('trained-tok', trained.tj);
    const m = randomCheckpoint(
      join(dir, 'llama2-trained'),
      { ...LLAMA2_SPM_CONFIG, vocab_size: trained.rows },
      { tokenizer: tokDir },
    );
    const out = join(dir, 'llama2-trained.gguf');
    const r = await exportGguf({ model: m.dir, out });
    assert.equal(r.tokenizer.unmatched, 0);
    const tok = loadTokenizer(m.dir);
    const model = await llama!.loadModel({ modelPath: out });
    try {
      const rand = mulberry32(7);
      const words = CORPUS.split(/\s+/);
      const extra = [' ', ' ', '  ', '\n', 'é', '🙂', 'x', 'q'];
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
      for (let i = 0; i < 300; i++) {
        let text = '';
        const n = 1 + Math.floor(rand() * 8);
        for (let j = 0; j < n; j++) {
          const w = pick(words);
          // Whole words, pieces of words and glued words, so merges meet in many orders.
          const cut = rand() < 0.3 ? w.slice(Math.floor(rand() * w.length)) : w;
          text += cut + (rand() < 0.7 ? ' ' : rand() < 0.5 ? pick(extra) : '');
        }
        const want = tok.encode(text, { addSpecialTokens: false });
        assert.deepEqual(model.tokenize(text), want, JSON.stringify(text));
      }
    } finally {
      await model.dispose();
    }
  },
);
