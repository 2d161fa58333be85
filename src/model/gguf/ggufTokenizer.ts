/**
 * A model directory's tokenizer as GGUF `tokenizer.ggml.*` metadata for llama.cpp: the token strings, their types,
 * the merges or scores, the pre-tokenizer name, special token ids, whether a BOS is added, and the chat template.
 *
 * Three kinds of tokenizer.json are exported:
 * - byte-level BPE (GPT-2 style, a ByteLevel pre-tokenizer or decoder: Qwen2/2.5/3, SmolLM2, Llama 3), for
 *   llama.cpp's BPE tokenizer (`gpt2`): tokens and merges as they are, the pre-tokenizer named after its regex
 *   (`qwen2`, `llama-bpe`, `smollm`, `gpt-2`);
 * - SentencePiece-style BPE (byte_fallback, '▁' for spaces: Llama 2, TinyLlama, Mistral 7B), for llama.cpp's SPM
 *   tokenizer (`llama`): tokens as they are ('▁' included), the 256 `<0xXX>` tokens typed BYTE, a score per token
 *   from the merges' ranks (sentencePieceVocab.ts), no merges, and `add_space_prefix` from the Prepend normalizer or
 *   Metaspace pre-tokenizer;
 * - aha's character tokenizer (a BPE over raw characters with no merges and no pre-tokenizer): each character
 *   token is written in byte-level form (" " as "Ġ", "\n" as "Ċ"), and a character of several UTF-8 bytes gets the
 *   merges that join its bytes back into it, so llama.cpp splits text into the same characters. llama.cpp splits
 *   the text with its `default` regex first, which never cuts inside a character, so the ids are the same; a
 *   character outside the alphabet is dropped by llama.cpp where aha gives `<|unk|>`.
 * Anything else (WordPiece, Unigram, pre-tokenizers or normalizers llama.cpp does not have) is refused with a
 * one-line error. Normalizers of byte-level BPE (Qwen's NFC) are not carried: llama.cpp has none for BPE.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../../errors.ts';
import { getChatTemplate, hasChatTemplate } from '../chatTemplate.ts';
import type { HfModelConfig } from '../hfConfig.ts';
import { loadTokenizer } from '../tokenizer.ts';
import { gguf, type GgufValue } from './ggufFile.ts';
import { BYTE_PIECE, mergePairs, spmScores, spmSpacePrefix } from './sentencePieceVocab.ts';
import { isObj, leaves, type Json } from './tokenizerJson.ts';

/** llama.cpp's token types (llama_token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

let byteToUnicode: string[] | null = null;
/**
 * GPT-2's byte → character table: printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the other
 * 68 bytes, in order, for U+0100 onwards (so space, 0x20, is 'Ġ' U+0120 and newline 'Ċ' U+010A).
 */
export function gpt2ByteToUnicode(): readonly string[] {
  if (byteToUnicode) return byteToUnicode;
  const t: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    t[b] = String.fromCodePoint(printable ? b : next++);
  }
  return (byteToUnicode = t);
}

/** `text`'s UTF-8 bytes, each as its GPT-2 byte character. */
export function byteLevelForm(text: string): string {
  const t = gpt2ByteToUnicode();
  let s = '';
  for (const b of Buffer.from(text, 'utf8')) s += t[b];
  return s;
}

/** tokenizer.json's pre-tokenizer regexes, as llama.cpp names the ones it implements. */
const PRE_BY_REGEX: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'qwen2',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'llama-bpe',
};

/** llama.cpp's pre-tokenizer name for a byte-level tokenizer.json, or an AhaError naming what it has. */
function byteLevelPre(tj: Json, name: string): string {
  const parts = leaves(tj.pre_tokenizer);
  const splits = parts.filter((p) => p.type === 'Split');
  const byteLevel = parts.filter((p) => p.type === 'ByteLevel');
  const digits = parts.filter((p) => p.type === 'Digits');
  const other = parts.filter((p) => !['Split', 'ByteLevel', 'Digits'].includes(p.type as string));
  const usesRegex = byteLevel.some((p) => p.use_regex !== false);
  // llama.cpp's BPE never prepends a space to the text.
  if (byteLevel.some((p) => p.add_prefix_space === true))
    throw new AhaError(`${name}: its ByteLevel pre-tokenizer adds a prefix space, which llama.cpp's BPE does not`);
  if (other.length === 0 && byteLevel.length === 1) {
    if (splits.length === 1 && digits.length === 0 && !usesRegex) {
      const pattern = splits[0].pattern;
      const re = isObj(pattern) && typeof pattern.Regex === 'string' ? pattern.Regex : null;
      if (re !== null && PRE_BY_REGEX[re] !== undefined && splits[0].behavior === 'Isolated') return PRE_BY_REGEX[re];
    }
    if (splits.length === 0 && usesRegex) {
      if (digits.length === 0) return 'gpt-2';
      if (digits.length === 1 && digits[0].individual_digits === true) return 'smollm';
    }
  }
  const what = parts.map((p) => String(p.type)).join('+') || 'none';
  throw new AhaError(
    `${name}: its pre-tokenizer (${what}) is none that llama.cpp implements here (qwen2, llama-bpe, smollm, gpt-2 regexes)`,
  );
}

