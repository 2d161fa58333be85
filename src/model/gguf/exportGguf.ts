/**
 * `aha export --format gguf`: a Hugging Face model directory (or a LoRA adapter, merged into its base first) as one
 * GGUF file that llama.cpp (and so Ollama, LM Studio) loads: llama.cpp's tensor names and q/k layout, the model and
 * tokenizer metadata, weights in F32, F16, BF16 or Q8_0.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { AhaError } from '../../errors.ts';
import { tensorChunks, type EngineConfig, type TensorInfo } from '../../engine/types.ts';
import { loraLayout } from '../../engine/lora.ts';
import { adapterBase, isAdapterDir, mergeAdapterWeights, readAdapterConfig, readAdapterTensors } from '../adapter.ts';
import { loadModelDir } from '../checkpoint.ts';
import type { HfModelConfig } from '../hfConfig.ts';
import { float32ToBfloat16Bits, float32ToFloat16Bits, readSafetensorsTensor } from '../safetensors.ts';
import { gguf, writeGgufFile, type GgmlTypeName, type GgufTensor, type GgufValue } from './ggufFile.ts';
import { ggufModelPlan, type LlamaCppArch } from './ggufModelMetadata.ts';
import { ggufTokenizerMetadata, type GgufTokenizerInfo } from './ggufTokenizer.ts';
import { llamaCppTensorName, permuteRopeRows } from './llamaCppTensors.ts';
import { quantizeQ8_0 } from './q8_0.ts';

/** The weight types an export can write (2-D tensors; 1-D tensors are always F32). */
export const GGUF_EXPORT_DTYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufExportDtype = (typeof GGUF_EXPORT_DTYPES)[number];

/** llama.cpp's `general.file_type` (llama_ftype) for each dtype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16. */
const FILE_TYPE: Record<GgufExportDtype, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const TYPE_NAME: Record<GgufExportDtype, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0' };

/** What {@link exportGguf} is asked to do. */
export interface ExportGgufOptions {
  /** A model directory (config.json + safetensors + tokenizer.json) or a PEFT adapter directory. */
  model: string;
  /** An adapter's base model (default: the one adapter_config.json names). */
  base?: string;
  /** The GGUF file to write. */
  out: string;
  /** Default: the checkpoint's own type (bf16 or f16 when stored so, else f32), so nothing is rounded. */
  dtype?: GgufExportDtype;
  /** Replace an existing `out`. */
  overwrite?: boolean;
  /** Called after each tensor is written. */
  onTensor?: (done: number, total: number) => void;
}

/** What an export wrote. */
export interface ExportGgufResult {
  out: string;
  arch: LlamaCppArch;
  dtype: GgufExportDtype;
  tensors: number;
  bytes: number;
  /** Tensors asked to be Q8_0 whose rows are not a multiple of 32, written as F16 instead. */
  f16Fallbacks: string[];
  tokenizer: GgufTokenizerInfo;
  /** The model directory the weights came from (the base, for an adapter). */
  weightsFrom: string;
  /** Adapted matrices merged, for an adapter; 0 otherwise. */
  merged: number;
}

/** Weights in float32, one whole tensor at a time. */
interface WeightSource {
  dir: string;
  tokenizerDir: string;
  engine: EngineConfig;
  hf: HfModelConfig;
  layout: TensorInfo[];
  stored: string;
  merged: number;
  /** Makes the weights readable (an adapter's merge); called once the export is known to be possible. */
  prepare(): Promise<void>;
  read(t: TensorInfo): Float32Array;
}

/** Weights of a model directory, read from its safetensors tensor by tensor (never the whole model at once). */
function modelSource(dir: string): WeightSource {
  const md = loadModelDir(dir);
  return {
    dir,
    tokenizerDir: dir,
    engine: md.config,
    hf: md.hf,
    layout: md.layout,
    stored: md.storedDtype(),
    merged: 0,
    prepare: async () => {},
    read: (t) => {
      const got = readSafetensorsTensor(md.weightFiles, t.name);
      // loadModelDir checked every tensor of the layout is there; a tied lm_head is not in the layout.
      if (!got) throw new Error(`${dir}: ${t.name} vanished after the header check`);
      return got.data;
    },
  };
}

/** An adapter merged into its base (W + scale·B·A, as `aha merge`) in the engine, then read from there. */
function adapterSource(adapter: string, given?: string): WeightSource {
  const base = adapterBase(adapter, given);
  const md = loadModelDir(base);
  const { lora } = readAdapterConfig(adapter);
  const layout = loraLayout(md.config, lora);
  const data = readAdapterTensors(adapter, layout);
  let store: ((t: TensorInfo, start: number, length: number) => Float32Array) | undefined;
  return {
    dir: base,
    tokenizerDir: existsSync(join(adapter, 'tokenizer.json')) ? adapter : base,
    engine: md.config,
    hf: md.hf,
    layout: md.layout,
    stored: md.storedDtype(),
    merged: layout.length / 2,
    prepare: async () => {
      // The engine (the native addon) only for a merge: a plain model's export never loads it.
      const { Model } = await import('../../engine/model.ts');
      const model = new Model(md.config);
      md.loadParams(model.store('params'));
      mergeAdapterWeights(model, lora, layout, (t) => data.get(t.name)!);
      store = model.store('params');
    },
    read: (t) => {
      if (!store) throw new Error('adapterSource: read before prepare');
      const chunks = tensorChunks(store, t);
      if (chunks.length !== 1) throw new AhaError(`${t.name}: a tensor over 4 GiB cannot be exported yet`);
      return chunks[0];
    },
  };
}

