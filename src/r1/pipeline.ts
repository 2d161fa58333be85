/**
 * `aha r1`: DeepSeek-R1's four-stage pipeline as one resumable run.
 *
 *  1. cold_start_sft: samples (the base model's own, an R1-Zero checkpoint's, or a file) kept when correct and
 *     readable, rewritten as `<think>reasoning</think> summary`; SFT of the base model on them.
 *  2. reasoning_rl: GRPO from stage 1's model with accuracy + format + language-consistency rewards.
 *  3. rejection_sft: rejection sampling from stage 2's checkpoint (correct, readable, deduplicated, capped), mixed
 *     with non-reasoning data; SFT of the BASE model on it.
 *  4. all_scenarios_rl: GRPO from stage 3's model; rule rewards for reasoning prompts, user reward modules for the
 *     rest (general prompts).
 *
 * Run directory:
 *
 *     pipeline.json               the recipe the run started with (its first invocation's; never rewritten)
 *     invocations.jsonl           one line per invocation: time, arguments, recipe and its hash
 *     base_eval.json              the base model's evaluation
 *     <stage>/                    one directory per stage: samples.jsonl, data.jsonl, report.json, sft/ or grpo/
 *     <stage>/stage_started.json  the settings the stage started with (the part of the recipe it uses, and its hash)
 *     <stage>/eval.json           pass@1 on held-out problems, format rate, language consistency, mean length
 *     <stage>/stage_done.json     the marker of a finished stage (checkpoint, evaluation, the settings it finished
 *                                 with), written atomically last
 *     summary.json                every stage so far
 *
 * A finished stage (its marker exists) is not redone on resume (summary.json: done, resumed); an unfinished one
 * continues from its own checkpoints (SFT and GRPO runs resume exactly; gathered samples are kept). A recipe that
 * changed is allowed on resume and said: against the recipe the run started with, against the settings a finished
 * stage used, and against those an unfinished stage started with (src/r1/pipelineProvenance.ts). `stage` runs one
 * stage, whose earlier stages must be finished. Stage runners and the evaluation can be replaced through the
 * options (tests use stubs).
 *
 * This file is the runner only: the stages are in src/r1/stages/, what they share in stage.ts (with the SFT and RL
 * steps in sftStep.ts and rlStep.ts), the problems and prompts in pipelineData.ts, the evaluation in stageEval.ts.
 */
