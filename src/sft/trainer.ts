/**
 * Supervised fine-tuning (and plain language-model pre-training on {"text"} lines) on the native engine, in the
 * manner of TRL's SFTTrainer: AdamW on the mean NLL of target tokens, gradient accumulation, warmup + decay,
 * periodic evaluation and checkpoints, and exact resumption: the batch of step s depends only on the seed and s
 * (see batching.ts), and checkpoints hold weights, AdamW moments and step in float32, so a run stopped and resumed
 * ends with the same weights and losses as one that never stopped. A completed run ends with a checkpoint of its
 * last step and final/: the model alone, in save_dtype.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ProgressSink } from '../train/progress.ts';
import { Rng } from '../data/rng.ts';
import { AhaError } from '../errors.ts';
import { hasChatTemplate } from '../model/chatTemplate.ts';
import { loadPretrained, saveDtypeFor, weightsFromTorchDtype } from '../model/pretrained.ts';
import { epochOrder, packSequences, splitMicroBatches, stepsPerEpoch, type MicroBatchLimits } from './batching.ts';
import { loadSftDataset, type SftDatasetStats, type SftEncodeContext, type SftExample } from './dataset.ts';
import { accumulateBatchGradient, evaluateLoss } from './loss.ts';
import { clearRunDir, type LogWindow, type SftTrainerState } from './runDir.ts';
import {
  FINAL_DIR,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpointOptimizer,
  readTrainerState,
  readTokenizerFiles,
  removeStaleTemporaries,
  saveCheckpoint,
  saveFinalModel,
  TRAINER_STATE_FORMAT,
  type CheckpointRef,
  type SavedModel,
} from '../train/runDir.ts';
import { MetricsLog } from '../train/metricsLog.ts';
import { learningRateAt, resolveWarmupSteps, type LrSchedule } from '../train/schedule.ts';
import { checkResumeOptions, runConfigJson, runConfigPath, sftLora, type SftOptions } from './sftConfig.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { dataParallel, weightCheckSteps } from '../parallel/dataParallel.ts';

/** One finished optimizer step, as hooks see it. */
export interface SftStepInfo {
  /** Steps done, this one included (1 for the first). */
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** The gradient was not finite and the step was skipped by the engine. */
  skipped: boolean;
  tokens: number;
}

/** Ways to watch and steer a run. */
export interface SftHooks {
  /** Called after every optimizer step; returning true stops the run there as SIGINT does (checkpoint, then return). */
  onStep?(info: SftStepInfo): boolean | void;
  /** Polled after every step; true stops the run the same way (the CLI's signal handlers set it). */
  shouldStop?(): boolean;
  /** Human-readable progress lines (data summary, checkpoints); default: silent. */
  log?(message: string): void;
  /** Receives a progress event after every step (the CLI draws a bar with loss, tokens/s and ETA from them). */
  progress?: ProgressSink;
}

/** How a call of {@link sftTrain} ended. */
export interface SftResult {
  out: string;
  status: 'completed' | 'interrupted';
  /** Optimizer steps done in the run so far. */
  globalStep: number;
  totalSteps: number;
  /** Loss of the last step this call ran (null when it ran none). */
  lastLoss: number | null;
  /** Loss of the last evaluation this call ran (null when none). */
  evalLoss: number | null;
  /** The newest checkpoint written by this call. */
  checkpoint: string | null;
  /** out/final when the run completed. */
  finalDir: string | null;
  trainSequences: number;
  evalSequences: number;
  trainStats: SftDatasetStats;
  evalStats: SftDatasetStats | null;
}

/** max_seq_length when unset (TRL's default max_length), or the model's context when that is shorter. */
export const DEFAULT_MAX_SEQ_LENGTH = 1024;

