import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Model } from '../engine/model.ts';
import { loadModelDir, saveModelDir } from './checkpoint.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import type { HfConfigExtras, HfModelConfig } from './hfConfig.ts';
import { AhaError } from '../errors.ts';
import { assertMemoryFits, type MemoryUse } from '../engine/memoryPlan.ts';

/** A model directory loaded into the engine, with its tokenizer when the directory has one. */
export interface Pretrained {
  dir: string;
  model: Model;
  hf: HfModelConfig;
  tokenizer?: Tokenizer;
}

/**
 * Loads a Hugging Face model directory (config.json + safetensors, tokenizer optional). `memory` says what the model
 * will be used for: when the machine cannot hold that, a one-line error says so before anything is allocated.
 */
export function loadPretrained(dir: string, opts: { requireTokenizer?: boolean; memory?: MemoryUse } = {}): Pretrained {
  if (!existsSync(dir)) throw new AhaError(`${dir}: model directory not found`);
  const md = loadModelDir(dir);
  assertMemoryFits(md.config, opts.memory ?? {}, dir);
  const model = new Model(md.config);
  md.loadParams(model.store('params'));
  const hasTok = existsSync(join(dir, 'tokenizer.json'));
  if (opts.requireTokenizer && !hasTok) throw new AhaError(`${dir}: tokenizer.json missing (needed for text input)`);
  return { dir, model, hf: md.hf, tokenizer: hasTok ? loadTokenizer(dir) : undefined };
}

/** The fields of a loaded config that saving needs. */
export function hfExtras(hf: HfModelConfig): HfConfigExtras {
  return {
    architecture: hf.architecture,
    ropeTheta: hf.ropeTheta,
    ropeScaling: hf.ropeScaling,
    maxPositionEmbeddings: hf.maxPositionEmbeddings,
    slidingWindow: hf.slidingWindow,
    maxWindowLayers: hf.maxWindowLayers,
    bosTokenId: hf.bosTokenId,
    eosTokenId: hf.eosTokenId,
    padTokenId: hf.padTokenId,
    initializerRange: hf.initializerRange,
  };
}

/** Saves the model's current weights as a Hugging Face directory, copying tokenizer files from `tokenizerFrom`. */
export function savePretrained(
  p: { model: Model; hf: HfModelConfig },
  dir: string,
  opts: { tokenizerFrom?: string; extraFiles?: Record<string, string>; dtype?: 'F32' | 'BF16' } = {},
): void {
  saveModelDir(dir, {
    config: p.model.config,
    hf: hfExtras(p.hf),
    params: p.model.store('params'),
    dtype: opts.dtype,
    tokenizerFrom: opts.tokenizerFrom,
    extraFiles: opts.extraFiles,
  });
}
