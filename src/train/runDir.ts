/**
 * The run directory every trainer writes (SFT, GRPO, the R1 stages, distillation), in one format:
 *
 *   out/metrics.jsonl        one JSON record per logged step (and per evaluation), each with its `step`
 *   out/checkpoint-N/        a Hugging Face model dir after N steps, plus trainer_state.json (what a resumed run needs
 *                            besides the weights: global_step, optimizer_step and the trainer's own fields) and
 *                            optimizer.safetensors (AdamW's moments, per parameter), so that a resumed run is exact;
 *                            its weights are the float32 master weights, whatever save_dtype says
 *   out/final/               the model at the end (or its LoRA adapter) with the tokenizer files, and nothing else:
 *                            weights in save_dtype, no trainer or optimizer state. A finished run also leaves
 *                            checkpoint-<last step>, which holds that state: resuming (to train further) starts there
 *
 * Directories are written whole or not at all: into `<name>.tmp`, then renamed.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import type { HfModelConfig } from '../model/hfConfig.ts';
import { TOKENIZER_FILES } from '../model/checkpoint.ts';
import { savePretrained } from '../model/pretrained.ts';
import { writeAdapterFiles } from '../model/adapter.ts';
import type { WritableDtype } from '../model/safetensors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { loadOptimizerState, saveOptimizerState } from './optimizerState.ts';

export const METRICS_FILE = 'metrics.jsonl';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const FINAL_DIR = 'final';
export const TRAINER_STATE_FORMAT = 'aha-trainer-state/2';

/** The fields every trainer_state.json has; each trainer adds its own. */
export interface CheckpointState {
  format: typeof TRAINER_STATE_FORMAT;
  /** Which trainer wrote it ("sft", "grpo"): a run directory is resumed by the trainer that made it. */
  trainer: string;
  /** Steps of the run done (a GRPO step may hold several optimizer steps). */
  global_step: number;
  /** AdamW steps taken (its bias correction's t). */
  optimizer_step: number;
}

/** A checkpoint directory and its step. */
export interface CheckpointRef {
  step: number;
  dir: string;
}

/** The complete checkpoint-N directories of a run, oldest first (`.tmp` leftovers are not checkpoints). */
export function listCheckpoints(out: string): CheckpointRef[] {
  if (!existsSync(out)) return [];
  const refs: CheckpointRef[] = [];
  for (const name of readdirSync(out)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    const dir = join(out, name);
    if (m && statSync(dir).isDirectory() && existsSync(join(dir, TRAINER_STATE_FILE)))
      refs.push({ step: Number(m[1]), dir });
  }
  return refs.sort((a, b) => a.step - b.step);
}

/**
 * The newest checkpoint, if any. With `includeFinal`, final/ too when it holds trainer state, as the final/ of runs
 * written before final/ dropped its state did.
 */
export function latestCheckpoint(out: string, o: { includeFinal?: boolean } = {}): CheckpointRef | undefined {
  const all = listCheckpoints(out);
  const final = join(out, FINAL_DIR);
  if (o.includeFinal && existsSync(join(final, TRAINER_STATE_FILE))) {
    const step = readStateFile(final).global_step;
    if (all.length === 0 || step >= all[all.length - 1].step) return { step, dir: final };
  }
  return all[all.length - 1];
}

/** Removes half-written directories a killed run left behind. */
export function removeStaleTemporaries(out: string): void {
  if (!existsSync(out)) return;
  for (const name of readdirSync(out))
    if (name.endsWith('.tmp') || name.endsWith('.old')) rmSync(join(out, name), { recursive: true, force: true });
}

/** Writes a directory through `write(tmpDir)`, then swaps it in under `dir`. */
export function writeDirAtomic(dir: string, write: (tmp: string) => void): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  write(tmp);
  if (existsSync(dir)) {
    const old = `${dir}.old`;
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
    renameSync(tmp, dir);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, dir);
  }
}

/** What a model directory is saved from. */
export interface SavedModel {
  model: Model;
  hf: HfModelConfig;
  /** Tokenizer, chat-template and generation files to write along, by name (see {@link readTokenizerFiles}). */
  tokenizerFiles: Map<string, Buffer>;
  /** The whole model under LoRA adapters (recorded in adapter_config.json as base_model_name_or_path). */
  baseDir?: string;
  /**
   * Weight type of final/'s whole model (default F32); checkpoints always hold float32 weights, for exact resumes.
   * LoRA adapters are written in float32 either way, as PEFT keeps them (its autocast_adapter_dtype).
   */
  finalDtype?: WritableDtype;
}

/**
 * The tokenizer and generation files of a model directory, read once: a resumed run loads them from a checkpoint
 * that save_total_limit may delete before the next save.
 */
