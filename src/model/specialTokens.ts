import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';

/**
 * The JSON files of a model directory that say which tokens are special. Each is optional except where a caller
 * says otherwise; `names` records where each came from so errors can name the file.
 */
export interface SpecialTokenFiles {
  tokenizerConfig?: Record<string, unknown>;
  specialTokensMap?: Record<string, unknown>;
  config?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  names?: Partial<Record<'tokenizerConfig' | 'specialTokensMap' | 'config' | 'generationConfig', string>>;
}

/** Special tokens as resolved from a model directory (see {@link resolveSpecialTokens} for the precedence). */
export interface ResolvedSpecialTokens {
  /** Ids that end a generation. The tokenizer's own eos comes first, then the model's extra stop ids. */
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
  unkTokenId?: number;
  eosToken?: string;
  bosToken?: string;
  padToken?: string;
  unkToken?: string;
}

/** The special-token attributes transformers keeps on a tokenizer (its `SPECIAL_TOKENS_ATTRIBUTES`). */
export const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;
export type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/** Read and parse a JSON object file, or return undefined when it does not exist. Malformed → AhaError naming it. */
export function readJsonObjectIfExists(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  return readJsonObject(path);
}

/** Read and parse a JSON file that must hold an object. Missing or malformed → AhaError naming the file. */
export function readJsonObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AhaError(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read (${code ?? String(e)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AhaError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AhaError(`${path}: expected a JSON object at the top level`);
  }
  return value as Record<string, unknown>;
}

/** Read the optional special-token files of a model directory: tokenizer_config.json, special_tokens_map.json,
 * config.json and generation_config.json. */
export function readSpecialTokenFiles(dir: string): SpecialTokenFiles {
  const p = {
    tokenizerConfig: join(dir, 'tokenizer_config.json'),
    specialTokensMap: join(dir, 'special_tokens_map.json'),
    config: join(dir, 'config.json'),
    generationConfig: join(dir, 'generation_config.json'),
  };
  return {
    tokenizerConfig: readJsonObjectIfExists(p.tokenizerConfig),
    specialTokensMap: readJsonObjectIfExists(p.specialTokensMap),
    config: readJsonObjectIfExists(p.config),
    generationConfig: readJsonObjectIfExists(p.generationConfig),
    names: p,
  };
}

/**
 * The text of a special-token entry as tokenizer files store it: a plain string, an AddedToken object
 * (`{"content": ..., "__type": "AddedToken", ...}`), or null. Returns undefined for a value that is absent.
 */
export function tokenContent(value: unknown, where: string): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  throw new AhaError(`${where}: expected a token string or an AddedToken object with "content"`);
}

/**
 * A special token's text from the tokenizer files: tokenizer_config.json when it has the key (null there means
 * "this tokenizer has none"), else special_tokens_map.json, as transformers does for files that predate
 * `added_tokens_decoder`. undefined when neither file mentions the key.
 */
export function tokenizerSpecialToken(files: SpecialTokenFiles, key: string): string | null | undefined {
  const tc = files.tokenizerConfig;
  if (tc && key in tc)
    return tokenContent(tc[key], `${files.names?.tokenizerConfig ?? 'tokenizer_config.json'}: ${key}`);
  const sm = files.specialTokensMap;
  if (sm && key in sm)
    return tokenContent(sm[key], `${files.names?.specialTokensMap ?? 'special_tokens_map.json'}: ${key}`);
  return undefined;
}

