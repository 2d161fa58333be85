/**
 * SFT run options under the names of Hugging Face's TrainingArguments / TRL's SFTConfig where one exists, so a
 * recipe's values carry over. They come from three layers, later ones winning: the run directory's config.json
 * (only with --resume), a YAML/JSON `--config` file, then command-line flags. Unknown keys are rejected: a misspelt
 * option silently falling back to its default would change the experiment without a word.
 */
import { fieldPath, issuePhrase } from '../config/configError.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { resolveLora, type LoraConfig } from '../engine/lora.ts';
import { AhaError } from '../errors.ts';
import { closestWord } from '../util/closestWord.ts';
import { DEFAULT_REPORT_TO, reportToSchema } from '../train/metricsLog.ts';
import { saveDtypeSchema } from '../model/saveDtype.ts';

const positiveInt = () => z.number().int().min(1);

/** The options schema; every field has a default except model, data and out. */
export const sftOptionsSchema = z
  .object({
    model: z.string().min(1),
    data: z.string().min(1),
    eval_data: z.string().min(1).nullable().default(null),
    eval_fraction: z.number().min(0).lt(1).default(0),
    out: z.string().min(1),
    max_seq_length: z.number().int().min(2).nullable().default(null),
    packing: z.boolean().default(false),
    per_device_train_batch_size: positiveInt().default(8),
    per_device_eval_batch_size: positiveInt().default(8),
    micro_batch_tokens: z.number().int().min(2).nullable().default(null),
    gradient_accumulation_steps: positiveInt().default(1),
    gradient_checkpointing: z.boolean().default(false),
    num_train_epochs: z.number().positive().default(3),
    max_steps: z.number().int().min(-1).default(-1),
    learning_rate: z.number().min(0).default(2e-5),
    lr_scheduler_type: z.enum(['linear', 'cosine', 'constant']).default('linear'),
    warmup_ratio: z.number().min(0).max(1).default(0),
    warmup_steps: z.number().int().min(0).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    weight_decay: z.number().min(0).default(0),
    max_grad_norm: z.number().min(0).default(1),
    adam_beta1: z.number().min(0).lt(1).default(0.9),
    adam_beta2: z.number().min(0).lt(1).default(0.999),
    adam_epsilon: z.number().positive().default(1e-8),
    seed: z.number().int().min(0).default(42),
    logging_steps: positiveInt().default(10),
    report_to: reportToSchema.default([...DEFAULT_REPORT_TO]),
    eval_steps: positiveInt().nullable().default(null),
    eval_on_start: z.boolean().default(false),
    save_steps: positiveInt().default(500),
    save_total_limit: positiveInt().nullable().default(null),
    overwrite_output_dir: z.boolean().default(false),
    resume_from_checkpoint: z.union([z.boolean(), z.string().min(1)]).default(false),
    // LoRA with TRL's ModelConfig names (trl sft --use_peft --lora_r 16 ...)
    use_peft: z.boolean().default(false),
    lora_r: positiveInt().default(16),
    lora_alpha: z.number().positive().default(32),
    lora_target_modules: z.string().min(1).default('all-linear'),
    lora_dropout: z.number().min(0).max(1).default(0),
    use_rslora: z.boolean().default(false),
    torch_dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
    save_dtype: saveDtypeSchema,
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullable().default(null),
  })
  .strict();

/** Options as written in a config file or given on the command line (defaults not applied). */
export type SftOptionsInput = z.input<typeof sftOptionsSchema>;
/** Validated options with defaults. */
export type SftOptions = z.output<typeof sftOptionsSchema>;
export type SftOptionKey = keyof SftOptions;

/** The defaults of every option that has one. */
export const SFT_DEFAULTS: Omit<SftOptions, 'model' | 'data' | 'out'> = (() => {
  const { model: _m, data: _d, out: _o, ...rest } = sftOptionsSchema.parse({ model: '-', data: '-', out: '-' });
  return rest;
})();

type FieldKind = 'string' | 'number' | 'int' | 'bool' | 'enum' | 'resume' | 'json-object';

/** How an option is read from the command line (the flag is the key with dashes: --learning-rate). */
export interface OptionKind {
  kind: FieldKind;
  nullable?: boolean;
  /** The value's name in --help (default: n, or type for an enum). */
  value?: string;
}

/**
 * The command-line kind of every option; its help is the option's description in the recipe reference
 * (FIELD_DOCS.sft, src/config/recipeFieldDocs.ts), which src/cli/sft.ts shows.
 */
