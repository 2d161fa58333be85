/**
 * The GRPO training loop (DeepSeekMath/R1's Group Relative Policy Optimization, with TRL's options), the engine of
 * `aha grpo` and `aha demo`.
 *
 * One step: draw prompts_per_step questions; sample num_generations completions of each at the rollout
 * temperature; score them with the weighted rewards (a failing or hanging reward is reported and scored 0);
 * group-relative advantages; optionally drop all-equal groups and sample more (dynamic sampling); then
 * num_iterations passes over the rollout, each split into steps_per_generation mini-batches, each mini-batch one
 * AdamW update accumulated over token-budgeted micro-batches, with the clipped-surrogate loss of grpoLoss.ts
 * normalised over the whole mini-batch. pi_old is the sampling policy: its log-probs come from the sampler, so the
 * ratio is exactly 1 on the first (on-policy) update and the formula is kept as is. The KL term uses a frozen
 * reference copy (beta > 0 only), optionally refreshed to the current policy every ref_model_sync_steps (R1: 400).
 *
 * Determinism: the question order (a seeded shuffle per epoch) and every completion's sampling seed derive from
 * training.seed and the step, and the position in the data stream is saved in checkpoints, so a resumed run
 * continues exactly where the interrupted one stood.
 *
 * Run directory: metrics.jsonl (one flat StepMetrics per step, TRL's names) and, as training.report_to says,
 * metrics.csv and TensorBoard event files in runs/ (src/train/metricsLog.ts); samples.jsonl, recipe.json (+ the
 * recipe file's text), checkpoint-N/ (HF model dir + trainer_state.json + optimizer.safetensors, written as
 * checkpoint-N.tmp and renamed; one at the last step too), final/ at the end (the model in training.save_dtype, or
 * the LoRA adapter, with the tokenizer: no state), reference-step-N.safetensors when the reference was refreshed.
 */
import { tensorChunks } from '../engine/types.ts';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Model, WeightsDtype } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { loadPretrained, saveDtypeFor, weightsFromTorchDtype, type Pretrained } from '../model/pretrained.ts';
import { isAdapterDir, loadAdapterInto } from '../model/adapter.ts';
import { loadModelDir } from '../model/checkpoint.ts';
import { readSafetensorsInto, writeSafetensors } from '../model/safetensors.ts';
import type { ProgressSink } from '../train/progress.ts';
import { MetricsLog } from '../train/metricsLog.ts';
import {
  FINAL_DIR,
  latestCheckpoint,
  loadCheckpointOptimizer,
  readTokenizerFiles,
  readTrainerState,
  removeStaleTemporaries,
  saveCheckpoint,
  saveFinalModel,
  StepLog,
  TRAINER_STATE_FORMAT,
  type CheckpointState,
  type SavedModel,
} from '../train/runDir.ts';
import { learningRateAt, resolveWarmupSteps, type LrSchedule } from '../train/schedule.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { dataParallel, weightCheckSteps } from '../parallel/dataParallel.ts';
import { loadExamples, prepareExamples, PromptStream } from './grpoData.ts';
import { toGrpoLossOptions } from './grpoOptions.ts';
import { rollout, type RolloutContext } from './grpoRollout.ts';
import { sampleRecords, stepMetrics } from './grpoStepMetrics.ts';
import { updatePolicy, type UpdateContext, type UpdateHooks } from './grpoUpdate.ts';
import { learningSignalWatch, progressMetrics, type StepMetrics } from './metrics.ts';
import { parseRecipe, recipePath, recipeToJson, type Recipe, type RecipeInput } from './recipe.ts';
import { buildRewards, disposeRewards } from './rewardRegistry.ts';

const SAMPLES_FILE = 'samples.jsonl';

