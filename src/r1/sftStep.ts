/**
 * The SFT step of the pipeline's SFT stages and of distillation: an aha sft run that resumes its own checkpoints
 * and stops at a checkpoint when its wall-clock budget is spent.
 */
import type { ProgressSink } from '../train/progress.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveSftOptions } from '../sft/sftConfig.ts';
import { sftTrain } from '../sft/trainer.ts';
import { latestCheckpoint as latestSftCheckpoint } from '../train/runDir.ts';
import { budgetSignal, minutesText, type StageContext, type StageOutcome } from './stage.ts';

/** aha sft defaults of the pipeline's SFT stages (R1 v2: 2-3 epochs, cosine from 5e-5 to a tenth). */
export const PIPELINE_SFT_DEFAULTS: Record<string, unknown> = {
  num_train_epochs: 2,
  learning_rate: 5e-5,
  lr_scheduler_type: 'cosine',
  min_lr_ratio: 0.1,
  save_steps: 50,
  save_total_limit: 1,
  logging_steps: 10,
};

/** Options of {@link trainSftStep}. */
export interface SftStepOptions {
  model: string;
  data: string;
  /** aha sft options (over {@link PIPELINE_SFT_DEFAULTS}); model, data, out and resume are set here. */
  sft: Record<string, unknown>;
  runDir: string;
  /** Wall-clock budget: the run stops at a checkpoint there, and that checkpoint is the result. */
  maxMinutes?: number;
  /** Names the sft options in errors ("r1.yaml: stages.rejection_sft.sft"). */
  configName: string;
  signal: AbortSignal;
  log: (line: string) => void;
  progress?: ProgressSink;
  defaults?: Record<string, unknown>;
}

/**
 * SFT of `model` on `data` into `runDir` (an aha sft run directory), resuming its newest checkpoint when there is
 * one; a finished run (final/) is reused as is.
 */
export async function trainSftStep(o: SftStepOptions): Promise<StageOutcome> {
  const finalDir = join(o.runDir, 'final');
  // A finished run: a whole model, or LoRA adapters on their base.
  if (existsSync(join(finalDir, 'config.json')) || existsSync(join(finalDir, 'adapter_config.json')))
    return { checkpoint: finalDir, interrupted: false };
  const resume = latestSftCheckpoint(o.runDir) !== undefined;
  const opts = resolveSftOptions({
    config: { ...(o.defaults ?? PIPELINE_SFT_DEFAULTS), ...o.sft },
    configName: o.configName,
    cli: { model: o.model, data: o.data, out: o.runDir, resume_from_checkpoint: resume, overwrite_output_dir: !resume },
  });
  const budget = budgetSignal(o.signal, o.maxMinutes);
  try {
    const r = await sftTrain(opts, {
      log: (m) => o.log(`sft: ${m}`),
      progress: o.progress,
      shouldStop: () => budget.signal.aborted,
    });
    if (r.status === 'completed')
      return {
        checkpoint: r.finalDir!,
        interrupted: false,
        details: { sft_steps: r.globalStep, sft_loss: r.lastLoss },
      };
    if (budget.expired()) {
      o.log(`sft stopped by the ${minutesText(o.maxMinutes!)} budget at step ${r.globalStep}/${r.totalSteps}`);
      return {
        checkpoint: r.checkpoint!,
        interrupted: false,
        details: { sft_steps: r.globalStep, sft_loss: r.lastLoss, stopped_by_budget: true },
      };
    }
    return { checkpoint: r.checkpoint ?? o.model, interrupted: true };
  } finally {
    budget.dispose();
  }
}

/** {@link trainSftStep} inside a stage: its signal, log prefix and progress, its sft options named in errors. */
export function runSftStep(
  ctx: StageContext,
  o: { model: string; data: string; sft: Record<string, unknown>; runDir: string; maxMinutes?: number },
): Promise<StageOutcome> {
  return trainSftStep({
    ...o,
    configName: `${ctx.recipe.source}: stages.${ctx.name}.sft`,
    signal: ctx.signal,
    log: (l) => ctx.log(`${ctx.name}: ${l}`),
    progress: ctx.progress,
  });
}