/** The special tokens transformers hands a chat template (its `special_tokens_map`): each one that is set. */
export function templateSpecialTokens(files: SpecialTokenFiles): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const v = tokenizerSpecialToken(files, key);
    if (typeof v === 'string') out[key] = v;
  }
  const extra = files.tokenizerConfig?.additional_special_tokens ?? files.specialTokensMap?.additional_special_tokens;
  if (Array.isArray(extra)) {
    out.additional_special_tokens = extra
      .map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`))
      .filter((t): t is string => typeof t === 'string');
  }
  return out;
}

function idList(value: unknown, where: string): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value : [value];
  for (const v of list) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new AhaError(`${where}: expected a non-negative integer or a list of them, got ${JSON.stringify(value)}`);
    }
  }
  return list as number[];
}

/** A token id field from config.json, looking in `text_config` too (multimodal configs keep the LM's ids there). */
function configIds(cfg: Record<string, unknown> | undefined, key: string, where: string): number[] | undefined {
  if (!cfg) return undefined;
  const top = idList(cfg[key], `${where}: ${key}`);
  if (top !== undefined) return top;
  const text = cfg.text_config;
  if (text && typeof text === 'object' && !Array.isArray(text)) {
    return idList((text as Record<string, unknown>)[key], `${where}: text_config.${key}`);
  }
  return undefined;
}

/** The model-side ids for `key`: generation_config.json when it sets the key, else config.json. */
function modelIds(files: SpecialTokenFiles, key: string): number[] | undefined {
  return (
    configIds(files.generationConfig, key, files.names?.generationConfig ?? 'generation_config.json') ??
    configIds(files.config, key, files.names?.config ?? 'config.json')
  );
}

/**
 * Resolve eos/bos/pad/unk the way a transformers user gets them.
 *
 * Precedence:
 * - Token texts come from the tokenizer files: tokenizer_config.json, falling back to special_tokens_map.json
 *   (an explicit null in tokenizer_config.json means "none", e.g. Qwen's `"bos_token": null`). Each text must be
 *   in the vocabulary (`tokenToId`), else AhaError.
 * - `eosTokenIds` = [tokenizer eos id, then every id of generation_config.json `eos_token_id` (an int or a list),
 *   or config.json `eos_token_id` when generation_config.json does not set it], without repeats. That is the
 *   union of what `tokenizer.eos_token_id` gives and what `model.generate()` stops on (vLLM stops on the same
 *   union). For Llama 3.1 Instruct: [128009, 128001, 128008]; for Qwen2.5-Instruct: [151645, 151643].
 * - `bosTokenId` / `padTokenId` / `unkTokenId`: the tokenizer's token when the tokenizer files mention the key at
 *   all (null → none: the tokenizer never adds one); only when they say nothing, generation_config.json's
 *   `*_token_id`, else config.json's. No pad is invented: transformers' generate() falls back to eos, and a caller
 *   that needs a pad should do the same explicitly.
 */
export function resolveSpecialTokens(
  files: SpecialTokenFiles,
  tokenToId: (token: string) => number | undefined,
): ResolvedSpecialTokens {
  const tcName = files.tokenizerConfig
    ? (files.names?.tokenizerConfig ?? 'tokenizer_config.json')
    : (files.names?.specialTokensMap ?? 'special_tokens_map.json');
  const lookup = (key: string): { text?: string; id?: number; mentioned: boolean } => {
    const text = tokenizerSpecialToken(files, key);
    if (text === undefined) return { mentioned: false };
    if (text === null) return { mentioned: true };
    const id = tokenToId(text);
    if (id === undefined)
      throw new AhaError(`${tcName}: ${key} ${JSON.stringify(text)} is not in the tokenizer's vocabulary`);
    return { text, id, mentioned: true };
  };
  const single = (key: string): { text?: string; id?: number } => {
    const t = lookup(`${key}_token`);
    if (t.mentioned) return t;
    const ids = modelIds(files, `${key}_token_id`);
    return { id: ids?.[0] };
  };

  const eos = lookup('eos_token');
  const eosIds: number[] = [];
  if (eos.id !== undefined) eosIds.push(eos.id);
  for (const id of modelIds(files, 'eos_token_id') ?? []) if (!eosIds.includes(id)) eosIds.push(id);

  const bos = single('bos');
  const pad = single('pad');
  const unk = lookup('unk_token');
  const out: ResolvedSpecialTokens = { eosTokenIds: eosIds };
  if (eos.text !== undefined) out.eosToken = eos.text;
  if (bos.id !== undefined) out.bosTokenId = bos.id;
  if (bos.text !== undefined) out.bosToken = bos.text;
  if (pad.id !== undefined) out.padTokenId = pad.id;
  if (pad.text !== undefined) out.padToken = pad.text;
  if (unk.id !== undefined) out.unkTokenId = unk.id;
  if (unk.text !== undefined) out.unkToken = unk.text;
  return out;
}
