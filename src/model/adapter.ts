/**
 * LoRA adapters on disk in PEFT's layout: `adapter_config.json` and `adapter_model.safetensors` with PEFT's tensor
 * names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight), so an adapter aha trains loads in PEFT
 * (`PeftModel.from_pretrained`) and vLLM (`--enable-lora`), and theirs load here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { loraFromPeftConfig, loraScale, peftAdapterConfig, type LoraConfig } from '../engine/lora.ts';
import type { Model } from '../engine/model.ts';
import { tensorChunks, type TensorInfo } from '../engine/types.ts';
import {
  readSafetensorsInto,
  writeSafetensors,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  halfBitsToFloat32,
} from './safetensors.ts';
import { writeFileAtomic } from '../util/fs.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** Whether `dir` holds a PEFT adapter (and not a whole model). */
export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && !existsSync(join(dir, 'config.json'));
}

/** An adapter directory's configuration and the base model it was trained on (resolved against the directory). */
export function readAdapterConfig(dir: string): { lora: LoraConfig; baseModel: string | null } {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new AhaError(`${path}: cannot read adapter config (${(e as Error).message.split('\n')[0]})`);
  }
  const base = typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : null;
  return {
    lora: loraFromPeftConfig(j, path),
    baseModel: base === null ? null : isAbsolute(base) ? base : resolve(dir, base),
  };
}

/**
 * Writes the model's adapters as a PEFT adapter directory's two files (into an existing directory; callers make
 * the directory atomic). `baseModel` is recorded relative to `dir` when it is a path, so the pair can move together.
 */
export function writeAdapterFiles(dir: string, model: Model, baseModel: string): void {
  if (!model.lora) throw new AhaError('the model has no LoRA adapters to save');
  const store = model.store('adapters');
  writeSafetensors(
    join(dir, ADAPTER_WEIGHTS_FILE),
    model.adapterLayout.map((t) => ({ name: t.name, shape: t.shape, data: tensorChunks(store, t) })),
  );
  const base = existsSync(baseModel) ? relative(resolve(dir), resolve(baseModel)) || '.' : baseModel;
  writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(peftAdapterConfig(model.lora, base), null, 2) + '\n');
}

/** An adapter directory's tensors laid out by `layout`, each in its own array, by name. */
export function readAdapterTensors(dir: string, layout: TensorInfo[]): Map<string, Float32Array> {
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file)) throw new AhaError(`${file}: adapter weights not found`);
  const data = new Map<string, Float32Array>();
  readSafetensorsInto(
    [file],
    layout,
    (t, start, length) => {
      let a = data.get(t.name);
      if (!a) data.set(t.name, (a = new Float32Array(t.size)));
      return a.subarray(start, start + length);
    },
    dir,
  );
  return data;
}

/** Loads an adapter directory's weights into the model's adapters (the model's LoRA shape must be the adapter's). */
export function loadAdapterInto(model: Model, dir: string): void {
  if (!model.lora) throw new AhaError(`${dir}: the model was built without LoRA`);
  const { lora } = readAdapterConfig(dir);
  const m = model.lora;
  if (lora.r !== m.r || lora.targetModules.join(',') !== m.targetModules.join(',') || loraScale(lora) !== loraScale(m))
    throw new AhaError(
      `${dir}: the adapter (r ${lora.r}, ${lora.targetModules.join(',')}) does not match the LoRA settings (r ${m.r}, ${m.targetModules.join(',')})`,
    );
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file)) throw new AhaError(`${file}: adapter weights not found`);
  readSafetensorsInto([file], model.adapterLayout, model.store('adapters'), dir);
}

/**
 * The adapted weights W + scale * B A of every adapted matrix, computed in float64 per output row and rounded to
 * the model's weight type, written into the model's own weights (which must not also keep the adapters active:
 * callers build a model without LoRA for the merge). `adapters` are read by tensor name.
 */
export function mergeAdapterWeights(
  target: Model,
  lora: LoraConfig,
  adapterLayout: TensorInfo[],
  adapters: (t: TensorInfo) => Float32Array,
): void {
  const byName = new Map(adapterLayout.map((t) => [t.name, t]));
  const s = loraScale(lora);
  const r = lora.r;
  for (const w of target.layout) {
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.weight$/.exec(w.name);
    if (!m) continue;
    const A = byName.get(`base_model.model.${w.name.replace(/\.weight$/, '')}.lora_A.weight`);
    const B = byName.get(`base_model.model.${w.name.replace(/\.weight$/, '')}.lora_B.weight`);
    if (!A || !B) continue;
    const a = adapters(A),
      b = adapters(B);
    const [out, inF] = w.shape;
    const row = new Float64Array(inF);
    const row32 = new Float32Array(inF);
    const half = target.weightsDtype !== 'f32';
    for (let o = 0; o < out; o++) {
      const start = o * inF;
      row.set(
        half
          ? halfBitsToFloat32(target.halfView(w.offset + start, inF), target.weightsDtype as 'bf16' | 'f16', row32)
          : target.view('params', w.offset + start, inF),
      );
      for (let k = 0; k < r; k++) {
        const c = s * b[o * r + k];
        if (c === 0) continue;
        const ak = k * inF;
        for (let i = 0; i < inF; i++) row[i] += c * a[ak + i];
      }
      row32.set(row);
      if (half) {
        const bits = target.halfView(w.offset + start, inF);
        if (target.weightsDtype === 'bf16') float32ToBfloat16Bits(row32, bits);
        else float32ToFloat16Bits(row32, bits);
      } else target.view('params', w.offset + start, inF).set(row32);
    }
  }
}

/** The directory an adapter's base model is in, or a one-line error saying how to give it. */
export function adapterBase(dir: string, given?: string): string {
  if (given) return given;
  const { baseModel } = readAdapterConfig(dir);
  if (!baseModel) throw new AhaError(`${dir}: adapter_config.json names no base model; pass --base`);
  if (!existsSync(baseModel))
    throw new AhaError(`${dir}: its base model ${baseModel} is not there; pass the base model directory with --base`);
  return baseModel;
}