import type { ProgressSink } from '../train/progress.ts';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { AhaError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { dataParallel, isWriter, writeOnce } from '../parallel/dataParallel.ts';
import { checkPipelineInputs } from './pipelineChecks.ts';
import { preparePipelineData, type PipelineData } from './pipelineData.ts';
import {
  appendInvocation,
  changedPaths,
  readManifest,
  stageSettings,
  storedRecipe,
  writeManifest,
  type StageSettings,
} from './pipelineProvenance.ts';
import {
  parsePipelineRecipe,
  pipelinePath,
  recipeStages,
  STAGE_NAMES,
  type PipelineRecipe,
  type PipelineRecipeInput,
  type StageName,
} from './pipelineRecipe.ts';
import { localGenerator, type StageContext, type StageOutcome, type StageRunner } from './stage.ts';
import { evaluateReasoning, formatStageEval, type StageEval } from './stageEval.ts';
import { generalRewards, runAllScenariosStage } from './stages/allScenarios.ts';
import { runColdStartStage } from './stages/coldStart.ts';
import { runReasoningRlStage } from './stages/reasoningRl.ts';
import { runRejectionStage } from './stages/rejectionSampling.ts';

/** The stage runners by name. */
export const DEFAULT_STAGE_RUNNERS: Record<StageName, StageRunner> = {
  cold_start_sft: runColdStartStage,
  reasoning_rl: runReasoningRlStage,
  rejection_sft: runRejectionStage,
  all_scenarios_rl: runAllScenariosStage,
};

/** stage_started.json: the settings a stage started with, and when. */
export interface StageStart extends StageSettings {
  stage: StageName;
  invocation: number;
  started_at: string;
}

/** stage_done.json: a finished stage. */
export interface StageMarker {
  stage: StageName;
  /** Relative to the run directory when inside it. */
  checkpoint: string;
  eval: StageEval | null;
  seconds: number;
  finished_at: string;
  details?: Record<string, unknown>;
  /** The part of the recipe the stage used, as the invocation that finished it had it (runs before: absent). */
  settings?: Record<string, unknown>;
  settings_hash?: string;
  /** The invocation (invocations.jsonl) that finished the stage, and the one that started it. */
  invocation?: number;
  started_invocation?: number;
  /** When the stage started with other settings than it finished with: those (stage_started.json) differ. */
  started_settings_hash?: string;
}

/** What each stage of a call did. */
export interface StageResult {
  name: StageName;
  /** done (by this call, or earlier: resumed), interrupted, not_run (not asked for, or after a stop), failed. */
  status: 'done' | 'interrupted' | 'not_run' | 'failed';
  /** Finished by an earlier invocation and reused as it is (its stage_done.json). */
  resumed?: boolean;
  checkpoint: string | null;
  eval: StageEval | null;
  seconds: number;
  details?: Record<string, unknown>;
  /** The invocation that finished the stage, and its settings' hash (stage_done.json). */
  invocation?: number;
  settings_hash?: string;
  /** Why a failed stage failed (the run stops there; --resume continues it). */
  error?: string;
}

/** Options of {@link runR1Pipeline}. */
export interface PipelineOptions {
  /** Run directory; overrides the recipe's output_dir. */
  outDir?: string;
  /** Continue a run: finished stages are skipped, an unfinished one continues. */
  resume?: boolean;
  /** Run only this stage (earlier stages of the recipe must be finished). */
  stage?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  progress?: ProgressSink;
  /** Replace stage runners (tests: stubs). */
  runners?: Partial<Record<StageName, StageRunner>>;
  /** The command line recorded in invocations.jsonl (default: this process's arguments). */
  argv?: string[];
  /** Replace the evaluation of a checkpoint (tests: stubs). */
  evaluate?: (
    modelDir: string,
    ctx: { recipe: PipelineRecipe; data: PipelineData; stage: StageName | 'base'; signal: AbortSignal },
  ) => Promise<StageEval>;
}

/** What {@link runR1Pipeline} returns. */
export interface PipelineResult {
  outDir: string;
  interrupted: boolean;
  base: StageEval | null;
  stages: StageResult[];
}

const MARKER = 'stage_done.json';
const STARTED = 'stage_started.json';

/** The marker of a finished stage, or null. */
export function readStageMarker(outDir: string, stage: StageName): StageMarker | null {
  const p = join(outDir, stage, MARKER);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as StageMarker;
  } catch (e) {
    throw new AhaError(`${p}: unreadable stage marker (${(e as Error).message}); delete it to redo the stage`);
  }
}

function abs(outDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(outDir, p);
}

function rel(outDir: string, p: string): string {
  const r = relative(resolve(outDir), resolve(p));
  return r.startsWith('..') || isAbsolute(r) ? resolve(p) : r;
}

/** Files a recipe names must exist before any work starts. */
function checkInputs(recipe: PipelineRecipe): void {
  const need = (p: string, what: string, file: string | null = null) => {
    const full = pipelinePath(recipe, p);
    if (!existsSync(file ? join(full, file) : full))
      throw new AhaError(`${recipe.source}: ${what}: ${full}${file ? ` has no ${file}` : ' not found'}`);
  };
  need(recipe.base_model, 'base_model', 'config.json');
  if (recipe.dataset) need(recipe.dataset.path, 'dataset.path');
  if (recipe.eval_dataset) need(recipe.eval_dataset.path, 'eval_dataset.path');
  const s = recipe.stages;
  if (s.cold_start_sft?.data) need(s.cold_start_sft.data, 'stages.cold_start_sft.data');
  if (s.cold_start_sft?.source_model)
    need(s.cold_start_sft.source_model, 'stages.cold_start_sft.source_model', 'config.json');
  if (s.rejection_sft?.non_reasoning_data)
    need(s.rejection_sft.non_reasoning_data, 'stages.rejection_sft.non_reasoning_data');
  if (s.all_scenarios_rl?.general_dataset)
    need(s.all_scenarios_rl.general_dataset.path, 'stages.all_scenarios_rl.general_dataset.path');
}

