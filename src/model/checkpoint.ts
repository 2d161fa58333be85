import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import {
  parameterCount,
  tensorChunks,
  tensorLayout,
  type EngineConfig,
  type TensorInfo,
  type TensorStore,
} from '../engine/types.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { parseHfConfig, toHfConfig, type HfConfigExtras, type HfModelConfig } from './hfConfig.ts';
import { TORCH_DTYPE_OF } from './saveDtype.ts';
import {
  findSafetensorsFiles,
  planSafetensorsRead,
  readSafetensorsInto,
  readSafetensorsInto16,
  storedDtype,
  writeSafetensors,
  type HalfStore,
  type TensorToWrite,
  type WritableDtype,
} from './safetensors.ts';

/** Tokenizer and generation files copied verbatim when saving a model next to its tokenizer. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
  'generation_config.json',
] as const;

/**
 * A model directory whose config and weight headers have been validated. The caller creates the engine from
 * `config`, then hands its parameter buffer to `loadParams`; the weights are only read then.
 */
export interface ModelDir {
  dir: string;
  config: EngineConfig;
  hf: HfModelConfig;
  layout: TensorInfo[];
  /** The safetensors file(s) the weights come from (one, or the shards in index order). */
  weightFiles: string[];
  /** Fill `target` (one array of `parameterCount(config)` floats laid out by `tensorLayout(config)`, or per-tensor views) from the weights. */
  loadParams(target: TensorStore): void;
  /** Fill 16-bit weights (bits of `dtype`) from the weights: stored bits as they are, other types rounded. */
  loadParams16(target: HalfStore, dtype: 'bf16' | 'f16'): void;
  /** The type most of the weights are stored in. */
  storedDtype(): 'F32' | 'BF16' | 'F16' | 'F64';
}

/** Parse `<dir>/config.json` (or any config.json path) into engine and HF configs. */
export function readHfConfigFile(path: string): { engine: EngineConfig; hf: HfModelConfig } {
  return parseHfConfig(readJsonFile(path), path);
}

