import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Model, type WeightsDtype } from '../engine/model.ts';
import type { TensorInfo } from '../engine/types.ts';
import { initLoraAdapters, loraLayout as loraLayoutFn, type LoraConfig } from '../engine/lora.ts';
import { loadModelDir, saveModelDir, type ModelDir } from './checkpoint.ts';
import {
  adapterBase,
  isAdapterDir,
  loadAdapterInto,
  mergeAdapterWeights,
  readAdapterConfig,
  readAdapterTensors,
} from './adapter.ts';
import { halfBitsToFloat32, type WritableDtype } from './safetensors.ts';
import { resolveSaveDtype, sourceDtype, type SaveDtype } from './saveDtype.ts';
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
  /** The whole model the weights came from (the base model of an adapter directory, else `dir`). */
  baseDir?: string;
  /** The type the checkpoint stores its weights in (most of them, by bytes): what `auto` dtypes keep. */
  storedDtype?: WeightsDtype;
}

/** Recipe spelling of weight types (transformers' torch_dtype) to the engine's. */
export function weightsFromTorchDtype(d: 'auto' | 'float32' | 'bfloat16' | 'float16'): WeightsDtype | 'auto' {
  return d === 'float32' ? 'f32' : d === 'bfloat16' ? 'bf16' : d === 'float16' ? 'f16' : 'auto';
}

/** How `loadPretrained` builds the model. */
export interface LoadOptions {
  requireTokenizer?: boolean;
  /** What the model will be used for (checked against the machine's memory before anything is allocated). */
  memory?: MemoryUse;
  /**
   * How the engine keeps the weights. 'auto' (the default): as the checkpoint stores them (bf16, f16) when nothing
   * trains them (inference, or a LoRA base), float32 otherwise.
   */
  weights?: WeightsDtype | 'auto';
  /** Train new LoRA adapters on the (frozen) weights, initialised as PEFT does from `loraSeed`. */
  lora?: LoraConfig;
  /** `dir` is an adapter checkpoint being resumed: keep its adapters as the ones that train. */
  resumeAdapters?: boolean;
  loraSeed?: number;
}

/** The weight type 'auto' resolves to for a model directory. */
export function resolveWeightsDtype(md: ModelDir, opts: LoadOptions): WeightsDtype {
  const w = opts.weights ?? 'auto';
  const frozen = !!opts.lora || !opts.memory?.training;
  if (w !== 'auto') {
    if (w !== 'f32' && !frozen)
      throw new AhaError(`${md.dir}: full fine-tuning trains float32 weights; use weights f32 (or auto), or LoRA`);
    return w;
  }
  if (!frozen) return 'f32';
  return checkpointDtype(md);
}

function checkpointDtype(md: ReturnType<typeof loadModelDir>): WeightsDtype {
  const stored = md.storedDtype();
  return stored === 'BF16' ? 'bf16' : stored === 'F16' ? 'f16' : 'f32';
}

/**
 * Loads a Hugging Face model directory (config.json + safetensors, tokenizer optional), or a PEFT adapter directory
 * on top of its base model (adapter_config.json names the base; inference keeps the adapters unmerged, new LoRA
 * training merges them into the base first). `memory` says what the model will be used for: when the machine
 * cannot hold that, a one-line error says so before anything is allocated.
 */
export function loadPretrained(dir: string, opts: LoadOptions = {}): Pretrained {
  if (!existsSync(dir)) throw new AhaError(`${dir}: model directory not found`);
  const adapterDir = isAdapterDir(dir) ? dir : undefined;
  const baseDir = adapterDir ? adapterBase(adapterDir) : dir;
  const md = loadModelDir(baseDir);
  const prior = adapterDir ? readAdapterConfig(adapterDir).lora : undefined;
  // An adapter directory keeps its adapters (unmerged) for inference and when resuming them; any other training
  // starts from base + adapter merged, with new adapters when opts.lora asks for them.
  const keep = !!adapterDir && (opts.resumeAdapters === true || (!opts.memory?.training && !opts.lora));
  const lora = keep ? prior : opts.lora;
  const weights = resolveWeightsDtype(md, { ...opts, lora });
  const storedDtype = checkpointDtype(md);
  const memory = { ...(opts.memory ?? {}) };
  if (memory.reference === 'auto') memory.reference = storedDtype;
  assertMemoryFits(md.config, { ...memory, weights, lora }, dir);
  const model = new Model(md.config, { weights, lora });
  if (weights === 'f32') md.loadParams(model.store('params'));
  else md.loadParams16(model.halfStore(), weights);
  if (adapterDir && !keep) {
    const priorModel = prior!;
    const loraLayout = loraLayoutFn(model.config, priorModel);
    const data = readAdapterTensors(adapterDir, loraLayout);
    mergeAdapterWeights(model, priorModel, loraLayout, (t) => data.get(t.name)!);
  } else if (adapterDir) {
    loadAdapterInto(model, adapterDir);
  }
  if (opts.lora && !keep)
    initLoraAdapters(model.adapterLayout, (t) => model.tensorView(t, 'adapters'), opts.loraSeed ?? 0);
  const tokDir = adapterDir && existsSync(join(adapterDir, 'tokenizer.json')) ? adapterDir : baseDir;
  const hasTok = existsSync(join(tokDir, 'tokenizer.json'));
  if (opts.requireTokenizer && !hasTok) throw new AhaError(`${dir}: tokenizer.json missing (needed for text input)`);
  return {
    dir: tokDir,
    model,
    hf: md.hf,
    tokenizer: hasTok ? loadTokenizer(tokDir) : undefined,
    baseDir,
    storedDtype,
  };
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

/**
 * The safetensors dtype `save_dtype` asks for when saving a model trained from `modelPath`: `auto` is the type that
 * model came in (an adapter directory's: its base model's; see sourceDtype).
 */
export function saveDtypeFor(d: SaveDtype, modelPath: string): WritableDtype {
  return resolveSaveDtype(d, () =>
    sourceDtype(loadModelDir(isAdapterDir(modelPath) ? adapterBase(modelPath) : modelPath)),
  );
}

/**
 * Saves the model's current weights as a Hugging Face directory in `dtype` (default F32; 16-bit types rounded to
 * nearest even), copying tokenizer files from `tokenizerFrom`. 16-bit weights are widened tensor by tensor first
 * (saved in their own type they keep their bits). A LoRA model's adapters are not part of its weights: save them
 * with writeAdapterFiles, or merge them (mergeAdapterDir).
 */
export function savePretrained(
  p: { model: Model; hf: HfModelConfig },
  dir: string,
  opts: { tokenizerFrom?: string; extraFiles?: Record<string, string>; dtype?: WritableDtype } = {},
): void {
  if (p.model.lora)
    throw new AhaError(
      `${dir}: the model carries LoRA adapters; save them as an adapter, or merge them with aha merge`,
    );
  const half = p.model.weightsDtype !== 'f32';
  saveModelDir(dir, {
    config: p.model.config,
    hf: hfExtras(p.hf),
    params: half ? widenedStore(p.model) : p.model.store('params'),
    dtype: opts.dtype,
    tokenizerFrom: opts.tokenizerFrom,
    extraFiles: opts.extraFiles,
  });
}

/** 16-bit weights as float32 views, each a fresh copy. */
function widenedStore(model: Model): (t: TensorInfo, start: number, length: number) => Float32Array {
  const dtype = model.weightsDtype as 'bf16' | 'f16';
  return (t, start, length) => halfBitsToFloat32(model.halfView(t.offset + start, length), dtype);
}