/** Options of {@link grpoTrain}. */
export interface GrpoTrainOptions {
  /** Run directory; overrides recipe.output_dir. With neither, nothing is written (in-memory run). */
  outDir?: string;
  /** Continue from the latest checkpoint in the run directory. */
  resume?: boolean;
  /** Called after every step with its metrics. */
  onStep?: (m: StepMetrics) => void | Promise<void>;
  /**
   * Stops the run: a step whose rollout is under way when it fires is abandoned (no update), one that is learning
   * finishes; then a checkpoint of the last finished step is written and the result says `interrupted`.
   */
  signal?: AbortSignal;
  /**
   * Receives a progress event after every step, with its headline metrics (the CLI draws a bar from them), and
   * warnings about a run that cannot learn (no reward variance; the format reward at 0 for many steps). Without
   * it, the warnings go to `log`.
   */
  progress?: ProgressSink;
  /** Where notices and reward errors go, one line each (default stderr). */
  log?: (line: string) => void;
  /** An already loaded model (and its tokenizer) instead of loading recipe.model. */
  model?: Pretrained;
  /** The recipe file's text, copied into the run directory next to recipe.json. */
  recipeText?: string;
  /** Where a RecipeInput came from, for messages about its fields (default 'recipe'). */
  source?: string;
  /** Points where the caller joins each update (data-parallel gradient reduction). */
  hooks?: UpdateHooks;
}

/** What {@link grpoTrain} returns. */
export interface GrpoTrainResult {
  /** The last finished step. */
  step: number;
  interrupted: boolean;
  /** Metrics of the last finished step (undefined when no step ran). */
  metrics?: StepMetrics;
  /** Metrics of every step run by this call. */
  history: StepMetrics[];
  outDir?: string;
  /** The model the run ended with: final/ after a complete run, else the last checkpoint written. */
  checkpoint?: string;
  model: Model;
}

/** trainer_state.json of a GRPO checkpoint (the shared fields, then GRPO's). */
export interface TrainerState extends CheckpointState {
  trainer: 'grpo';
  /** Prompts drawn from the data stream so far (its position). */
  prompts_consumed: number;
  seed: number;
  /** Step at which the reference was last replaced by the policy (0: the base model). */
  ref_sync_step: number;
  num_examples: number;
  max_steps: number;
  last_metrics?: StepMetrics;
}

/**
 * Learning rate of GRPO step `step` (1-based), constant within the step: the shared schedule (transformers'
 * semantics, so the first step of a warmup runs at 0) over max_steps.
 */
export function grpoLearningRate(t: Recipe['training'], step: number): number {
  const schedule: LrSchedule = {
    type: t.lr_scheduler_type,
    learningRate: t.learning_rate,
    warmupSteps: resolveWarmupSteps(t.max_steps, t.warmup_steps, t.warmup_ratio),
    totalSteps: t.max_steps,
  };
  return learningRateAt(schedule, step - 1);
}

/**
 * The run directory's newest checkpoint with its GRPO state, or null: checkpoint-N (a finished run's last step has
 * one), or the final/ of a run directory written when final/ still held the state.
 */
export function latestGrpoCheckpoint(outDir: string): { dir: string; state: TrainerState } | null {
  const ref = latestCheckpoint(outDir, { includeFinal: true });
  return ref ? { dir: ref.dir, state: readTrainerState<TrainerState>(ref.dir, 'grpo') } : null;
}

/**
 * Runs GRPO as the recipe says. `recipe` may be a parsed Recipe or a RecipeInput object; in code, the dataset may
 * be an array of examples and a reward may carry its function (`fn`) or, for accuracy, a `check` (a Task's check),
 * so no file is needed.
 */
