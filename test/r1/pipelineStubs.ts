/**
 * Stub stage runners and evaluation for the pipeline tests: no model is loaded, each stage writes a marker file in
 * its directory and returns a fake checkpoint. Also runnable as a child process that hangs inside reasoning_rl, so a
 * test can SIGKILL a run in the middle of a stage:  node --import tsx pipelineStubs.ts OUT BASE
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runR1Pipeline } from '../../src/r1/pipeline.ts';
import type { StageContext, StageOutcome, StageRunner } from '../../src/r1/stage.ts';
import type { StageEval } from '../../src/r1/stageEval.ts';
import type { PipelineRecipeInput, StageName } from '../../src/r1/pipelineRecipe.ts';

/** A recipe with every stage, the arithmetic task, and a base model directory that only needs a config.json. */
export function stubRecipe(base: string): PipelineRecipeInput {
  return {
    base_model: base,
    task: 'arithmetic',
    task_train_size: 8,
    eval: { problems: 2, samples: 1 },
    stages: { cold_start_sft: {}, reasoning_rl: {}, rejection_sft: {}, all_scenarios_rl: {} },
  };
}

/** Makes a directory that passes the pipeline's base-model check. */
export function fakeBase(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{}');
  return dir;
}

export const stubEval = (pass: number): StageEval => ({
  problems: 2,
  samples: 1,
  pass_at_1: pass,
  format_rate: 1,
  language_consistency: 1,
  samples_with_words: 2,
  mean_length: 10,
  examples: [],
});

/** Calls made to the stubs. */
export interface StubLog {
  calls: { name: StageName; resume: boolean; inputModel: string; previousCheckpoint: string; sawPartial: boolean }[];
}

/** Runners that record their call, leave `partial.txt`, optionally fail or hang, and return `dir/model`. */
export function stubRunners(
  log: StubLog,
  o: { failIn?: StageName; hangIn?: StageName } = {},
): Record<StageName, StageRunner> {
  const make =
    (name: StageName): StageRunner =>
    async (ctx: StageContext): Promise<StageOutcome> => {
      const partial = join(ctx.dir, 'partial.txt');
      log.calls.push({
        name,
        resume: ctx.resume,
        inputModel: ctx.inputModel,
        previousCheckpoint: ctx.previousCheckpoint,
        sawPartial: existsSync(partial),
      });
      writeFileSync(partial, 'half done');
      if (o.failIn === name) throw new Error(`killed inside ${name}`);
      if (o.hangIn === name) {
        writeFileSync(join(ctx.dir, 'hanging'), String(process.pid));
        await new Promise(() => setInterval(() => {}, 1000));
      }
      const model = join(ctx.dir, 'model');
      mkdirSync(model, { recursive: true });
      return { checkpoint: model, interrupted: false, details: { stub: name } };
    };
  return {
    cold_start_sft: make('cold_start_sft'),
    reasoning_rl: make('reasoning_rl'),
    rejection_sft: make('rejection_sft'),
    all_scenarios_rl: make('all_scenarios_rl'),
  };
}

if (process.argv[1]?.endsWith('pipelineStubs.ts') && process.argv.length >= 4) {
  const [out, base] = process.argv.slice(2);
  const log: StubLog = { calls: [] };
  await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    runners: stubRunners(log, { hangIn: 'reasoning_rl' }),
    evaluate: async () => stubEval(0.5),
    log: () => {},
  });
}
