/**
 * LoRA (Hu et al., 2021) with PEFT's names and semantics: an adapted linear layer computes
 * y = x W^T + b + scale * (x A^T) B^T, with A [r, in] and B [out, r] trained and W frozen; scale = lora_alpha / r, or
 * lora_alpha / sqrt(r) under rsLoRA (use_rslora). A starts Kaiming-uniform (PEFT's default, bound 1/sqrt(in)) and B
 * at zero, so training starts from the base model exactly.
 */
import { z } from 'zod';
import { AhaError } from '../errors.ts';
import { mulberry32 } from '../data/rng.ts';
import type { EngineConfig, TensorInfo } from './types.ts';

/** The linear layers of a Llama/Qwen layer LoRA can adapt, in the engine's order, by PEFT's module names. */
export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

const MODULE_PATH: Record<LoraModule, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** The `lora:` section of a recipe (PEFT LoraConfig's names). */
export const loraOptionsSchema = z
  .object({
    r: z.number().int().positive(),
    lora_alpha: z.number().finite().positive().optional(),
    target_modules: z.union([z.literal('all-linear'), z.array(z.string()).min(1)]).default('all-linear'),
    lora_dropout: z
      .number()
      .min(0)
      .max(0, {
        message:
          'lora_dropout other than 0 is not supported (GRPO needs the log-probs of sampling and training to agree)',
      })
      .default(0),
    use_rslora: z.boolean().default(false),
  })
  .strict();
export type LoraOptionsInput = z.input<typeof loraOptionsSchema>;

/** A resolved LoRA configuration. */
export interface LoraConfig {
  r: number;
  loraAlpha: number;
  targetModules: LoraModule[];
  loraDropout: number;
  useRslora: boolean;
}

/** Checks and resolves recipe options; unknown module names and r <= 0 are one-line errors. */
export function resolveLora(opts: LoraOptionsInput): LoraConfig {
  if (!(Number.isSafeInteger(opts.r) && opts.r > 0))
    throw new AhaError(`lora.r must be a positive integer (got ${String(opts.r)})`);
  const parsed = loraOptionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AhaError(`lora.${issue.path.join('.')}: ${issue.message}`);
  }
  const o = parsed.data;
  let targets: LoraModule[];
  if (o.target_modules === 'all-linear') {
    targets = [...LORA_MODULES];
  } else {
    const unknown = o.target_modules.filter((m) => !(LORA_MODULES as readonly string[]).includes(m));
    if (unknown.length > 0)
      throw new AhaError(
        `lora.target_modules: unknown module ${JSON.stringify(unknown[0])} (the linear layers are ${LORA_MODULES.join(', ')}, or "all-linear")`,
      );
    targets = LORA_MODULES.filter((m) => o.target_modules.includes(m));
  }
  return {
    r: o.r,
    loraAlpha: o.lora_alpha ?? o.r,
    targetModules: targets,
    loraDropout: o.lora_dropout,
    useRslora: o.use_rslora,
  };
}

/** PEFT's scaling of the adapter's product. */
export function loraScale(c: LoraConfig): number {
  return c.useRslora ? c.loraAlpha / Math.sqrt(c.r) : c.loraAlpha / c.r;
}

function moduleShape(cfg: EngineConfig, m: LoraModule): { inF: number; outF: number } {
  const C = cfg.hiddenSize,
    I = cfg.intermediateSize,
    qd = cfg.numHeads * cfg.headDim,
    kd = cfg.numKvHeads * cfg.headDim;
  switch (m) {
    case 'q_proj':
      return { inF: C, outF: qd };
    case 'k_proj':
    case 'v_proj':
      return { inF: C, outF: kd };
    case 'o_proj':
      return { inF: qd, outF: C };
    case 'gate_proj':
    case 'up_proj':
      return { inF: C, outF: I };
    case 'down_proj':
      return { inF: I, outF: C };
  }
}

/** PEFT's tensor name of one factor, as adapter_model.safetensors stores it. */
export function loraTensorName(layer: number, m: LoraModule, factor: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${MODULE_PATH[m]}.lora_${factor}.weight`;
}

/** Where each adapter tensor sits in the engine's adapter buffer (per layer, per module, A then B). */
export function loraLayout(cfg: EngineConfig, c: LoraConfig): TensorInfo[] {
  const out: TensorInfo[] = [];
  let offset = 0;
  for (let l = 0; l < cfg.numLayers; l++)
    for (const m of LORA_MODULES) {
      if (!c.targetModules.includes(m)) continue;
      const { inF, outF } = moduleShape(cfg, m);
      for (const [factor, shape] of [
        ['A', [c.r, inF]],
        ['B', [outF, c.r]],
      ] as const) {
        const size = shape[0] * shape[1];
        out.push({ name: loraTensorName(l, m, factor), shape: [...shape], offset, size });
        offset += size;
      }
    }
  return out;
}

/** PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0. */
export function initLoraAdapters(layout: TensorInfo[], view: (t: TensorInfo) => Float32Array, seed: number): void {
  const rand = mulberry32(seed);
  for (const t of layout) {
    const v = view(t);
    if (t.name.endsWith('lora_B.weight')) {
      v.fill(0);
      continue;
    }
    const bound = 1 / Math.sqrt(t.shape[1]);
    for (let i = 0; i < v.length; i++) v[i] = (2 * rand() - 1) * bound;
  }
}

/** adapter_config.json as PEFT writes it for a causal LM. */
export function peftAdapterConfig(c: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: c.r,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    target_modules: [...c.targetModules],
    use_rslora: c.useRslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    use_dora: false,
    revision: null,
  };
}

/** Reads adapter_config.json's fields back into a LoraConfig, refusing what aha cannot apply. */
export function loraFromPeftConfig(j: Record<string, unknown>, where: string): LoraConfig {
  if (j.peft_type !== undefined && j.peft_type !== 'LORA')
    throw new AhaError(`${where}: peft_type ${JSON.stringify(j.peft_type)} is not LORA`);
  for (const [k, ok] of [
    ['use_dora', (v: unknown) => v === undefined || v === false],
    ['bias', (v: unknown) => v === undefined || v === 'none'],
    ['fan_in_fan_out', (v: unknown) => v === undefined || v === false],
    ['modules_to_save', (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0)],
  ] as const)
    if (!ok(j[k])) throw new AhaError(`${where}: ${k} = ${JSON.stringify(j[k])} is not supported`);
  let targets = j.target_modules;
  if (typeof targets === 'string' && targets !== 'all-linear') targets = [targets];
  try {
    return resolveLora({
      r: j.r as number,
      lora_alpha: j.lora_alpha as number | undefined,
      target_modules: targets as string[] | 'all-linear',
      lora_dropout: 0, // inference: dropout does not apply
      use_rslora: (j.use_rslora as boolean | undefined) ?? false,
    });
  } catch (e) {
    throw new AhaError(`${where}: ${(e as Error).message}`);
  }
}