/** 32-bit FNV-1a over the training sequences (ids and masks), to notice a data file changed under a resume. */
function fingerprint(seqs: readonly SftExample[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= x >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  mix(seqs.length);
  for (const s of seqs) {
    mix(s.ids.length);
    for (let t = 0; t < s.ids.length; t++) mix(s.ids[t] * 2 + s.mask[t]);
  }
  return h.toString(16).padStart(8, '0');
}

function describeStats(name: string, s: SftDatasetStats): string {
  const formats = Object.entries(s.byFormat)
    .filter(([, n]) => n > 0)
    .map(([f, n]) => `${n} ${f}`)
    .join(', ');
  return (
    `${name}: ${s.lines} lines (${formats || 'none'}), ${s.tokens} tokens, ${s.targetTokens} target tokens; ` +
    `${s.truncated} truncated to max_seq_length, ${s.droppedNoTargets} dropped with no target token left`
  );
}

/** Splits off an eval set of round(fraction * n) sequences (at least 1), chosen by the seed; both keep file order. */
export function splitEval<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; eval: T[] } {
  const n = items.length;
  const k = Math.max(1, Math.round(fraction * n));
  if (k >= n) throw new AhaError(`eval_fraction ${fraction} leaves no training data (${n} sequences)`);
  const pick = new Set(
    new Rng(seed)
      .fork('sft-eval-split')
      .shuffle(Array.from({ length: n }, (_, i) => i))
      .slice(0, k),
  );
  return { train: items.filter((_, i) => !pick.has(i)), eval: items.filter((_, i) => pick.has(i)) };
}

/** The run's length: optimizer steps, sequences per step, steps per epoch, warmup. */
export function planSteps(
  o: SftOptions,
  trainSequences: number,
): { batchSize: number; stepsPerEpoch: number; totalSteps: number; warmupSteps: number } {
  const batchSize = o.per_device_train_batch_size * o.gradient_accumulation_steps;
  const spe = stepsPerEpoch(trainSequences, batchSize);
  const totalSteps = o.max_steps > 0 ? o.max_steps : Math.max(1, Math.ceil(o.num_train_epochs * spe));
  return {
    batchSize,
    stepsPerEpoch: spe,
    totalSteps,
    warmupSteps: resolveWarmupSteps(totalSteps, o.warmup_steps, o.warmup_ratio),
  };
}

/**
 * Runs (or resumes, with `resume_from_checkpoint`) an SFT run into `opts.out`. Stops early, after a checkpoint,
 * when a hook asks; returns how far it got. Bad options or data raise AhaError before any step is taken.
 */
