import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { createTokenizer, type Tokenizer } from './tokenizer.ts';

/** Printable ASCII (space through '~', ids in code-point order) followed by newline. */
export const DEFAULT_CHAR_ALPHABET: string =
  Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('') + '\n';

/** The unknown-character token; always in the vocabulary, at id 0 unless `specials` places it elsewhere. */
export const CHAR_UNK_TOKEN = '<|unk|>';

/**
 * Default special tokens, in id order: unk, eos, pad, then the chat roles the default template uses.
 * With the default alphabet, character c has id `DEFAULT_CHAR_SPECIALS.length + (code(c) - 32)` ("\n" is last).
 */
export const DEFAULT_CHAR_SPECIALS: readonly string[] = [
  '<|unk|>',
  '<|endoftext|>',
  '<|pad|>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
];

/** R1-style reasoning tags, added (not special, so decode with skipSpecialTokens keeps them for rewards). */
export const REASONING_TAGS: readonly string[] = ['<think>', '</think>', '<answer>', '</answer>'];

/**
 * Zephyr-style template over the default role tokens: `<|role|>content<|endoftext|>` per message and
 * `<|assistant|>` as the generation prompt. Roles other than system/user/assistant raise.
 */
export const DEFAULT_CHAR_CHAT_TEMPLATE =
  '{%- for message in messages -%}' +
  "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}" +
  "{{ raise_exception('Unsupported role: ' + message['role']) }}" +
  '{%- endif -%}' +
  "{{ '<|' + message['role'] + '|>' + message['content'] + eos_token }}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}";

/** Options for {@link buildCharTokenizer} and {@link writeCharTokenizer}. */
export interface CharTokenizerOptions {
  /** Characters, one token each, in id order after the added tokens. Default {@link DEFAULT_CHAR_ALPHABET}. */
  alphabet?: string;
  /** Special tokens (skipped by decode with skipSpecialTokens), first in id order. Default {@link DEFAULT_CHAR_SPECIALS}.
   * `<|unk|>` is put first when missing. */
  specials?: readonly string[];
  /** Non-special added tokens (matched whole in text, kept by skipSpecialTokens), after the specials. */
  addedTokens?: readonly string[];
  /** Add {@link REASONING_TAGS} to addedTokens. Default false. */
  reasoningTags?: boolean;
  /** Default "<|endoftext|>"; must be one of the specials. */
  eosToken?: string;
  /** Default "<|pad|>" when it is a special, else none. */
  padToken?: string | null;
  /** Default {@link DEFAULT_CHAR_CHAT_TEMPLATE} when the specials include its role tokens, else none; null for none. */
  chatTemplate?: string | null;
  /** tokenizer_config.json `model_max_length`. Default 4096. */
  modelMaxLength?: number;
}

/** The two files of a character tokenizer, as JSON objects. */
export interface CharTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

