/**
 * What an SFT run keeps in the shared run directory (src/train/runDir.ts) besides the common files: config.json
 * (the run's options, sftConfig.ts) and the SFT fields of trainer_state.json.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { removeMetricsFiles } from '../train/metricsLog.ts';
import { FINAL_DIR, type CheckpointState } from '../train/runDir.ts';

/** Running sums of the metrics window not yet logged, kept in checkpoints so resumed logs match. */
export interface LogWindow {
  lossSum: number;
  steps: number;
  tokens: number;
}

/** trainer_state.json of an SFT run: what a resumed run needs besides weights and moments. */
export interface SftTrainerState extends CheckpointState {
  trainer: 'sft';
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
}

/** Empties a run directory of everything a run writes (for overwrite_output_dir). */
export function clearRunDir(out: string): void {
  if (!existsSync(out)) return;
  for (const name of readdirSync(out)) {
    if (
      /^checkpoint-\d+(\.tmp|\.old)?$/.test(name) ||
      name === FINAL_DIR ||
      name === `${FINAL_DIR}.tmp` ||
      name === 'config.json'
    ) {
      rmSync(join(out, name), { recursive: true, force: true });
    }
  }
  removeMetricsFiles(out);
}
