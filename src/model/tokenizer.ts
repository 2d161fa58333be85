import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { AhaError } from '../errors.ts';
import {
  readJsonObject,
  readSpecialTokenFiles,
  resolveSpecialTokens,
  SPECIAL_TOKEN_KEYS,
  tokenContent,
  tokenizerSpecialToken,
  type SpecialTokenFiles,
} from './specialTokens.ts';

/** Options for {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the tokens the tokenizer wraps text in (e.g. a BOS), as `add_special_tokens` in transformers. Default true,
   * as there. Text rendered by a chat template already carries them: encode it with `addSpecialTokens: false`.
   */
  addSpecialTokens?: boolean;
}

/** Options for {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (eos, pad, chat markers; not added tokens such as Qwen's `<think>`). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * transformers' `clean_up_tokenization_spaces` (" ." → "." and similar). Default false here whatever the
   * tokenizer_config.json says: rewards must see exactly the text the model produced, and decode(encode(s)) == s.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** A text tokenizer as the rest of aha sees it. */
export interface Tokenizer {
  /** One past the largest token id (added tokens included): the least embedding rows a model needs. */
  readonly vocabSize: number;
  /** Ids that end a generation; `[0]` is the tokenizer's own eos. See resolveSpecialTokens for the precedence. */
  readonly eosTokenIds: readonly number[];
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
  readonly unkTokenId?: number;
  encode(text: string, options?: EncodeOptions): number[];
  /** Ids with no token (e.g. the padded tail of a model's embedding) are skipped, as the Rust tokenizers do. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Whether `id` is a special token (what `skipSpecialTokens` drops). */
  isSpecialId(id: number): boolean;
}

/** The parsed files a tokenizer is built from. */
export interface TokenizerFiles extends SpecialTokenFiles {
  tokenizerJson: Record<string, unknown>;
  /** Where tokenizer.json came from, for error messages. */
  tokenizerJsonName?: string;
}

/**
 * transformers classes whose __init__ rebuilds the post-processor from `add_bos_token` / `add_eos_token`
 * (default true / false), ignoring tokenizer.json's. DeepSeek-V3/R1 and R1-Distill ship "LlamaTokenizerFast", so
 * their prompts get a BOS this way even where tokenizer.json's post-processor adds none.
 */
const REBUILDS_POST_PROCESSOR = new Set([
  'LlamaTokenizer',
  'LlamaTokenizerFast',
  'CodeLlamaTokenizer',
  'CodeLlamaTokenizerFast',
  'GemmaTokenizer',
  'GemmaTokenizerFast',
]);

function templatePostProcessor(bos: string | undefined, eos: string | undefined): Record<string, unknown> {
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const single: unknown[] = [];
  const pair: unknown[] = [];
  if (bos !== undefined) single.push(special(bos, 0));
  single.push(seq('A', 0));
  if (eos !== undefined) single.push(special(eos, 0));
  if (bos !== undefined) pair.push(special(bos, 0));
  pair.push(seq('A', 0));
  if (eos !== undefined) pair.push(special(eos, 0));
  if (bos !== undefined) pair.push(special(bos, 1));
  pair.push(seq('B', 1));
  if (eos !== undefined) pair.push(special(eos, 1));
  return { type: 'TemplateProcessing', single, pair, special_tokens: {} };
}

class LoadedTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenIds: readonly number[];
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
  readonly unkTokenId?: number;
  private readonly hf: HfTokenizer;
  private readonly idToTok: readonly (string | undefined)[];
  private readonly specialIds: Set<number>;

  constructor(files: TokenizerFiles) {
    const name = files.tokenizerJsonName ?? 'tokenizer.json';
    const tj = files.tokenizerJson;
    const tc = files.tokenizerConfig ?? {};
    if (!tj.model || typeof tj.model !== 'object') throw new AhaError(`${name}: no "model" section`);
    const json: Record<string, unknown> = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      ...tj,
    };
    const cls = typeof tc.tokenizer_class === 'string' ? tc.tokenizer_class : undefined;
    if (cls !== undefined && REBUILDS_POST_PROCESSOR.has(cls)) {
      const addBos = tc.add_bos_token === undefined ? true : tc.add_bos_token === true;
      const addEos = tc.add_eos_token === true;
      const bos = addBos ? tokenizerSpecialToken(files, 'bos_token') : undefined;
      const eos = addEos ? tokenizerSpecialToken(files, 'eos_token') : undefined;
      const cfgName = files.names?.tokenizerConfig ?? 'tokenizer_config.json';
      if (addBos && typeof bos !== 'string')
        throw new AhaError(`${cfgName}: add_bos_token is true but there is no bos_token`);
      if (addEos && typeof eos !== 'string')
        throw new AhaError(`${cfgName}: add_eos_token is true but there is no eos_token`);
      json.post_processor = templatePostProcessor(bos ?? undefined, eos ?? undefined);
    }
    // The library expects special tokens as plain strings; tokenizer_config.json may hold AddedToken objects.
    const libConfig: Record<string, unknown> = { ...tc };
    for (const key of SPECIAL_TOKEN_KEYS) {
      if (key in tc) libConfig[key] = tokenizerSpecialToken(files, key) ?? null;
    }
    if (Array.isArray(tc.additional_special_tokens)) {
      libConfig.additional_special_tokens = tc.additional_special_tokens
        .map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`))
        .filter((t): t is string => typeof t === 'string');
    }
    try {
      this.hf = new HfTokenizer(json, libConfig);
    } catch (e) {
      throw new AhaError(`${name}: cannot build the tokenizer (${(e as Error).message})`);
    }

    // The model's id → token table, added tokens included (the library writes them into it).
    const table = this.hf.model?.vocab;
    if (!table) throw new AhaError(`${name}: the tokenizer has no vocabulary`);
    let end = table.length;
    while (end > 0 && table[end - 1] === undefined) end--;
    this.vocabSize = end;
    this.idToTok = table;

    this.specialIds = new Set();
    for (const [id, tok] of this.hf.get_added_tokens_decoder()) if (tok.special) this.specialIds.add(id);
    for (const text of (libConfig.additional_special_tokens as string[] | undefined) ?? []) {
      const id = this.tokenToId(text);
      if (id !== undefined) this.specialIds.add(id);
    }

    const resolved = resolveSpecialTokens(files, (t) => this.tokenToId(t));
    this.eosTokenIds = Object.freeze([...resolved.eosTokenIds]);
    if (resolved.bosTokenId !== undefined) this.bosTokenId = resolved.bosTokenId;
    if (resolved.padTokenId !== undefined) this.padTokenId = resolved.padTokenId;
    if (resolved.unkTokenId !== undefined) this.unkTokenId = resolved.unkTokenId;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new AhaError(`encode: expected a string, got ${typeof text}`);
    const ids: (number | undefined)[] = this.hf.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
    }).ids;
    // A character with no token and no unk_token yields no id, as in the Rust tokenizers.
    return ids.filter((id): id is number => id !== undefined && id !== null);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known: number[] = [];
    for (const id of ids) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new AhaError(`decode: token ids must be non-negative integers, got ${JSON.stringify(id)}`);
      }
      if (this.idToTok[id] !== undefined) known.push(id);
    }
    if (known.length === 0) return '';
    return this.hf.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToTok[id] : undefined;
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }
}

/** Build a tokenizer from already-parsed files (e.g. those {@link buildCharTokenizer} makes). */
export function createTokenizer(files: TokenizerFiles): Tokenizer {
  return new LoadedTokenizer(files);
}

/**
 * Load the tokenizer of a Hugging Face model directory: tokenizer.json (required) and tokenizer_config.json,
 * special_tokens_map.json, config.json, generation_config.json (each optional) for the special tokens.
 * Missing directory or tokenizer.json, or a malformed file → AhaError naming the file.
 */
export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AhaError(`${dir}: not a directory`);
  const tjPath = join(dir, 'tokenizer.json');
  if (!existsSync(tjPath)) {
    const slow = ['tokenizer.model', 'vocab.json'].filter((f) => existsSync(join(dir, f)));
    const hint = slow.length
      ? ` (found ${slow.join(', ')}: only the fast tokenizer.json format is supported; save it with transformers' AutoTokenizer.save_pretrained)`
      : '';
    throw new AhaError(`${tjPath}: file not found${hint}`);
  }
  const files: TokenizerFiles = {
    ...readSpecialTokenFiles(dir),
    tokenizerJson: readJsonObject(tjPath),
    tokenizerJsonName: tjPath,
  };
  return createTokenizer(files);
}
