/**
 * The type a trained model is written in (`save_dtype`), spelt as transformers' torch_dtype like the recipes'
 * `torch_dtype`: `auto` writes the type the model came in, as transformers' save_pretrained does for a model loaded
 * with torch_dtype="auto"; `float32`, `bfloat16`, `float16` name one. Training keeps float32 master weights, so a
 * 16-bit save rounds each of them to nearest even once (src/model/safetensors.ts).
 */
import { z } from 'zod';
import type { WritableDtype } from './safetensors.ts';

/** transformers' names of the weight types a model is written in. */
export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

/** The values of `save_dtype`. */
export const SAVE_DTYPES = ['auto', 'float32', 'bfloat16', 'float16'] as const;
export type SaveDtype = (typeof SAVE_DTYPES)[number];

/** `save_dtype` in a recipe or the sft options: default auto. */
export const saveDtypeSchema = z.enum(SAVE_DTYPES).default('auto');

/** config.json's torch_dtype of weights stored as each safetensors dtype. */
export const TORCH_DTYPE_OF: Record<WritableDtype, TorchDtype> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

const SAFETENSORS_DTYPE_OF: Record<TorchDtype, WritableDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

/**
 * The type a model directory's weights came in (a loadModelDir), by transformers' rule for torch_dtype="auto": config.json's
 * torch_dtype (or `dtype`) when it names one of the three, else the type most of its weights are stored in
 * (float64 as float32).
 */
export function sourceDtype(md: {
  hf: { torchDtype: string | null };
  storedDtype(): 'F32' | 'BF16' | 'F16' | 'F64';
}): WritableDtype {
  const declared = md.hf.torchDtype;
  if (declared === 'float32' || declared === 'bfloat16' || declared === 'float16')
    return SAFETENSORS_DTYPE_OF[declared];
  const stored = md.storedDtype();
  return stored === 'BF16' || stored === 'F16' ? stored : 'F32';
}

/** The safetensors dtype `save_dtype` asks for; `source` gives the model's own type, read only for `auto`. */
export function resolveSaveDtype(d: SaveDtype, source: () => WritableDtype): WritableDtype {
  return d === 'auto' ? source() : SAFETENSORS_DTYPE_OF[d];
}
