import { existsSync, readFileSync } from 'node:fs';
import { Model, type WeightsDtype } from '../engine/model.ts';
import { initLoraAdapters, type LoraConfig } from '../engine/lora.ts';
import { tensorChunks } from '../engine/types.ts';
import { mulberry32 } from '../data/rng.ts';
import { parseHfConfig } from '../model/hfConfig.ts';
import { MODEL_SHAPES } from '../model/modelShapes.ts';
import { float32ToBfloat16Bits, float32ToFloat16Bits } from '../model/safetensors.ts';
import { assertMemoryFits } from '../engine/memoryPlan.ts';
import { AhaError } from '../errors.ts';

/**
 * A model of a real checkpoint's shape (MODEL_SHAPES name, or a config.json path) with random weights, built in
 * memory: norms 1, everything else uniform with standard deviation `std` (transformers' 0.02), seeded. For
 * benchmarks, where the numbers depend on the shape and not on the values.
 */
export function randomModel(
  config: string,
  opts: {
    weights?: WeightsDtype;
    lora?: LoraConfig;
    seed?: number;
    std?: number;
    memory?: Parameters<typeof assertMemoryFits>[1];
  } = {},
): Model {
  let raw: Record<string, unknown>;
  if (config in MODEL_SHAPES) raw = MODEL_SHAPES[config];
  else if (existsSync(config)) raw = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  else throw new AhaError(`--config ${config}: neither a shape (${Object.keys(MODEL_SHAPES).join(', ')}) nor a file`);
  const { engine } = parseHfConfig(raw, config);
  const weights = opts.weights ?? 'f32';
  assertMemoryFits(engine, { ...(opts.memory ?? {}), weights, lora: opts.lora }, config);
  const model = new Model(engine, { weights, lora: opts.lora });
  const rand = mulberry32(opts.seed ?? 1);
  const a = (opts.std ?? 0.02) * Math.sqrt(3);
  const chunk = new Float32Array(1 << 20);
  for (const t of model.layout) {
    for (let start = 0; start < t.size; start += chunk.length) {
      const n = Math.min(chunk.length, t.size - start);
      const v = chunk.subarray(0, n);
      if (t.name.endsWith('norm.weight')) v.fill(1);
      else for (let i = 0; i < n; i++) v[i] = (2 * rand() - 1) * a;
      if (weights === 'f32') {
        for (const dst of tensorChunks(model.store('params'), { ...t, offset: t.offset + start, size: n })) dst.set(v);
      } else {
        const bits = model.halfView(t.offset + start, n);
        if (weights === 'bf16') float32ToBfloat16Bits(v, bits);
        else float32ToFloat16Bits(v, bits);
      }
    }
  }
  if (opts.lora) initLoraAdapters(model.adapterLayout, (t) => model.tensorView(t, 'adapters'), opts.seed ?? 1);
  return model;
}