/** A JSON file's value; unreadable files and bad JSON are one-line errors naming the file. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AhaError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AhaError(`${path}: invalid JSON (${(e as Error).message.replace(/\s*\n\s*/g, ' ')})`);
  }
  return json;
}

/**
 * Open a Hugging Face model directory (config.json + model.safetensors or a sharded index). Fails early, before any
 * engine is built, on a bad config, missing files, and missing, extra or mis-shaped tensors.
 */
export function loadModelDir(
  dir: string,
  /**
   * `parse`: builds the configs from config.json's JSON (a sequence classifier maps its decoder onto a causal LM);
   * `extra`: tensors allowed beside the layout, read separately (its `score.weight`).
   */
  opts: { parse?: (json: unknown, path: string) => { engine: EngineConfig; hf: HfModelConfig }; extra?: string[] } = {},
): ModelDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AhaError(`${dir}: model directory not found`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new AhaError(`${dir}: config.json not found`);
  const { engine, hf } = opts.parse ? opts.parse(readJsonFile(configPath), configPath) : readHfConfigFile(configPath);
  const extra = opts.extra ?? [];
  const weightFiles = findSafetensorsFiles(dir);
  const layout = tensorLayout(engine);
  planSafetensorsRead(weightFiles, layout, dir, extra);
  const total = parameterCount(engine);
  return {
    dir,
    config: engine,
    hf,
    layout,
    weightFiles,
    loadParams(target: TensorStore) {
      if (typeof target !== 'function' && target.length !== total) {
        throw new Error(`loadParams: target has ${target.length} floats, the model has ${total} parameters`);
      }
      readSafetensorsInto(weightFiles, layout, target, dir, extra);
    },
    loadParams16(target: HalfStore, dtype: 'bf16' | 'f16') {
      readSafetensorsInto16(weightFiles, layout, target, dtype, dir, extra);
    },
    storedDtype() {
      return storedDtype(weightFiles);
    },
  };
}

/** What `saveModelDir` writes. */
export interface SaveModelOptions {
  config: EngineConfig;
  /** Architecture, RoPE and token ids; a loaded `ModelDir.hf` works as is. */
  hf: HfConfigExtras;
  /** The parameters: one buffer laid out by `tensorLayout(config)`, or per-tensor views. */
  params: TensorStore;
  /** Weight dtype on disk (default F32); config.json's torch_dtype follows it. */
  dtype?: WritableDtype;
  /** Copy the tokenizer and generation files (TOKENIZER_FILES) that exist in this directory. */
  tokenizerFrom?: string;
  /** More files to write, name to content (e.g. a training summary); plain file names only. */
  extraFiles?: Record<string, string>;
  /** Extra safetensors `__metadata__` entries. */
  metadata?: Record<string, string>;
  /** Tensors written after the layout's (a sequence classifier's `score.weight`). */
  extraTensors?: TensorToWrite[];
  /** Fields set over the config.json built from `config` (a sequence classifier's architectures, num_labels). */
  configPatch?: Record<string, unknown>;
}

function validFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && basename(name) === name && !name.includes('\\');
}

/**
 * Write a Hugging Face model directory that transformers can load: model.safetensors, tokenizer files (when
 * `tokenizerFrom` is given), generation_config.json (copied, or written from the token ids), extra files, and
 * config.json last. Every file is written atomically.
 */
export function saveModelDir(dir: string, opts: SaveModelOptions): void {
  const { config, params } = opts;
  const dtype = opts.dtype ?? 'F32';
  const total = parameterCount(config);
  if (typeof params !== 'function' && params.length !== total) {
    throw new Error(`saveModelDir: params has ${params.length} floats, the model has ${total} parameters`);
  }
  const extra = opts.extraFiles ?? {};
  for (const name of Object.keys(extra)) {
    if (!validFileName(name))
      throw new AhaError(`saveModelDir: extra file name ${JSON.stringify(name)} must be a plain file name`);
  }
  // Built (and so validated) before anything touches the directory.
  const hfJson = {
    ...toHfConfig(config, opts.hf, { torchDtype: TORCH_DTYPE_OF[dtype] }),
    ...opts.configPatch,
  };

  const tensors: TensorToWrite[] = tensorLayout(config).map((t) => ({
    name: t.name,
    shape: t.shape,
    data: tensorChunks(params, t),
  }));
  tensors.push(...(opts.extraTensors ?? []));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype, metadata: opts.metadata });

  const written = new Set<string>();
  if (opts.tokenizerFrom !== undefined && resolve(opts.tokenizerFrom) !== resolve(dir)) {
    if (!existsSync(opts.tokenizerFrom)) throw new AhaError(`${opts.tokenizerFrom}: tokenizer directory not found`);
    for (const name of TOKENIZER_FILES) {
      const src = join(opts.tokenizerFrom, name);
      if (name in extra || !existsSync(src)) continue;
      writeFileAtomic(join(dir, name), readFileSync(src));
      written.add(name);
    }
  }
  if (!written.has('generation_config.json') && !('generation_config.json' in extra)) {
    const gen: Record<string, unknown> = {};
    if (opts.hf.bosTokenId != null) gen.bos_token_id = opts.hf.bosTokenId;
    if (opts.hf.eosTokenId != null) gen.eos_token_id = opts.hf.eosTokenId;
    if (opts.hf.padTokenId != null) gen.pad_token_id = opts.hf.padTokenId;
    writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  }
  for (const [name, content] of Object.entries(extra)) writeFileAtomic(join(dir, name), content);
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(hfJson, null, 2) + '\n');
}

/**
 * Makes `dir` ready to receive a new model: created when missing; an existing non-empty directory is refused unless
 * `overwrite`, which empties it first, so no file of an older model (optimizer state, trainer state, shards) is left
 * beside the new weights.
 */
export function prepareModelOutDir(dir: string, overwrite: boolean, flag = '--overwrite'): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new AhaError(`${dir}: exists and is not a directory`);
    const entries = readdirSync(dir);
    if (entries.length > 0) {
      if (!overwrite) {
        const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, ... (${entries.length} entries)` : '');
        throw new AhaError(`${dir}: not empty (${shown}); pass ${flag} to replace what is there`);
      }
      for (const e of entries) rmSync(join(dir, e), { recursive: true, force: true });
    }
  }
  mkdirSync(dir, { recursive: true });
}