function addedToken(id: number, content: string, special: boolean): Record<string, unknown> {
  // Field order as the Rust tokenizers serialize an AddedToken.
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/**
 * A character-level tokenizer in the standard Hugging Face tokenizer.json format: a BPE model with no merges over
 * single characters (so each character is one token; @huggingface/tokenizers has no WordLevel model), no
 * normalizer or pre-tokenizer, a Fuse decoder (tokens joined with nothing between), and every added token also in
 * the model vocabulary under the same id, so the Rust `tokenizers` (and Python's, which wraps it) and
 * @huggingface/tokenizers give the same ids. Characters outside the alphabet encode to `<|unk|>`.
 * Ids: specials in order from 0, then added tokens, then the alphabet's characters in order.
 */
export function buildCharTokenizer(
  alphabet: string = DEFAULT_CHAR_ALPHABET,
  specials: readonly string[] = DEFAULT_CHAR_SPECIALS,
  opts: Omit<CharTokenizerOptions, 'alphabet' | 'specials'> = {},
): CharTokenizerFiles {
  const chars = Array.from(alphabet);
  if (chars.length === 0) throw new AhaError('char tokenizer: the alphabet is empty');
  const seen = new Set<string>();
  for (const c of chars) {
    if (seen.has(c)) throw new AhaError(`char tokenizer: the alphabet has ${JSON.stringify(c)} twice`);
    seen.add(c);
  }
  const specialList = specials.includes(CHAR_UNK_TOKEN) ? [...specials] : [CHAR_UNK_TOKEN, ...specials];
  const added = [...(opts.addedTokens ?? []), ...(opts.reasoningTags ? REASONING_TAGS : [])];
  const tokens = new Set<string>();
  for (const t of [...specialList, ...added]) {
    if (typeof t !== 'string' || t.length === 0)
      throw new AhaError(`char tokenizer: token ${JSON.stringify(t)} must be a non-empty string`);
    if (seen.has(t))
      throw new AhaError(`char tokenizer: token ${JSON.stringify(t)} is also a character of the alphabet`);
    if (tokens.has(t)) throw new AhaError(`char tokenizer: token ${JSON.stringify(t)} is listed twice`);
    tokens.add(t);
  }
  const eosToken = opts.eosToken ?? '<|endoftext|>';
  if (!specialList.includes(eosToken))
    throw new AhaError(`char tokenizer: eos token ${JSON.stringify(eosToken)} is not among the specials`);
  const padToken = opts.padToken === undefined ? (specialList.includes('<|pad|>') ? '<|pad|>' : null) : opts.padToken;
  if (padToken !== null && !specialList.includes(padToken)) {
    throw new AhaError(`char tokenizer: pad token ${JSON.stringify(padToken)} is not among the specials`);
  }
  const hasRoles = ['<|system|>', '<|user|>', '<|assistant|>'].every((t) => specialList.includes(t));
  const chatTemplate =
    opts.chatTemplate === undefined ? (hasRoles ? DEFAULT_CHAR_CHAT_TEMPLATE : null) : opts.chatTemplate;
  const modelMaxLength = opts.modelMaxLength ?? 4096;
  if (!Number.isInteger(modelMaxLength) || modelMaxLength <= 0)
    throw new AhaError('char tokenizer: modelMaxLength must be a positive integer');

  const vocab: Record<string, number> = {};
  const addedTokens: Record<string, unknown>[] = [];
  const addedDecoder: Record<string, unknown> = {};
  let id = 0;
  for (const t of specialList) {
    vocab[t] = id;
    addedTokens.push(addedToken(id, t, true));
    addedDecoder[String(id)] = {
      content: t,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
    id++;
  }
  for (const t of added) {
    vocab[t] = id;
    addedTokens.push(addedToken(id, t, false));
    addedDecoder[String(id)] = {
      content: t,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: false,
    };
    id++;
  }
  for (const c of chars) vocab[c] = id++;

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: CHAR_UNK_TOKEN,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    added_tokens_decoder: addedDecoder,
    bos_token: null,
    eos_token: eosToken,
    pad_token: padToken,
    unk_token: CHAR_UNK_TOKEN,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  if (chatTemplate !== null) tokenizerConfig.chat_template = chatTemplate;
  return { tokenizerJson, tokenizerConfig };
}

/**
 * Write a character tokenizer's tokenizer.json and tokenizer_config.json into `dir` (created if needed; each file
 * written atomically) and return the loaded tokenizer. Loadable by {@link loadTokenizer}, transformers'
 * AutoTokenizer and the Rust/Python `tokenizers`.
 */
export function writeCharTokenizer(dir: string, opts: CharTokenizerOptions = {}): Tokenizer {
  const { alphabet, specials, ...rest } = opts;
  const files = buildCharTokenizer(alphabet ?? DEFAULT_CHAR_ALPHABET, specials ?? DEFAULT_CHAR_SPECIALS, rest);
  writeFileAtomic(join(dir, 'tokenizer.json'), serializeTokenizerJson(files.tokenizerJson));
  writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2) + '\n');
  return charTokenizerFromFiles(files);
}

/**
 * tokenizer.json text with the vocabulary in id order, as the Rust tokenizers save it (a JS object would list
 * integer-like keys such as "0".."9" first, which is valid but hard to read).
 */
export function serializeTokenizerJson(tokenizerJson: Record<string, unknown>): string {
  const model = tokenizerJson.model as { vocab: Record<string, number> } & Record<string, unknown>;
  const marker = '\u0000vocab\u0000';
  const text = JSON.stringify({ ...tokenizerJson, model: { ...model, vocab: marker } }, null, 2);
  const entries = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]);
  const body = entries.length
    ? '{\n' + entries.map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`).join(',\n') + '\n    }'
    : '{}';
  return text.replace(JSON.stringify(marker), () => body) + '\n';
}

/** An in-memory tokenizer from {@link buildCharTokenizer}'s files, without touching the disk. */
export function charTokenizerFromFiles(files: CharTokenizerFiles): Tokenizer {
  return createTokenizer({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
    tokenizerJsonName: 'char tokenizer.json',
    names: { tokenizerConfig: 'char tokenizer_config.json' },
  });
}
