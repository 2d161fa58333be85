import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WritableDtype } from './safetensors.ts';
import { sourceDtype } from './saveDtype.ts';
import { AhaError } from '../errors.ts';
import { loraLayout } from '../engine/lora.ts';
import { Model } from '../engine/model.ts';
import { loadModelDir, prepareModelOutDir } from './checkpoint.ts';
import { savePretrained } from './pretrained.ts';
import {
  ADAPTER_CONFIG_FILE,
  adapterBase,
  mergeAdapterWeights,
  readAdapterConfig,
  readAdapterTensors,
} from './adapter.ts';

/**
 * Writes base + adapter as one plain Hugging Face checkpoint (PEFT's merge_and_unload): every adapted matrix becomes
 * W + scale * B A, summed in float64 and rounded once to float32, then to `dtype` on disk (default: the base's own
 * type, as save_dtype auto reads it). The tokenizer files come from the adapter directory when it has them.
 */
export function mergeAdapterDir(o: {
  base?: string;
  adapter: string;
  out: string;
  dtype?: WritableDtype;
  overwrite?: boolean;
}): {
  base: string;
  merged: number;
} {
  if (!existsSync(join(o.adapter, ADAPTER_CONFIG_FILE)))
    throw new AhaError(`${o.adapter}: not an adapter directory (no ${ADAPTER_CONFIG_FILE})`);
  const base = adapterBase(o.adapter, o.base);
  const md = loadModelDir(base);
  const { lora } = readAdapterConfig(o.adapter);
  const layout = loraLayout(md.config, lora);
  const data = readAdapterTensors(o.adapter, layout);
  prepareModelOutDir(o.out, o.overwrite === true);
  const model = new Model(md.config);
  md.loadParams(model.store('params'));
  mergeAdapterWeights(model, lora, layout, (t) => data.get(t.name)!);
  const dtype = o.dtype ?? sourceDtype(md);
  const tokenizerFrom = existsSync(join(o.adapter, 'tokenizer.json')) ? o.adapter : base;
  savePretrained({ model, hf: md.hf }, o.out, { tokenizerFrom, dtype });
  return { base, merged: layout.length / 2 };
}