export const SFT_OPTION_KINDS: Record<SftOptionKey, OptionKind> = {
  model: { kind: 'string', value: 'dir' },
  data: {
    kind: 'string',
    value: 'file',
  },
  eval_data: { kind: 'string', nullable: true, value: 'file' },
  eval_fraction: {
    kind: 'number',
  },
  out: { kind: 'string', value: 'dir' },
  max_seq_length: {
    kind: 'int',
    nullable: true,
  },
  packing: { kind: 'bool' },
  per_device_train_batch_size: { kind: 'int' },
  per_device_eval_batch_size: { kind: 'int' },
  micro_batch_tokens: { kind: 'int', nullable: true },
  gradient_accumulation_steps: { kind: 'int' },
  gradient_checkpointing: {
    kind: 'bool',
  },
  num_train_epochs: { kind: 'number' },
  max_steps: { kind: 'int' },
  learning_rate: { kind: 'number' },
  lr_scheduler_type: { kind: 'enum' },
  warmup_ratio: { kind: 'number' },
  warmup_steps: { kind: 'int' },
  min_lr_ratio: { kind: 'number' },
  weight_decay: { kind: 'number' },
  max_grad_norm: { kind: 'number' },
  adam_beta1: { kind: 'number' },
  adam_beta2: { kind: 'number' },
  adam_epsilon: { kind: 'number' },
  seed: { kind: 'int' },
  logging_steps: { kind: 'int' },
  report_to: {
    kind: 'string',
    value: 'list',
  },
  eval_steps: { kind: 'int', nullable: true },
  eval_on_start: { kind: 'bool' },
  save_steps: { kind: 'int' },
  save_total_limit: { kind: 'int', nullable: true },
  overwrite_output_dir: { kind: 'bool' },
  resume_from_checkpoint: {
    kind: 'resume',
  },
  use_peft: { kind: 'bool' },
  chat_template_kwargs: { kind: 'json-object', nullable: true, value: 'json' },
  lora_r: { kind: 'int' },
  lora_alpha: { kind: 'number' },
  lora_target_modules: {
    kind: 'string',
  },
  lora_dropout: { kind: 'number' },
  use_rslora: { kind: 'bool' },
  torch_dtype: { kind: 'enum' },
  save_dtype: { kind: 'enum' },
};

/** The LoRA configuration SFT options ask for (undefined without use_peft). */
export function sftLora(o: SftOptions): LoraConfig | undefined {
  if (!o.use_peft) return undefined;
  const targets =
    o.lora_target_modules === 'all-linear' ? 'all-linear' : o.lora_target_modules.split(',').map((x) => x.trim());
  return resolveLora({
    r: o.lora_r,
    lora_alpha: o.lora_alpha,
    target_modules: targets,
    lora_dropout: o.lora_dropout,
    use_rslora: o.use_rslora,
  });
}

/** The command-line flag of an option: learning_rate → --learning-rate. */
export function optionFlag(key: string): string {
  if (key === 'resume_from_checkpoint') return '--resume';
  return '--' + key.replace(/_/g, '-');
}

/** Options that fix the data order and the step count: a resumed run must keep them to replay the same batches. */
export const RESUME_LOCKED_OPTIONS: readonly SftOptionKey[] = [
  'data',
  'eval_data',
  'eval_fraction',
  'seed',
  'max_seq_length',
  'packing',
  'per_device_train_batch_size',
  'gradient_accumulation_steps',
  'use_peft',
  'lora_r',
  'lora_alpha',
  'lora_target_modules',
  'use_rslora',
];

/** Options that describe one invocation, not the run: never written to the run directory's config.json. */
const INVOCATION_ONLY: readonly SftOptionKey[] = ['resume_from_checkpoint', 'overwrite_output_dir'];

function suggestion(key: string): string {
  const norm = key.replace(/-/g, '_');
  const best = closestWord(norm, Object.keys(SFT_OPTION_KINDS), Math.max(2, Math.floor(norm.length / 4)));
  return best !== undefined ? ` (did you mean ${best}?)` : '';
}