export async function sftTrain(opts: SftOptions, hooks: SftHooks = {}): Promise<SftResult> {
  const out = opts.out;
  let created: string | undefined;
  try {
    created = mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new AhaError(
      `${out}: cannot create the run directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let started = false;
  try {
    return await sftTrainInto(opts, hooks, () => (started = true));
  } catch (e) {
    // A run that fails on its inputs (model, data, options) leaves no empty run directory behind.
    if (created !== undefined && !started) rmSync(created, { recursive: true, force: true });
    throw e;
  }
}

/** The run itself, in an existing `opts.out`; `onStart` is called once the inputs are validated, before training. */
async function sftTrainInto(opts: SftOptions, hooks: SftHooks, onStart: () => void): Promise<SftResult> {
  const out = opts.out;
  // Under mpirun: every rank reads the run directory, rank 0 alone writes it (src/parallel/dataParallel.ts).
  const dp = dataParallel();
  const writer = !dp || dp.writer;
  if (!writer) hooks = { ...hooks, progress: undefined, log: undefined };
  const log = hooks.log ?? (() => {});
  if (writer) removeStaleTemporaries(out);

  let resumeFrom: CheckpointRef | undefined;
  if (opts.resume_from_checkpoint !== false) {
    if (typeof opts.resume_from_checkpoint === 'string') {
      resumeFrom = {
        dir: opts.resume_from_checkpoint,
        step: readTrainerState<SftTrainerState>(opts.resume_from_checkpoint, 'sft').global_step,
      };
    } else {
      resumeFrom = latestCheckpoint(out);
      if (!resumeFrom) throw new AhaError(`${out}: no checkpoint to resume from (run without --resume to start)`);
    }
    checkResumeOptions(opts, out);
  } else if (listCheckpoints(out).length > 0 || existsSync(join(out, FINAL_DIR))) {
    if (!opts.overwrite_output_dir) {
      throw new AhaError(
        `${out}: already holds a run: pass --resume to continue it, or --overwrite-output-dir to start over`,
      );
    }
    if (writer) clearRunDir(out);
  }

  const lora = sftLora(opts);
  // A LoRA checkpoint is an adapter directory: loading it as it is brings the base and the trained adapters back.
  const p = loadPretrained(resumeFrom?.dir ?? opts.model, {
    requireTokenizer: true,
    weights: weightsFromTorchDtype(opts.torch_dtype),
    lora: resumeFrom ? undefined : lora,
    resumeAdapters: !!resumeFrom,
    loraSeed: opts.seed,
    memory: {
      training: true,
      gradientCheckpointing: opts.gradient_checkpointing,
      batchTokens:
        opts.micro_batch_tokens ?? opts.per_device_train_batch_size * (opts.max_seq_length ?? DEFAULT_MAX_SEQ_LENGTH),
    },
  });
  if (!!lora !== !!p.model.lora)
    throw new AhaError(
      `${resumeFrom?.dir}: the checkpoint ${p.model.lora ? 'holds LoRA adapters' : 'is a whole model'} but the options ${lora ? 'ask for' : 'do not ask for'} LoRA (use_peft)`,
    );
  const model = p.model;
  model.setGradientCheckpointing(opts.gradient_checkpointing);
  const maxPos = model.config.maxPositionEmbeddings;
  if (opts.max_seq_length !== null && opts.max_seq_length > maxPos) {
    throw new AhaError(`max_seq_length ${opts.max_seq_length} is over the model's max_position_embeddings (${maxPos})`);
  }
  const maxSeqLength = opts.max_seq_length ?? Math.min(DEFAULT_MAX_SEQ_LENGTH, maxPos);
  const ctx: SftEncodeContext = {
    tokenizer: p.tokenizer!,
    chatTemplate: hasChatTemplate(p.dir) ? p.dir : undefined,
    ...(opts.chat_template_kwargs ? { chatTemplateVars: opts.chat_template_kwargs } : {}),
    maxSeqLength,
    now: new Date(),
  };
  if (!ctx.chatTemplate && opts.chat_template_kwargs)
    throw new AhaError(`chat_template_kwargs: ${p.dir} has no chat template to pass them to`);
  if (!ctx.chatTemplate) log(`${p.dir} has no chat template: "messages" lines use the fallback "Role: content" format`);

  // Packed rows are cut from whole sequences, so the data is read untruncated for them; evaluation stays per example.
  const trainData = loadSftDataset(opts.data, opts.packing ? { ...ctx, maxSeqLength: undefined } : ctx);
  let trainSeqs = trainData.examples;
  let evalSeqs: SftExample[] = [];
  let evalStats: SftDatasetStats | null = null;
  if (opts.eval_data !== null) {
    const e = loadSftDataset(opts.eval_data, ctx);
    evalSeqs = e.examples;
    evalStats = e.stats;
  } else if (opts.eval_fraction > 0) {
    const split = splitEval(trainSeqs, opts.eval_fraction, opts.seed);
    trainSeqs = split.train;
    evalSeqs = opts.packing ? split.eval.map((s) => truncate(s, maxSeqLength)) : split.eval;
  }
  log(describeStats(opts.data, trainData.stats));
  if (evalStats && opts.eval_data) log(describeStats(opts.eval_data, evalStats));
  if (opts.packing) {
    const n = trainSeqs.length;
    trainSeqs = packSequences(trainSeqs, maxSeqLength);
    log(
      `packing: ${n} sequences into ${trainSeqs.length} rows of ${maxSeqLength} tokens (attention crosses examples within a row)`,
    );
  }
  if (trainSeqs.length === 0) throw new AhaError(`${opts.data}: no training sequence with a target token`);

  const plan = planSteps(opts, trainSeqs.length);
  const { batchSize, stepsPerEpoch: spe, totalSteps } = plan;
  const schedule: LrSchedule = {
    type: opts.lr_scheduler_type,
    learningRate: opts.learning_rate,
    warmupSteps: plan.warmupSteps,
    totalSteps,
    minLrRatio: opts.min_lr_ratio,
  };
  const limits: MicroBatchLimits = {
    maxSequences: opts.per_device_train_batch_size,
    maxTokens: opts.micro_batch_tokens ?? undefined,
  };
  const evalLimits: MicroBatchLimits = {
    maxSequences: opts.per_device_eval_batch_size,
    maxTokens: opts.micro_batch_tokens ?? undefined,
  };
  const fp = fingerprint(trainSeqs);
  const metrics = writer ? new MetricsLog(out, opts.report_to) : undefined;

  let step = 0;
  let numTokens = 0;
  let window: LogWindow = { lossSum: 0, steps: 0, tokens: 0 };
  if (resumeFrom) {
    const st = readTrainerState<SftTrainerState>(resumeFrom.dir, 'sft');
    const where = join(resumeFrom.dir, 'trainer_state.json');
    if (st.data_fingerprint !== fp || st.num_train_sequences !== trainSeqs.length) {
      throw new AhaError(
        `${where}: the training data differs from the data the run started with (fingerprint ${st.data_fingerprint}, now ${fp}); cannot resume exactly`,
      );
    }
    if (st.train_batch_size !== batchSize)
      throw new AhaError(`${where}: the run used ${st.train_batch_size} sequences per step, now ${batchSize}`);
    if (st.max_steps !== totalSteps)
      log(`note: the run was planned for ${st.max_steps} steps, now ${totalSteps} (the schedule changes)`);
    loadCheckpointOptimizer(resumeFrom.dir, model, st);
    step = st.global_step;
    numTokens = st.num_tokens;
    window = { ...st.log_window };
    metrics?.resumeAt(step);
    log(`resuming from ${resumeFrom.dir} at step ${step}/${totalSteps}`);
  } else {
    metrics?.reset();
  }
  if (writer) writeFileAtomic(runConfigPath(out), runConfigJson(opts));
  onStart();
  log(
    `${trainSeqs.length} training sequences, ${evalSeqs.length} eval sequences; ${batchSize} sequences per step, ${spe} steps per epoch, ${totalSteps} steps (${plan.warmupSteps} warmup)`,
  );

  const saved: SavedModel = {
    model,
    hf: p.hf,
    tokenizerFiles: readTokenizerFiles(p.dir),
    baseDir: p.baseDir,
    // Of the model the run started from: a resumed run loads a float32 checkpoint.
    finalDtype: model.lora ? undefined : saveDtypeFor(opts.save_dtype, opts.model),
  };
  const state = (): SftTrainerState => ({
    format: TRAINER_STATE_FORMAT,
    trainer: 'sft',
    global_step: step,
    optimizer_step: model.optimizerState().step,
    epoch: step / spe,
    max_steps: totalSteps,
    steps_per_epoch: spe,
    train_batch_size: batchSize,
    num_train_sequences: trainSeqs.length,
    data_fingerprint: fp,
    seed: opts.seed,
    data_order: `step s takes batch s mod ${spe} of epoch floor(s / ${spe}); epoch e is a Fisher-Yates shuffle by new Rng(seed + e).fork('sft-epoch-order')`,
    num_tokens: numTokens,
    log_window: { ...window },
  });
  let lastCheckpoint: string | null = null;
  let lastCheckpointStep = resumeFrom?.step ?? -1;
  const checkpoint = () => {
    if (lastCheckpointStep === step) return;
    lastCheckpoint = writer
      ? saveCheckpoint(out, saved, state(), opts.save_total_limit)
      : join(out, `checkpoint-${step}`);
    lastCheckpointStep = step;
    log(`saved ${lastCheckpoint}`);
  };
  let evalLoss: number | null = null;
  let lastEvalStep = -1;
  const evaluate = async () => {
    if (evalSeqs.length === 0 || lastEvalStep === step) return;
    const r = await evaluateLoss(model, evalSeqs, evalLimits);
    evalLoss = r.loss;
    lastEvalStep = step;
    metrics?.append({ step, epoch: step / spe, eval_loss: r.loss, eval_tokens: r.targetTokens });
  };
  if (step === 0 && opts.eval_on_start) await evaluate();

  const progress = step < totalSteps ? hooks.progress : undefined;
  const callStart = performance.now();
  let callTokens = 0;
  let orderEpoch = -1;
  let order: number[] = [];
  let lastLoss: number | null = null;
  // Tokens/s counts step time only (evaluations and checkpoints excluded); not carried across a resume.
  let windowSecs = 0;
  let windowTimedTokens = 0;
  let stopped: boolean;
  try {
    while (step < totalSteps) {
      const epoch = Math.floor(step / spe);
      if (epoch !== orderEpoch) {
        order = epochOrder(trainSeqs.length, opts.seed, epoch);
        orderEpoch = epoch;
      }
      const b = step % spe;
      const batch = order.slice(b * batchSize, (b + 1) * batchSize).map((i) => trainSeqs[i]);
      const micro = splitMicroBatches(
        batch.map((s) => s.ids.length),
        limits,
      );
      const lr = learningRateAt(schedule, step);
      const t0 = performance.now();
      model.zeroGrad();
      // A data-parallel rank takes its share of the micro-batches; the normaliser stays the whole batch's.
      const r = await accumulateBatchGradient(model, batch, dp ? micro.slice(...dp.share(micro.length)) : micro);
      if (dp) {
        dp.allreduceGradients(model);
        r.loss = dp.reduce([r.loss])[0];
      }
      const st = await model.step({
        lr,
        weightDecay: opts.weight_decay,
        maxGradNorm: opts.max_grad_norm,
        beta1: opts.adam_beta1,
        beta2: opts.adam_beta2,
        eps: opts.adam_epsilon,
      });
      step++;
      windowSecs += (performance.now() - t0) / 1000;
      windowTimedTokens += r.tokens;
      numTokens += r.tokens;
      callTokens += r.tokens;
      lastLoss = r.loss;
      window.lossSum += r.loss;
      window.steps++;
      window.tokens += r.tokens;
      if (st.skipped) log(`step ${step}: gradient not finite, update skipped`);

      if (step % opts.logging_steps === 0 || step === totalSteps) {
        // transformers' names (loss, grad_norm, learning_rate, epoch), as every trainer here logs them.
        metrics?.append({
          step,
          epoch: step / spe,
          loss: window.lossSum / window.steps,
          grad_norm: st.gradNorm,
          learning_rate: lr,
          tokens_per_second: windowSecs > 0 ? Math.round(windowTimedTokens / windowSecs) : null,
          num_tokens: numTokens,
        });
        window = { lossSum: 0, steps: 0, tokens: 0 };
        windowSecs = 0;
        windowTimedTokens = 0;
      }
      if ((opts.eval_steps !== null && step % opts.eval_steps === 0) || step === totalSteps) await evaluate();

      const info: SftStepInfo = {
        step,
        totalSteps,
        epoch: step / spe,
        loss: r.loss,
        lr,
        gradNorm: st.gradNorm,
        skipped: st.skipped,
        tokens: r.tokens,
      };
      stopped = hooks.onStep?.(info) === true;
      stopped = hooks.shouldStop?.() === true || stopped;
      if (dp) {
        // The ranks stop together; their weights are checked equal every few steps.
        stopped = dp.reduce([stopped ? 1 : 0], 'max')[0] > 0;
        if (step % weightCheckSteps() === 0) dp.checkWeights(model, step);
      }
      if (step % opts.save_steps === 0 || step === totalSteps || stopped) checkpoint();
      if (progress) {
        const secs = (performance.now() - callStart) / 1000;
        progress({
          label: 'sft',
          done: step,
          total: totalSteps,
          unit: 'steps',
          metrics: {
            loss: r.loss.toFixed(4),
            ...(evalLoss !== null ? { eval_loss: (evalLoss as number).toFixed(4) } : {}),
            grad_norm: st.gradNorm.toPrecision(3),
            lr: lr.toExponential(1),
            'tok/s': String(Math.round(callTokens / secs)),
          },
        });
      }
      if (stopped && step < totalSteps) break;
    }
  } finally {
    progress?.({ label: 'sft', done: step, total: totalSteps, unit: 'steps', finished: true });
  }

  const base = {
    out,
    globalStep: step,
    totalSteps,
    lastLoss,
    evalLoss,
    trainSequences: trainSeqs.length,
    evalSequences: evalSeqs.length,
    trainStats: trainData.stats,
    evalStats,
  };
  if (step < totalSteps) return { ...base, status: 'interrupted', checkpoint: lastCheckpoint, finalDir: null };
  if (lastCheckpointStep !== step) checkpoint();
  const finalDir = writer ? saveFinalModel(out, saved) : join(out, FINAL_DIR);
  log(`saved ${finalDir}`);
  return { ...base, status: 'completed', checkpoint: lastCheckpoint, finalDir };
}

function truncate(s: SftExample, n: number): SftExample {
  return s.ids.length <= n ? s : { ids: s.ids.slice(0, n), mask: s.mask.slice(0, n), line: s.line };
}