/**
 * The encoded bytes of tensor `name`, `x` (a [rows, rowLength] or 1-D tensor), as `type`, in pieces of about 4 MiB.
 * A finite value that float16 cannot hold is an AhaError (the file would carry an infinity).
 */
function* encode(name: string, x: Float32Array, type: GgmlTypeName, rowLength: number): Iterable<Uint8Array> {
  const rowsPerPiece = Math.max(1, Math.floor((1 << 20) / rowLength));
  const step = rowsPerPiece * rowLength;
  for (let start = 0; start < x.length; start += step) {
    const part = x.subarray(start, Math.min(x.length, start + step));
    if (type === 'F32') yield new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    else if (type === 'Q8_0') yield quantizeQ8_0(part);
    else {
      const bits = type === 'F16' ? float32ToFloat16Bits(part) : float32ToBfloat16Bits(part);
      if (type === 'F16')
        for (let i = 0; i < bits.length; i++)
          if ((bits[i] & 0x7fff) === 0x7c00 && Number.isFinite(part[i]))
            throw new AhaError(`${name}: ${part[i]} is past float16's range (65504); export as bf16 or f32`);
      yield new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
    }
  }
}

/**
 * Write `o.model` as a GGUF file at `o.out` (atomically). Bad input (an unsupported architecture or tokenizer,
 * an existing file without `overwrite`) is an AhaError before anything is written.
 */
export async function exportGguf(o: ExportGgufOptions): Promise<ExportGgufResult> {
  const out = resolve(o.out);
  if (existsSync(out)) {
    if (statSync(out).isDirectory()) throw new AhaError(`${o.out}: is a directory; --out names the .gguf file`);
    if (!o.overwrite) throw new AhaError(`${o.out}: already exists (pass --overwrite to replace it)`);
  }
  if (!existsSync(o.model) || !statSync(o.model).isDirectory()) throw new AhaError(`${o.model}: directory not found`);
  const src = isAdapterDir(o.model) ? adapterSource(o.model, o.base) : modelSource(o.model);
  const { engine, hf } = src;
  const plan = ggufModelPlan(engine, hf, join(src.dir, 'config.json'));
  const tokenizer = ggufTokenizerMetadata(src.tokenizerDir, engine.vocabSize, hf);
  const dtype: GgufExportDtype = o.dtype ?? (src.stored === 'BF16' ? 'bf16' : src.stored === 'F16' ? 'f16' : 'f32');

  const f16Fallbacks: string[] = [];
  const tensors: GgufTensor[] = [];
  const ropeFreqs = plan.ropeFreqs;
  if (ropeFreqs)
    tensors.push({
      name: 'rope_freqs.weight',
      shape: [ropeFreqs.length],
      type: 'F32',
      data: () => encode('rope_freqs.weight', ropeFreqs, 'F32', 1),
    });
  for (const t of src.layout) {
    const name = llamaCppTensorName(t.name);
    const rowLength = t.shape.length === 2 ? t.shape[1] : 1;
    let type: GgmlTypeName = t.shape.length === 1 ? 'F32' : TYPE_NAME[dtype];
    if (type === 'Q8_0' && rowLength % 32 !== 0) {
      type = 'F16';
      f16Fallbacks.push(name);
    }
    const qk = /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(t.name);
    const heads = qk?.[1] === 'q' ? engine.numHeads : engine.numKvHeads;
    tensors.push({
      name,
      shape: t.shape,
      type,
      data: () => {
        let x = src.read(t);
        if (plan.permuteQK && qk) x = permuteRopeRows(x, heads, engine.headDim, rowLength);
        return encode(name, x, type, rowLength);
      },
    });
  }

  const metadata: Record<string, GgufValue> = {
    'general.architecture': plan.metadata['general.architecture'],
    'general.name': gguf.str(basename(resolve(o.model))),
    'general.file_type': gguf.u32(FILE_TYPE[dtype]),
    'general.quantization_version': gguf.u32(2),
    ...plan.metadata,
    ...tokenizer.metadata,
  };
  await src.prepare();
  mkdirSync(dirname(out), { recursive: true });
  writeGgufFile(out, metadata, tensors, (i) => o.onTensor?.(i + 1, tensors.length));
  return {
    out,
    arch: plan.arch,
    dtype,
    tensors: tensors.length,
    bytes: statSync(out).size,
    f16Fallbacks,
    tokenizer: tokenizer.info,
    weightsFrom: src.dir,
    merged: src.merged,
  };
}
