/**
 * The run directory of an SFT run:
 *
 *   out/config.json          the run's options (sftConfig.ts)
 *   out/metrics.jsonl        one JSON record per logging step / evaluation
 *   out/checkpoint-N/        a Hugging Face model dir after N optimizer steps, plus trainer_state.json and
 *                            optimizer.safetensors (AdamW moments m, v), so that a resumed run is exact
 *   out/final/               the model at the end, with the tokenizer files
 *
 * Model directories are written whole or not at all: into `<name>.tmp`, then renamed.
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import type { HfModelConfig } from '../model/hfConfig.ts';
import { TOKENIZER_FILES } from '../model/checkpoint.ts';
import { savePretrained } from '../model/pretrained.ts';
import { loadOptimizerState, saveOptimizerState } from '../train/optimizerState.ts';
import { writeFileAtomic } from '../util/fs.ts';

export const METRICS_FILE = 'metrics.jsonl';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const FINAL_DIR = 'final';

/** Running sums of the metrics window not yet logged, kept in checkpoints so resumed logs match. */
export interface LogWindow {
  lossSum: number;
  steps: number;
  tokens: number;
}

/** trainer_state.json: what a resumed run needs besides weights and moments. */
export interface TrainerState {
  format: 'aha-sft-trainer-state/1';
  global_step: number;
  /** Fractional epochs done (global_step / steps_per_epoch). */
  epoch: number;
  max_steps: number;
  steps_per_epoch: number;
  /** Sequences per optimizer step. */
  train_batch_size: number;
  num_train_sequences: number;
  /** Hash of the training sequences' tokens and masks: a changed data file cannot be resumed exactly. */
  data_fingerprint: string;
  seed: number;
  /** How batches are drawn; the only randomness of a run, so this is its whole RNG state. */
  data_order: string;
  /** Tokens processed so far. */
  num_tokens: number;
  log_window: LogWindow;
  optimizer: { file: string; tensors: ['m', 'v']; adam_step: number };
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
    if (m && statSync(dir).isDirectory() && existsSync(join(dir, TRAINER_STATE_FILE))) refs.push({ step: Number(m[1]), dir });
  }
  return refs.sort((a, b) => a.step - b.step);
}

/** The newest checkpoint, if any. */
export function latestCheckpoint(out: string): CheckpointRef | undefined {
  const all = listCheckpoints(out);
  return all[all.length - 1];
}

/** Removes half-written directories a killed run left behind. */
export function removeStaleTemporaries(out: string): void {
  if (!existsSync(out)) return;
  for (const name of readdirSync(out)) if (name.endsWith('.tmp') || name.endsWith('.old')) rmSync(join(out, name), { recursive: true, force: true });
}

/** Empties a run directory of everything a run writes (for overwrite_output_dir). */
export function clearRunDir(out: string): void {
  if (!existsSync(out)) return;
  for (const name of readdirSync(out)) {
    if (/^checkpoint-\d+(\.tmp|\.old)?$/.test(name) || name === FINAL_DIR || name === `${FINAL_DIR}.tmp` || name === METRICS_FILE || name === 'config.json') {
      rmSync(join(out, name), { recursive: true, force: true });
    }
  }
}

/** Writes a directory through `write(tmpDir)`, then swaps it in under `dir`. */
function writeDirAtomic(dir: string, write: (tmp: string) => void): void {
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

function saveModel(m: SavedModel, dir: string, extraFiles?: Record<string, string>): void {
  savePretrained({ model: m.model, hf: m.hf }, dir, { extraFiles });
  for (const [name, data] of m.tokenizerFiles) writeFileAtomic(join(dir, name), data);
}

/** Saves checkpoint-<step> atomically, then deletes the oldest ones beyond `saveTotalLimit`. Returns its path. */
export function saveCheckpoint(out: string, m: SavedModel, state: TrainerState, saveTotalLimit: number | null): string {
  const dir = join(out, `checkpoint-${state.global_step}`);
  writeDirAtomic(dir, (tmp) => {
    saveModel(m, tmp, { [TRAINER_STATE_FILE]: JSON.stringify(state, null, 2) + '\n' });
    saveOptimizerState(join(tmp, OPTIMIZER_FILE), m.model);
  });
  if (saveTotalLimit !== null) {
    const all = listCheckpoints(out);
    for (const c of all.slice(0, Math.max(0, all.length - saveTotalLimit))) rmSync(c.dir, { recursive: true, force: true });
  }
  return dir;
}

/** Reads a checkpoint's trainer_state.json. */
export function readTrainerState(dir: string): TrainerState {
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) throw new AhaError(`${dir}: not a checkpoint (${TRAINER_STATE_FILE} missing)`);
  let s: TrainerState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as TrainerState;
  } catch (e) {
    throw new AhaError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (s?.format !== 'aha-sft-trainer-state/1' || !Number.isInteger(s.global_step)) throw new AhaError(`${path}: not an aha SFT trainer state`);
  return s;
}

/** Loads a checkpoint's AdamW moments and step count into the engine. */
export function loadCheckpointOptimizer(dir: string, model: Model, state: TrainerState): void {
  const path = join(dir, state.optimizer.file);
  if (!existsSync(path)) throw new AhaError(`${path}: file not found (the checkpoint has no optimizer state)`);
  loadOptimizerState(path, model, state.optimizer.adam_step);
}

/** Saves the final model (HF layout with tokenizer files) to out/final atomically. */
export function saveFinalModel(out: string, m: SavedModel): string {
  const dir = join(out, FINAL_DIR);
  writeDirAtomic(dir, (tmp) => saveModel(m, tmp));
  return dir;
}

/** metrics.jsonl, one record per line, appended as the run goes. */
export class MetricsLog {
  readonly path: string;
  constructor(out: string) {
    this.path = join(out, METRICS_FILE);
  }
  append(record: Record<string, unknown>): void {
    appendFileSync(this.path, JSON.stringify(record) + '\n');
  }
  /** Starts the file over (a fresh run). */
  reset(): void {
    writeFileAtomic(this.path, '');
  }
  /** Drops records past `step` (logged by a run killed before its next checkpoint, which a resume redoes). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8').split('\n').filter((l) => {
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
    return readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