/**
 * Runs the pipeline (or one stage of it) into the run directory; see the file comment. Everything that can be
 * checked is checked before any stage starts: the recipe, its files, reward modules, the run directory's state.
 */
export async function runR1Pipeline(
  recipeIn: PipelineRecipe | PipelineRecipeInput,
  o: PipelineOptions = {},
): Promise<PipelineResult> {
  const recipe: PipelineRecipe =
    'baseDir' in recipeIn ? (recipeIn as PipelineRecipe) : parsePipelineRecipe(recipeIn, 'recipe');
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const outDir = resolve(o.outDir ?? (recipe.output_dir !== undefined ? pipelinePath(recipe, recipe.output_dir) : ''));
  if (o.outDir === undefined && recipe.output_dir === undefined)
    throw new AhaError(`${recipe.source}: no run directory: give --out DIR or output_dir`);
  const stages = recipeStages(recipe);
  let only: StageName | undefined;
  if (o.stage !== undefined) {
    if (!(STAGE_NAMES as readonly string[]).includes(o.stage))
      throw new AhaError(`--stage ${o.stage}: unknown stage (stages: ${STAGE_NAMES.join(', ')})`);
    only = o.stage as StageName;
    if (!stages.includes(only))
      throw new AhaError(`--stage ${o.stage}: ${recipe.source} has no such stage (it has ${stages.join(', ')})`);
  }
  checkInputs(recipe);
  const manifest = join(outDir, 'pipeline.json');
  const started = existsSync(manifest);
  if (started && !o.resume && only === undefined) {
    throw new AhaError(
      `${outDir}: already holds an r1 run: pass --resume to continue it (finished stages are skipped), or choose another output directory`,
    );
  }
  if (!started && o.resume) throw new AhaError(`${outDir}: no r1 run to resume (no pipeline.json)`);

  // Which checkpoint each stage starts from, and whether the stages it needs are finished.
  const markers = new Map<StageName, StageMarker | null>(stages.map((s) => [s, readStageMarker(outDir, s)]));
  const baseModel = pipelinePath(recipe, recipe.base_model);
  const runList = only ? [only] : stages;
  for (const s of runList) {
    const stageDir = join(outDir, s);
    const partial = !markers.get(s) && existsSync(stageDir) && readdirSync(stageDir).length > 0;
    if (partial && !o.resume)
      throw new AhaError(`${stageDir}: stage ${s} was interrupted: pass --resume to continue it`);
  }
  if (only) {
    const missing = stages.slice(0, stages.indexOf(only)).filter((s) => !markers.get(s));
    if (missing.length > 0)
      throw new AhaError(`--stage ${only}: needs ${missing.join(', ')} finished first (run them, or the whole recipe)`);
  }

  const data = await preparePipelineData(recipe);
  if (recipe.stages.all_scenarios_rl) await generalRewards(recipe, recipe.stages.all_scenarios_rl); // modules load now, not hours later
  await checkPipelineInputs(
    recipe,
    data,
    runList.filter((s) => !markers.get(s)),
  );
  mkdirSync(outDir, { recursive: true });
  const now = new Date().toISOString();
  const stored = storedRecipe(recipe);
  const original = readManifest(outDir);
  if (original) {
    // A changed recipe is allowed (e.g. more steps for a stage not run yet), but said, against the recipe the run
    // started with (pipeline.json); finished stages keep theirs.
    const changed = changedPaths(original.recipe, stored).filter((k) => k !== 'source');
    if (changed.length > 0)
      log(
        `r1: note: the recipe differs from the one this run started with (pipeline.json, ${original.created ?? original.updated ?? 'first invocation'}) in ${changed.join(', ')}; finished stages are not redone`,
      );
  }
  // Under mpirun rank 0 alone writes the run's files, each rank having read them before and reading them after
  // (writeOnce); sampling is split across the ranks (localGenerator), training is data-parallel.
  const invocation = writeOnce(() => {
    if (!original) writeManifest(outDir, stored, now);
    return appendInvocation(outDir, {
      at: now,
      argv: o.argv ?? process.argv.slice(2),
      resume: o.resume === true,
      stage: o.stage ?? null,
      recipe: stored,
      existing: started,
    }).invocation;
  });
  const settingsNow = new Map(stages.map((s) => [s, stageSettings(stored, s)]));
  for (const s of stages) {
    const m = markers.get(s);
    if (!m?.settings || m.settings_hash === settingsNow.get(s)!.settings_hash) continue;
    log(
      `r1: note: ${s} finished${m.invocation ? ` in invocation ${m.invocation}` : ''} with settings other than the recipe's now (its stage_done.json vs the recipe: ${changedPaths(m.settings, settingsNow.get(s)!.settings).join(', ')}); it is kept as it is`,
    );
  }

  const signal = o.signal ?? new AbortController().signal;
  const evaluate =
    o.evaluate ??
    (async (modelDir: string, c: { recipe: PipelineRecipe; data: PipelineData; signal: AbortSignal }) => {
      const { generator } = localGenerator(modelDir, c.data.chat);
      const e = c.recipe.eval;
      return evaluateReasoning({
        generator,
        problems: c.data.eval,
        verify: c.data.verify,
        language: c.recipe.language,
        samples: e.samples,
        temperature: e.temperature,
        topP: e.top_p,
        maxNewTokens: e.max_new_tokens ?? c.recipe.max_new_tokens,
        seed: c.recipe.seed,
        signal: c.signal,
      });
    });

  const results: StageResult[] = [];
  const summaryPath = join(outDir, 'summary.json');
  let base: StageEval | null = null;
  const baseEvalPath = join(outDir, 'base_eval.json');
  const summaryText = () =>
    JSON.stringify({ base, stages: results, invocation, updated: new Date().toISOString() }, null, 2) + '\n';
  const writeSummary = () => writeOnce(() => writeFileAtomic(summaryPath, summaryText()));
  if (existsSync(baseEvalPath)) base = JSON.parse(readFileSync(baseEvalPath, 'utf8')) as StageEval;
  else if (recipe.eval.evaluate_base && (only === undefined || only === stages[0]) && !signal.aborted) {
    log(`r1: evaluating the base model ${baseModel} on ${data.eval.length} held-out problems x ${recipe.eval.samples}`);
    try {
      base = await evaluate(baseModel, { recipe, data, stage: 'base', signal });
      writeOnce(() => writeFileAtomic(baseEvalPath, JSON.stringify(base, null, 2) + '\n'));
      log(`r1: ${formatStageEval('base', base)}`);
    } catch (e) {
      if (!signal.aborted) throw e;
    }
  }

  let previous = baseModel;
  let interrupted = false;
  for (const name of stages) {
    const marker = markers.get(name) ?? null;
    if (marker) {
      previous = abs(outDir, marker.checkpoint);
      results.push({
        name,
        status: 'done',
        resumed: true,
        checkpoint: previous,
        eval: marker.eval,
        seconds: marker.seconds,
        details: marker.details,
        ...(marker.invocation !== undefined ? { invocation: marker.invocation } : {}),
        ...(marker.settings_hash !== undefined ? { settings_hash: marker.settings_hash } : {}),
      });
      if (runList.includes(name))
        log(`r1: ${name} already finished (${join(outDir, name, MARKER)}); reused, not redone`);
      continue;
    }
    if (!runList.includes(name) || interrupted) {
      results.push({ name, status: 'not_run', checkpoint: null, eval: null, seconds: 0 });
      continue;
    }
    if (signal.aborted) {
      interrupted = true;
      results.push({ name, status: 'not_run', checkpoint: null, eval: null, seconds: 0 });
      continue;
    }
    const dir = join(outDir, name);
    const resume = existsSync(dir) && readdirSync(dir).length > 0;
    mkdirSync(dir, { recursive: true });
    const t0 = Date.now();
    log(`r1: stage ${name}${resume ? ' (continuing)' : ''}`);
    const settings = settingsNow.get(name)!;
    const startPath = join(dir, STARTED);
    let start = existsSync(startPath) ? (JSON.parse(readFileSync(startPath, 'utf8')) as StageStart) : null;
    if (start && start.settings_hash !== settings.settings_hash)
      log(
        `r1: warning: ${name}: continuing with settings other than those it started with in invocation ${start.invocation} (its stage_started.json vs the recipe: ${changedPaths(start.settings, settings.settings).join(', ')}); work done so far is kept`,
      );
    if (!start && !resume) {
      start = { stage: name, invocation, started_at: new Date().toISOString(), ...settings };
      writeOnce(() => writeFileAtomic(startPath, JSON.stringify(start, null, 2) + '\n'));
    }
    const ctx: StageContext = {
      name,
      dir,
      recipe,
      data,
      resume,
      signal,
      log,
      progress: o.progress,
      baseModel,
      previousCheckpoint: previous,
      inputModel: name === 'rejection_sft' ? baseModel : name === 'cold_start_sft' ? baseModel : previous,
    };
    const runner = o.runners?.[name] ?? DEFAULT_STAGE_RUNNERS[name];
    const stopped = () => {
      interrupted = true;
      results.push({ name, status: 'interrupted', checkpoint: null, eval: null, seconds: (Date.now() - t0) / 1000 });
    };
    let outcome: StageOutcome;
    try {
      outcome = await runner(ctx);
      // Rank 0 has written the stage's checkpoint when every rank goes on to read it.
      dataParallel()?.barrier();
    } catch (e) {
      // An abort surfaces as the signal's reason from whatever was sampling: the work so far is on disk.
      if (signal.aborted) {
        stopped();
        continue;
      }
      // summary.json says which stage failed and why, not only the terminal.
      results.push({
        name,
        status: 'failed',
        checkpoint: null,
        eval: null,
        seconds: (Date.now() - t0) / 1000,
        error: (e as Error).message,
      });
      // No collective here: the error may be this rank's alone (the job ends with it).
      if (isWriter()) writeFileAtomic(summaryPath, summaryText());
      throw e;
    }
    if (outcome.interrupted || signal.aborted) {
      stopped();
      continue;
    }
    log(`r1: ${name}: evaluating ${outcome.checkpoint}`);
    let ev: StageEval;
    try {
      ev = await evaluate(outcome.checkpoint, { recipe, data, stage: name, signal });
    } catch (e) {
      if (signal.aborted) {
        stopped();
        continue;
      }
      throw e;
    }
    writeOnce(() => writeFileAtomic(join(dir, 'eval.json'), JSON.stringify(ev, null, 2) + '\n'));
    const seconds = (Date.now() - t0) / 1000;
    const m: StageMarker = {
      stage: name,
      checkpoint: rel(outDir, outcome.checkpoint),
      eval: ev,
      seconds,
      finished_at: new Date().toISOString(),
      details: outcome.details,
      ...settings,
      invocation,
      ...(start ? { started_invocation: start.invocation } : {}),
      ...(start && start.settings_hash !== settings.settings_hash
        ? { started_settings_hash: start.settings_hash }
        : {}),
    };
    writeOnce(() => writeFileAtomic(join(dir, MARKER), JSON.stringify(m, null, 2) + '\n'));
    log(`r1: ${formatStageEval(name, ev)}`);
    previous = outcome.checkpoint;
    results.push({
      name,
      status: 'done',
      checkpoint: outcome.checkpoint,
      eval: ev,
      seconds,
      details: outcome.details,
      invocation,
      settings_hash: settings.settings_hash,
    });
    writeSummary();
  }
  writeSummary();
  return { outDir, interrupted, base, stages: results };
}
