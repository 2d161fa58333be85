/**
 * What an `aha r1` run directory records about the recipes that made it: pipeline.json (the recipe the run started
 * with, written once), invocations.jsonl (one line per invocation, appended: time, arguments, recipe and its hash),
 * and each stage's settings (the part of the recipe the stage uses, with its hash) in its stage_started.json and
 * stage_done.json. A changed recipe is allowed on resume; these say what changed, and against what.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import type { PipelineRecipe, StageName } from './pipelineRecipe.ts';

/** A recipe as the run directory stores it: as parsed (defaults applied), without its directory. */
export type StoredRecipe = Record<string, unknown>;

/** pipeline.json: the recipe of the run's first invocation. */
export interface PipelineManifest {
  recipe: StoredRecipe;
  recipe_hash: string;
  /** When the run started (older runs: `updated`, the last invocation's time). */
  created?: string;
  updated?: string;
}

/** One line of invocations.jsonl. */
export interface InvocationRecord {
  /** 1 for the invocation that started the run. */
  invocation: number;
  at: string;
  argv: string[];
  resume: boolean;
  stage: string | null;
  recipe_hash: string;
  recipe: StoredRecipe;
}

/** A stage's settings: the recipe fields it uses, and their hash. */
export interface StageSettings {
  settings: Record<string, unknown>;
  settings_hash: string;
}

/** JSON with object keys sorted at every level: equal values give equal text (and hash). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The first 16 hex digits of the SHA-256 of the canonical JSON. */
export function settingsHash(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);
}

/** The recipe as stored: defaults applied, without baseDir and source (where it was read from, not what it says). */
export function storedRecipe(recipe: PipelineRecipe): StoredRecipe {
  const { baseDir: _b, source: _s, ...plain } = recipe;
  return JSON.parse(JSON.stringify(plain)) as StoredRecipe;
}

/** The problems, prompts and answers every stage and its evaluation share. */
const SHARED = [
  'task',
  'task_options',
  'task_train_size',
  'dataset',
  'eval_dataset',
  'prompt',
  'system_prompt',
  'language',
  'answer_strategies',
  'eval',
  'seed',
] as const;

/** Recipe fields beyond SHARED and the stage's own section that each stage reads. */
const STAGE_FIELDS: Record<StageName, readonly string[]> = {
  // Samples from the base (or source_model), rewrites with summary_template, filters, fine-tunes the base.
  cold_start_sft: ['base_model', 'max_new_tokens', 'summary_template', 'filters'],
  reasoning_rl: [],
  // Samples from stage 2's checkpoint, filters, fine-tunes the base.
  rejection_sft: ['base_model', 'max_new_tokens', 'filters'],
  all_scenarios_rl: [],
};

/** The part of the recipe `stage` uses (its section under `stage`, shared fields by name), and its hash. */
export function stageSettings(recipe: StoredRecipe | PipelineRecipe, stage: StageName): StageSettings {
  const r = recipe as Record<string, unknown>;
  const settings: Record<string, unknown> = {};
  for (const k of [...SHARED, ...STAGE_FIELDS[stage]]) if (r[k] !== undefined) settings[k] = r[k];
  settings.stage = ((r.stages ?? {}) as Record<string, unknown>)[stage] ?? null;
  const plain = JSON.parse(JSON.stringify(settings)) as Record<string, unknown>;
  return { settings: plain, settings_hash: settingsHash(plain) };
}

/**
 * The paths where two JSON values differ (`stages.reasoning_rl.training.max_steps`), at most `limit` of them (then
 * "..."), objects compared key by key and anything else as a whole.
 */
export function changedPaths(a: unknown, b: unknown, prefix = '', limit = 8): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (out.length > limit) return;
    const obj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (obj(x) && obj(y)) {
      const xo = x as Record<string, unknown>,
        yo = y as Record<string, unknown>;
      for (const k of [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort())
        walk(xo[k], yo[k], path === '' ? k : `${path}.${k}`);
      return;
    }
    if (canonicalJson(x ?? null) !== canonicalJson(y ?? null)) out.push(path === '' ? '(all)' : path);
  };
  walk(a, b, prefix);
  return out.length > limit ? [...out.slice(0, limit), '...'] : out;
}

const MANIFEST = 'pipeline.json';
const INVOCATIONS = 'invocations.jsonl';

/** The run's pipeline.json, or null when the directory holds no run. */
export function readManifest(outDir: string): PipelineManifest | null {
  const p = join(outDir, MANIFEST);
  if (!existsSync(p)) return null;
  try {
    const m = JSON.parse(readFileSync(p, 'utf8')) as PipelineManifest;
    return { ...m, recipe: m.recipe ?? {}, recipe_hash: m.recipe_hash ?? settingsHash(m.recipe ?? {}) };
  } catch (e) {
    throw new AhaError(`${p}: unreadable (${(e as Error).message})`);
  }
}

/** Writes pipeline.json for a new run (never rewritten afterwards: it is the recipe the run started with). */
export function writeManifest(outDir: string, recipe: StoredRecipe, at: string): PipelineManifest {
  const m: PipelineManifest = { recipe, recipe_hash: settingsHash(recipe), created: at };
  writeFileAtomic(join(outDir, MANIFEST), JSON.stringify(m, null, 2) + '\n');
  return m;
}

/** The invocations recorded so far (a torn last line, from a kill while writing, is left out). */
export function readInvocations(outDir: string): InvocationRecord[] {
  const p = join(outDir, INVOCATIONS);
  if (!existsSync(p)) return [];
  const out: InvocationRecord[] = [];
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as InvocationRecord);
    } catch {
      continue;
    }
  }
  return out;
}

/**
 * Appends this invocation to invocations.jsonl; returns its record (numbered after the ones before; a run from
 * before the file existed counts its first invocation as 1 without a line).
 */
export function appendInvocation(
  outDir: string,
  o: {
    at: string;
    argv: string[];
    resume: boolean;
    stage: string | null;
    recipe: StoredRecipe;
    /** The run existed before this invocation (a run from before invocations.jsonl has no line for its first). */
    existing: boolean;
  },
): InvocationRecord {
  const before = readInvocations(outDir);
  const rec: InvocationRecord = {
    invocation: before.length === 0 ? (o.existing ? 2 : 1) : Math.max(...before.map((r) => r.invocation || 0)) + 1,
    at: o.at,
    argv: o.argv,
    resume: o.resume,
    stage: o.stage,
    recipe_hash: settingsHash(o.recipe),
    recipe: o.recipe,
  };
  const p = join(outDir, INVOCATIONS);
  // A line torn by a kill must not swallow this one.
  const torn = existsSync(p) && !readFileSync(p, 'utf8').endsWith('\n') && readFileSync(p, 'utf8').length > 0;
  appendFileSync(p, (torn ? '\n' : '') + JSON.stringify(rec) + '\n');
  return rec;
}