/** Converts one command-line string to the option's type; a value that is not one is an error naming the flag. */
export function parseCliValue(key: SftOptionKey, raw: string | boolean): unknown {
  const f = SFT_OPTION_KINDS[key];
  const flag = optionFlag(key);
  if (typeof raw === 'boolean') {
    if (f.kind === 'bool' || f.kind === 'resume') return raw;
    throw new AhaError(`${flag}: needs a value`);
  }
  const v = raw.trim();
  if (f.nullable && (v === 'null' || v === 'none' || v === 'None')) return null;
  switch (f.kind) {
    case 'number':
    case 'int': {
      const x = v === '' ? NaN : Number(v);
      if (!Number.isFinite(x)) throw new AhaError(`${flag}: expected a number, got ${JSON.stringify(raw)}`);
      return x;
    }
    case 'bool':
      if (/^(true|1|yes)$/i.test(v)) return true;
      if (/^(false|0|no)$/i.test(v)) return false;
      throw new AhaError(`${flag}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'resume':
      if (/^(true)$/i.test(v)) return true;
      if (/^(false)$/i.test(v)) return false;
      return raw;
    case 'json-object': {
      let o: unknown;
      try {
        o = JSON.parse(v);
      } catch {
        o = undefined;
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o))
        throw new AhaError(
          `${flag}: expected a JSON object, e.g. '{"enable_thinking": false}', got ${JSON.stringify(raw)}`,
        );
      return o;
    }
    default:
      return raw;
  }
}

/** Reads a YAML or JSON config file into a plain object; syntax errors name the file and line. */
export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new AhaError(`${path}: config file not found`);
  let value: unknown;
  try {
    value = YAML.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const err = e as Error & { linePos?: { line: number; col: number }[] };
    const at = err.linePos?.[0] ? `:${err.linePos[0].line}` : '';
    throw new AhaError(
      `${path}${at}: not valid YAML/JSON (${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')})`,
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new AhaError(`${path}: expected a mapping of option names to values at the top level`);
  return value as Record<string, unknown>;
}

/** Where the layers of options come from. */
export interface SftOptionSources {
  /** Values from command-line flags (already typed, e.g. by parseCliValue), keyed by option name. */
  cli?: Record<string, unknown>;
  /** A YAML/JSON config file. */
  configFile?: string;
  /** A config object standing in for a file (tests, programmatic use); named `configName` in errors. */
  config?: Record<string, unknown>;
  configName?: string;
}

/** The run directory's record of the options it was started with. */
export function runConfigPath(out: string): string {
  return join(out, 'config.json');
}

/**
 * Merges the layers and validates them. Errors name the source and field on one line:
 * `cfg.yaml: learning_rate: Too small: ...`, `--max-steps: ...`, or a missing option with where to set it.
 */
export function resolveSftOptions(src: SftOptionSources): SftOptions {
  const cli = src.cli ?? {};
  const fileName = src.configFile ?? src.configName ?? 'config';
  const file = src.configFile !== undefined ? readConfigFile(src.configFile) : (src.config ?? {});
  const origin = new Map<string, string>();
  const merged: Record<string, unknown> = {};

  // With --resume the run directory's own config is the base, so `aha sft --out DIR --resume` is enough.
  const resume = cli.resume_from_checkpoint ?? file.resume_from_checkpoint;
  const out = cli.out ?? file.out;
  if (resume !== undefined && resume !== false && typeof out === 'string') {
    const runCfg = runConfigPath(out);
    if (existsSync(runCfg)) {
      const base = readConfigFile(runCfg);
      for (const [k, v] of Object.entries(base)) {
        if ((INVOCATION_ONLY as string[]).includes(k)) continue;
        merged[k] = v;
        origin.set(k, `${runCfg}: ${k}`);
      }
    }
  }
  for (const [k, v] of Object.entries(file)) {
    merged[k] = v;
    origin.set(k, `${fileName}: ${k}`);
  }
  for (const [k, v] of Object.entries(cli)) {
    if (v === undefined) continue;
    merged[k] = v;
    origin.set(k, optionFlag(k));
  }

  const r = sftOptionsSchema.safeParse(merged);
  if (!r.success) {
    const msgs = r.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${origin.get(k) ?? k}: unknown option${suggestion(k)}`).join('; ');
      }
      const key = String(issue.path[0] ?? '');
      if (issue.code === 'invalid_type' && merged[key] === undefined) {
        return `missing option ${key} (${optionFlag(key)} or "${key}:" in the config file)`;
      }
      const where = origin.get(key) ?? key;
      const sub = issue.path.length > 1 ? `.${fieldPath(issue.path.slice(1))}` : '';
      const nullable = issue.path.length === 1 && SFT_OPTION_KINDS[issue.path[0] as SftOptionKey]?.nullable === true;
      const phrase =
        issue.code === 'invalid_union'
          ? 'must be true, false or a checkpoint directory'
          : issuePhrase(issue, { nullable });
      return `${where}${sub}: ${phrase} (got ${JSON.stringify(merged[key])})`;
    });
    throw new AhaError(msgs.join('; '));
  }
  const o = r.data;
  if (o.eval_data !== null && o.eval_fraction > 0) {
    throw new AhaError(
      `${origin.get('eval_fraction') ?? 'eval_fraction'}: set either eval_data or eval_fraction, not both`,
    );
  }
  return o;
}

/** The options as recorded in the run directory (invocation-only ones left out). */
export function runConfigJson(o: SftOptions): string {
  const rec: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!(INVOCATION_ONLY as string[]).includes(k)) rec[k] = v;
  return JSON.stringify(rec, null, 2) + '\n';
}

/**
 * Checks a resumed run against the options it was started with; a changed data-order option (seed, batch size...)
 * would replay different batches, so it is an error naming the field and both values.
 */
export function checkResumeOptions(o: SftOptions, out: string): void {
  const path = runConfigPath(out);
  if (!existsSync(path)) return;
  const saved = readConfigFile(path);
  for (const k of RESUME_LOCKED_OPTIONS) {
    if (k in saved && JSON.stringify(saved[k]) !== JSON.stringify(o[k])) {
      throw new AhaError(
        `${path}: ${k} was ${JSON.stringify(saved[k])} when the run started, now ${JSON.stringify(o[k])}: resuming needs the same ` +
          `data order (keep it, or start over with --overwrite-output-dir)`,
      );
    }
  }
}