export async function grpoTrain(recipeIn: Recipe | RecipeInput, opts: GrpoTrainOptions = {}): Promise<GrpoTrainResult> {
  const recipe: Recipe = 'baseDir' in recipeIn ? (recipeIn as Recipe) : parseRecipe(recipeIn, opts.source ?? 'recipe');
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { grpo, training: t } = recipe;
  const outDir = opts.outDir ?? (recipe.output_dir !== undefined ? recipePath(recipe, recipe.output_dir) : undefined);
  // Under mpirun: every rank reads the run directory, rank 0 alone writes it (src/parallel/dataParallel.ts).
  const dp = dataParallel();
  const writeDir = dp && !dp.writer ? undefined : outDir;
  if (dp && !dp.writer) opts = { ...opts, progress: () => {} };
  for (const d of recipe.deprecations ?? []) log(`grpo: warning: ${d}`);

  // Everything that can fail on bad input fails here, before any sampling.
  const rewards = await buildRewards(recipe.rewards, { grpo, baseDir: recipe.baseDir, source: recipe.source, log });
  const examples = await loadExamples(recipe);
  let resumeFrom: { dir: string; state: TrainerState } | null = null;
  if (outDir !== undefined) {
    if (writeDir !== undefined) removeStaleTemporaries(outDir);
    resumeFrom = latestGrpoCheckpoint(outDir);
    if (opts.resume && !resumeFrom) throw new AhaError(`${outDir}: no checkpoint to resume from`);
    const held = resumeFrom?.dir ?? (existsSync(join(outDir, FINAL_DIR)) ? join(outDir, FINAL_DIR) : undefined);
    if (!opts.resume && held) {
      throw new AhaError(
        `${outDir}: already holds a run (${held}); pass --resume to continue it or choose another --out`,
      );
    }
  } else if (opts.resume) {
    throw new AhaError('resume needs a run directory (--out or output_dir)');
  }
  const refDtypeOption = weightsFromTorchDtype(recipe.ref_model_dtype);
  const pre: Pretrained =
    opts.model ??
    loadPretrained(recipePath(recipe, recipe.model), {
      requireTokenizer: true,
      lora: recipe.lora,
      loraSeed: t.seed,
      weights: weightsFromTorchDtype(recipe.torch_dtype),
      memory: {
        training: true,
        reference: grpo.beta > 0 && refDtypeOption,
        batchTokens: t.micro_batch_tokens,
        gradientCheckpointing: t.gradient_checkpointing,
      },
    });
  const tokenizer = pre.tokenizer;
  if (!tokenizer) throw new AhaError(`${pre.dir}: the model has no tokenizer.json`);
  const model = pre.model;
  // The reference copy's type: the checkpoint's own when 16-bit (bit-exact at step 0, half the memory).
  const refDtype: WeightsDtype = refDtypeOption === 'auto' ? (pre.storedDtype ?? 'f32') : refDtypeOption;
  if (!model.trainable)
    throw new AhaError(
      `${pre.dir}: the model's weights are ${model.weightsDtype} and frozen; train it with lora, or load it as float32`,
    );
  model.setGradientCheckpointing(t.gradient_checkpointing);
  const stopTokenIds =
    tokenizer.eosTokenIds.length > 0 ? [...tokenizer.eosTokenIds] : ([] as number[]).concat(pre.hf.eosTokenId ?? []);
  if (stopTokenIds.length === 0)
    log('grpo: warning: the tokenizer has no eos token; every completion runs to max_completion_length');
  const prepared = prepareExamples(recipe, examples, {
    tokenizer,
    modelDir: pre.dir,
    maxPositions: model.config.maxPositionEmbeddings,
    maxNew: grpo.max_completion_length,
    log,
  });

  // State, fresh or from the checkpoint.
  let state: TrainerState = {
    format: TRAINER_STATE_FORMAT,
    trainer: 'grpo',
    global_step: 0,
    optimizer_step: 0,
    prompts_consumed: 0,
    seed: t.seed,
    ref_sync_step: 0,
    num_examples: prepared.length,
    max_steps: t.max_steps,
  };
  const metricsLog = writeDir !== undefined ? new MetricsLog(writeDir, t.report_to) : undefined;
  const samplesLog = writeDir !== undefined ? new StepLog(join(writeDir, SAMPLES_FILE)) : undefined;
  if (grpo.beta > 0) model.snapshotReference(refDtype);
  else if (model.hasReference) model.dropReference();
  if (resumeFrom && outDir !== undefined) {
    const s = resumeFrom.state;
    if (s.seed !== t.seed)
      log(
        `grpo: warning: the recipe's seed ${t.seed} differs from the checkpoint's ${s.seed}; the checkpoint's is used`,
      );
    if (s.num_examples !== prepared.length)
      log(
        `grpo: warning: the dataset has ${prepared.length} usable questions, the checkpoint saw ${s.num_examples}: the question order changes`,
      );
    if (grpo.beta > 0 && s.ref_sync_step > 0) {
      const refFile = join(outDir, `reference-step-${s.ref_sync_step}.safetensors`);
      if (!existsSync(refFile)) throw new AhaError(`${refFile}: the reference weights of this run are missing`);
      readSafetensorsInto([refFile], model.layout, model.store('params'), refFile);
      model.snapshotReference(refDtype);
    }
    if (model.lora) {
      if (!isAdapterDir(resumeFrom.dir))
        throw new AhaError(`${resumeFrom.dir}: the checkpoint is a whole model, but the recipe trains LoRA adapters`);
      loadAdapterInto(model, resumeFrom.dir);
    } else {
      if (isAdapterDir(resumeFrom.dir))
        throw new AhaError(`${resumeFrom.dir}: the checkpoint holds LoRA adapters, but the recipe has no lora section`);
      const md = loadModelDir(resumeFrom.dir);
      if (md.config.vocabSize !== model.config.vocabSize || md.layout.length !== model.layout.length) {
        throw new AhaError(`${resumeFrom.dir}: the checkpoint's model differs from ${recipe.model}`);
      }
      md.loadParams(model.store('params'));
    }
    loadCheckpointOptimizer(resumeFrom.dir, model, s);
    state = { ...s, max_steps: t.max_steps, num_examples: prepared.length };
    metricsLog?.resumeAt(s.global_step);
    samplesLog?.truncateAfter(s.global_step);
    log(`grpo: resuming ${outDir} from step ${s.global_step} (${resumeFrom.dir})`);
  }
  if (writeDir !== undefined) {
    mkdirSync(writeDir, { recursive: true });
    if (!resumeFrom) {
      // Lines a crashed earlier attempt may have left (there is no checkpoint to go with them).
      metricsLog!.reset();
      samplesLog!.truncateAfter(0);
    }
    writeFileAtomic(join(writeDir, 'recipe.json'), recipeToJson(recipe));
    if (opts.recipeText !== undefined) writeFileAtomic(join(writeDir, 'recipe.yaml'), opts.recipeText);
  }

  const rolloutCtx: RolloutContext = {
    recipe,
    model,
    tokenizer,
    rewards,
    prepared,
    stopTokenIds,
    log,
    // Ranks stop together at a step boundary (below), never one alone mid-rollout.
    signal: dp ? undefined : opts.signal,
    stream: new PromptStream(prepared.length, state.seed, t.shuffle),
    parallel: dp,
  };
  const hooks: UpdateHooks | undefined = dp
    ? {
        reduceGradients: async (m) => {
          dp.allreduceGradients(m);
          await opts.hooks?.reduceGradients?.(m);
        },
      }
    : opts.hooks;
  const updateCtx: UpdateContext = {
    recipe,
    model,
    lossOptions: toGrpoLossOptions(grpo),
    log,
    hooks,
    parallel: dp,
  };
  const saved: SavedModel = {
    model,
    hf: pre.hf,
    tokenizerFiles: readTokenizerFiles(pre.dir),
    baseDir: pre.baseDir ?? pre.dir,
    finalDtype: model.lora ? undefined : saveDtypeFor(t.save_dtype, pre.baseDir ?? pre.dir),
  };
  const history: StepMetrics[] = [];
  const finalDir = outDir !== undefined ? join(outDir, FINAL_DIR) : undefined;
  // A final/ resumed from (an older run directory's) holds the state only until final/ is rewritten without it.
  let lastSaved: string | undefined = resumeFrom?.dir !== finalDir ? resumeFrom?.dir : undefined;
  let lastSavedStep = state.global_step;
  const checkpoint = (): void => {
    const name = `checkpoint-${state.global_step}`;
    lastSaved =
      writeDir === undefined
        ? join(outDir!, name)
        : saveCheckpoint(
            outDir!,
            saved,
            { ...state, last_metrics: history[history.length - 1] },
            t.save_total_limit,
            name,
          );
    lastSavedStep = state.global_step;
  };

  const progress = (done: number, metrics?: Record<string, string>, finished?: boolean) =>
    opts.progress?.({ label: 'grpo', done, total: t.max_steps, unit: 'step', metrics, finished });
  const warn = (message: string) =>
    opts.progress ? opts.progress({ kind: 'warning', label: 'grpo', message }) : log(`grpo: warning: ${message}`);
  const signalWatch = learningSignalWatch();
  progress(state.global_step);
  let interrupted = false;
  try {
    while (state.global_step < t.max_steps) {
      const stop = opts.signal?.aborted === true;
      if (dp ? dp.reduce([stop ? 1 : 0], 'max')[0] > 0 : stop) {
        interrupted = true;
        break;
      }
      const step = state.global_step + 1;
      const tStep = performance.now();
      const r = await rollout(rolloutCtx, step, state.seed, state.prompts_consumed);
      if (r.abandoned) {
        // Abandoned before any update: the step is redone on resume with the same prompts and seeds.
        interrupted = true;
        break;
      }
      state.prompts_consumed = r.cursor;

      const tLearn = performance.now();
      const lr = grpoLearningRate(t, step);
      const u = await updatePolicy(updateCtx, r.used, step, lr);
      state.optimizer_step = model.optimizerState().step;
      const learnSeconds = (performance.now() - tLearn) / 1000;
      state.global_step = step;
      if (grpo.beta > 0 && t.ref_model_sync_steps > 0 && step % t.ref_model_sync_steps === 0)
        syncReference(model, refDtype, state, writeDir);

      const metrics = stepMetrics(recipe, rewards, r, u, {
        step,
        epoch: state.prompts_consumed / prepared.length,
        learningRate: lr,
        learnSeconds,
        totalSeconds: (performance.now() - tStep) / 1000,
      });
      if (dp && step % weightCheckSteps() === 0) dp.checkWeights(model, step);
      history.push(metrics);
      metricsLog?.append(metrics);
      if (
        samplesLog &&
        t.num_samples_logged > 0 &&
        (step === 1 || (t.sample_log_steps > 0 && step % t.sample_log_steps === 0))
      ) {
        samplesLog.appendAll(sampleRecords(rewards, r, step, t.num_samples_logged));
      }
      for (const w of signalWatch.step(metrics)) warn(w);
      progress(step, progressMetrics(metrics));
      if (opts.onStep) await opts.onStep(metrics);
      if (outDir !== undefined && t.save_steps > 0 && step % t.save_steps === 0) checkpoint();
    }
  } finally {
    progress(state.global_step, undefined, true);
    // Module rewards' worker threads, with whatever abandoned work they hold (a failure before this point leaves
    // them idle and unref'd, so they never keep the process alive).
    await disposeRewards(rewards);
  }

  if (outDir !== undefined) {
    // The last step's checkpoint holds what final/ leaves out (trainer and optimizer state), so nothing is lost.
    if (state.global_step > lastSavedStep || !lastSaved) checkpoint();
    if (!interrupted) lastSaved = writeDir === undefined ? finalDir : saveFinalModel(outDir, saved);
  }
  return {
    step: state.global_step,
    interrupted,
    metrics: history[history.length - 1],
    history,
    outDir,
    checkpoint: lastSaved,
    model,
  };
}

/** Makes the current policy the KL reference, saving its weights so that a resumed run restores the same one. */
function syncReference(model: Model, refDtype: WeightsDtype, state: TrainerState, outDir: string | undefined): void {
  model.snapshotReference(refDtype);
  state.ref_sync_step = state.global_step;
  if (outDir !== undefined) {
    writeSafetensors(
      join(outDir, `reference-step-${state.global_step}.safetensors`),
      model.layout.map((x) => ({ name: x.name, shape: x.shape, data: tensorChunks(model.store('params'), x) })),
    );
  }
}