/** Merges of tokenizer.json (either "a b" strings or [a, b] pairs) as llama.cpp's "a b" strings. */
function mergeStrings(merges: unknown, name: string): string[] {
  if (!Array.isArray(merges)) throw new AhaError(`${name}: model.merges must be a list`);
  return merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
      return `${m[0]} ${m[1]}`;
    throw new AhaError(`${name}: model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
}

/** What {@link ggufTokenizerMetadata} found, for the export's summary. */
export interface GgufTokenizerInfo {
  kind: 'byte-level BPE' | 'SentencePiece BPE' | 'character';
  /** llama.cpp's pre-tokenizer name; `none` for SentencePiece (llama.cpp's SPM tokenizer has none). */
  pre: string;
  tokens: number;
  /** The merges written (BPE) or the scores were derived from (SentencePiece). */
  merges: number;
  addBos: boolean;
  chatTemplate: boolean;
  /** SentencePiece only: whether llama.cpp prepends '▁' to the text (`add_space_prefix`). */
  addSpacePrefix?: boolean;
  /** SentencePiece only: tokens llama.cpp may join differently from the merges (see SpmScores.unmatched). */
  unmatched?: number;
}

/**
 * The `tokenizer.*` metadata of the tokenizer in `dir`, with `rows` tokens (the model's embedding rows: ids the
 * tokenizer does not use become `[PAD<id>]`, type UNUSED, as llama.cpp's converter writes them). Special ids are
 * the tokenizer's, else config.json's (`hf`).
 */
export function ggufTokenizerMetadata(
  dir: string,
  rows: number,
  hf: Partial<Pick<HfModelConfig, 'bosTokenId' | 'eosTokenId' | 'padTokenId'>> = {},
): { metadata: Record<string, GgufValue>; info: GgufTokenizerInfo } {
  const name = join(dir, 'tokenizer.json');
  const tok = loadTokenizer(dir);
  const tj = JSON.parse(readFileSync(name, 'utf8')) as Json;
  const model = tj.model;
  if (!isObj(model) || model.type !== 'BPE')
    throw new AhaError(
      `${name}: only BPE tokenizers are exportable to GGUF (this one is ${isObj(model) ? String(model.type) : 'unknown'})`,
    );
  const spm = model.byte_fallback === true;
  const byteLevel = !spm && [...leaves(tj.pre_tokenizer), ...leaves(tj.decoder)].some((p) => p.type === 'ByteLevel');
  const vocab = model.vocab;
  if (!isObj(vocab)) throw new AhaError(`${name}: model.vocab must be an object`);
  let merges = mergeStrings(model.merges ?? [], name);
  let pre: string;
  let addSpacePrefix: boolean | undefined;
  if (spm) {
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const)
      if (typeof model[key] === 'string' && model[key] !== '')
        throw new AhaError(`${name}: model.${key} is set, which llama.cpp's SentencePiece tokenizer does not have`);
    if (model.ignore_merges === true)
      throw new AhaError(`${name}: model.ignore_merges is true, which llama.cpp's SentencePiece tokenizer does not do`);
    addSpacePrefix = spmSpacePrefix(tj, name);
    // llama.cpp turns a character that is no token into its bytes' tokens, and fails where one is missing.
    for (let b = 0; b < 256; b++) {
      const piece = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      if (typeof vocab[piece] !== 'number')
        throw new AhaError(`${name}: a byte_fallback tokenizer without the byte token ${piece} is not exportable`);
    }
    pre = 'none';
  } else if (byteLevel) pre = byteLevelPre(tj, name);
  else {
    if (merges.length > 0 || tj.pre_tokenizer != null || tj.normalizer != null)
      throw new AhaError(
        `${name}: a BPE over raw characters is exportable only without merges, pre-tokenizer and normalizer (aha's character tokenizer)`,
      );
    pre = 'default';
  }

  const tokens: (string | undefined)[] = new Array(rows);
  const types = new Int32Array(rows);
  const added = new Map<number, { content: string; special: boolean }>();
  for (const a of Array.isArray(tj.added_tokens) ? tj.added_tokens : []) {
    if (isObj(a) && typeof a.id === 'number' && typeof a.content === 'string')
      added.set(a.id, { content: a.content, special: a.special === true });
  }
  const place = (id: number, text: string, type: number) => {
    if (id >= rows)
      throw new AhaError(
        `${name}: token id ${id} is past the model's ${rows} embedding rows; llama.cpp needs one row per token`,
      );
    tokens[id] = text;
    types[id] = type;
  };
  const charMerges = new Set<string>();
  for (const [text, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new AhaError(`${name}: model.vocab[${JSON.stringify(text)}] must be a token id`);
    if (added.has(id)) continue;
    if (spm) {
      place(id, text, BYTE_PIECE.test(text) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL);
      continue;
    }
    if (byteLevel) {
      place(id, text, TOKEN_TYPE.NORMAL);
      continue;
    }
    const form = byteLevelForm(text);
    place(id, form, TOKEN_TYPE.NORMAL);
    // One character of several bytes: merges joining its byte characters left to right, so that llama.cpp,
    // which starts from bytes, ends at this token.
    const cps = Array.from(form);
    if (Array.from(text).length === 1)
      for (let k = 1; k < cps.length; k++) charMerges.add(`${cps.slice(0, k).join('')} ${cps[k]}`);
  }
  if (!byteLevel && !spm) merges = [...charMerges];
  // Added tokens are matched in the raw text by llama.cpp (not in byte-level form), as transformers does.
  for (const [id, a] of added) place(id, a.content, a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED);
  if (spm && tok.unkTokenId !== undefined && tok.unkTokenId < rows) types[tok.unkTokenId] = TOKEN_TYPE.UNKNOWN;
  for (let id = 0; id < rows; id++)
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_TYPE.UNUSED;
    }

  const m: Record<string, GgufValue> = {};
  let unmatched: number | undefined;
  if (spm) {
    const ids = new Map<string, number>();
    for (let id = 0; id < rows; id++) if (types[id] !== TOKEN_TYPE.UNUSED) ids.set(tokens[id]!, id);
    const s = spmScores(ids, mergePairs(model.merges ?? [], name), rows);
    unmatched = s.unmatched;
    m['tokenizer.ggml.model'] = gguf.str('llama');
    m['tokenizer.ggml.tokens'] = gguf.strings(tokens as string[]);
    m['tokenizer.ggml.scores'] = gguf.f32s(s.scores);
    m['tokenizer.ggml.token_type'] = gguf.i32s(types);
    m['tokenizer.ggml.add_space_prefix'] = gguf.bool(addSpacePrefix!);
  } else {
    m['tokenizer.ggml.model'] = gguf.str('gpt2');
    m['tokenizer.ggml.pre'] = gguf.str(pre);
    m['tokenizer.ggml.tokens'] = gguf.strings(tokens as string[]);
    m['tokenizer.ggml.token_type'] = gguf.i32s(types);
    m['tokenizer.ggml.merges'] = gguf.strings(merges);
  }
  const firstEos = ([] as number[]).concat(hf.eosTokenId ?? [])[0];
  const bos = tok.bosTokenId ?? hf.bosTokenId ?? undefined;
  const eos = tok.eosTokenIds[0] ?? firstEos;
  const pad = tok.padTokenId ?? hf.padTokenId ?? undefined;
  if (bos !== undefined) m['tokenizer.ggml.bos_token_id'] = gguf.u32(bos);
  if (eos !== undefined) m['tokenizer.ggml.eos_token_id'] = gguf.u32(eos);
  if (tok.unkTokenId !== undefined) m['tokenizer.ggml.unknown_token_id'] = gguf.u32(tok.unkTokenId);
  if (pad !== undefined) m['tokenizer.ggml.padding_token_id'] = gguf.u32(pad);
  // Whether aha's tokenizer wraps text in BOS/EOS (transformers' add_special_tokens), seen on a sample text.
  const probe = 'Hello world';
  const plain = tok.encode(probe, { addSpecialTokens: false });
  const wrapped = tok.encode(probe);
  const addBos = bos !== undefined && wrapped.length > plain.length && wrapped[0] === bos && plain[0] !== bos;
  const addEos = eos !== undefined && wrapped.length > plain.length && wrapped[wrapped.length - 1] === eos;
  m['tokenizer.ggml.add_bos_token'] = gguf.bool(addBos);
  m['tokenizer.ggml.add_eos_token'] = gguf.bool(addEos);
  let chatTemplate = false;
  if (hasChatTemplate(dir)) {
    m['tokenizer.chat_template'] = gguf.str(getChatTemplate(dir));
    chatTemplate = true;
  }
  return {
    metadata: m,
    info: {
      kind: spm ? 'SentencePiece BPE' : byteLevel ? 'byte-level BPE' : 'character',
      pre,
      tokens: rows,
      merges: merges.length,
      addBos,
      chatTemplate,
      ...(spm ? { addSpacePrefix, unmatched } : {}),
    },
  };
}