export function readTokenizerFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of TOKENIZER_FILES) {
    const path = join(dir, name);
    if (existsSync(path)) files.set(name, readFileSync(path));
  }
  return files;
}

/** A whole model directory in `dtype`, or under LoRA a PEFT adapter directory (the base stays where it is). */
function saveModel(m: SavedModel, dir: string, dtype: WritableDtype, extraFiles?: Record<string, string>): void {
  if (m.model.lora) {
    if (!m.baseDir) throw new Error('saveModel: a LoRA model needs its base directory');
    mkdirSync(dir, { recursive: true });
    writeAdapterFiles(dir, m.model, m.baseDir);
    for (const [name, content] of Object.entries(extraFiles ?? {})) writeFileAtomic(join(dir, name), content);
  } else {
    savePretrained({ model: m.model, hf: m.hf }, dir, { extraFiles, dtype });
  }
  for (const [name, data] of m.tokenizerFiles) writeFileAtomic(join(dir, name), data);
}

/**
 * Saves `out/<name>` (default checkpoint-<global_step>) atomically with the model, its trainer state and optimizer
 * moments, then deletes the oldest checkpoint-N beyond `saveTotalLimit`. Returns its path.
 */
export function saveCheckpoint<S extends CheckpointState>(
  out: string,
  m: SavedModel,
  state: S,
  saveTotalLimit: number | null,
  name = `checkpoint-${state.global_step}`,
): string {
  const dir = join(out, name);
  writeDirAtomic(dir, (tmp) => {
    saveModel(m, tmp, 'F32', { [TRAINER_STATE_FILE]: JSON.stringify(state, null, 2) + '\n' });
    saveOptimizerState(join(tmp, OPTIMIZER_FILE), m.model);
  });
  if (saveTotalLimit !== null) {
    const all = listCheckpoints(out);
    for (const c of all.slice(0, Math.max(0, all.length - saveTotalLimit)))
      rmSync(c.dir, { recursive: true, force: true });
  }
  return dir;
}

/**
 * Saves the final model (HF layout in `m.finalDtype`, or a LoRA adapter, with tokenizer files) to out/final
 * atomically, without trainer or optimizer state: the run's last checkpoint keeps those.
 */
export function saveFinalModel(out: string, m: SavedModel): string {
  const dir = join(out, FINAL_DIR);
  writeDirAtomic(dir, (tmp) => saveModel(m, tmp, m.finalDtype ?? 'F32'));
  return dir;
}

function readStateFile(dir: string): CheckpointState {
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) throw new AhaError(`${dir}: not a checkpoint (${TRAINER_STATE_FILE} missing)`);
  let s: CheckpointState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as CheckpointState;
  } catch (e) {
    throw new AhaError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (s?.format !== TRAINER_STATE_FORMAT || !Number.isInteger(s.global_step) || !Number.isInteger(s.optimizer_step)) {
    throw new AhaError(`${path}: not an aha trainer state (format ${TRAINER_STATE_FORMAT})`);
  }
  return s;
}

/** Reads a checkpoint's trainer_state.json, which `trainer` must have written. */
export function readTrainerState<S extends CheckpointState>(dir: string, trainer: string): S {
  const s = readStateFile(dir);
  if (s.trainer !== trainer) {
    throw new AhaError(`${join(dir, TRAINER_STATE_FILE)}: written by the ${s.trainer} trainer, not ${trainer}`);
  }
  return s as S;
}

/** Loads a checkpoint's AdamW moments and step count into the engine. */
export function loadCheckpointOptimizer(dir: string, model: Model, state: CheckpointState): void {
  loadOptimizerState(join(dir, OPTIMIZER_FILE), model, state.optimizer_step);
}

/** A JSONL file of records that carry a `step` (metrics, samples), appended as the run goes. */
export class StepLog {
  constructor(readonly path: string) {}
  append(record: Record<string, unknown>): void {
    appendFileSync(this.path, JSON.stringify(record) + '\n');
  }
  /** Appends several records in one write. */
  appendAll(records: Record<string, unknown>[]): void {
    if (records.length > 0) appendFileSync(this.path, records.map((r) => JSON.stringify(r) + '\n').join(''));
  }
  /** Starts the file over (a fresh run). */
  reset(): void {
    writeFileAtomic(this.path, '');
  }
  /** Drops records past `step` (logged by a run killed before its next checkpoint, which a resume redoes). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => {
        if (l.trim() === '') return false;
        try {
          return (JSON.parse(l) as { step?: number }).step! <= step;
        } catch {
          return false; // a line torn by the kill
        }
      });
    writeFileAtomic(this.path, kept.map((l) => l + '\n').join(''));
  }
  /** All records (for tests and reports). */
  read(): Record<string, unknown>[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** The run's metrics.jsonl. */
export function metricsLog(out: string): StepLog {
  return new StepLog(join(out, METRICS_FILE));
}
