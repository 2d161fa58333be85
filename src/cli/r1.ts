/**
 * `aha r1 --config recipe.yaml [--out DIR] [--stage NAME] [--resume] [--set path=value ...]`: DeepSeek-R1's
 * four-stage pipeline (src/r1/pipeline.ts; every recipe field in docs/recipes.md). Ctrl-C stops at the next safe
 * point (checkpoints are written as usual) and prints the command that resumes; finished stages are never redone.
 */
import { INTERRUPTED_EXIT_CODE, withInterrupt } from '../train/interrupt.ts';
import { progressBars } from './progress.ts';
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { STAGE_NAMES } from '../r1/pipelineRecipe.ts';
import { collectSet } from '../config/overrides.ts';
import { loadR1Recipe } from '../config/recipeLoad.ts';
import { recipeHelpText } from '../config/recipeReference.ts';
import { runR1Pipeline, type PipelineResult } from '../r1/pipeline.ts';
import { formatStageEval } from '../r1/stageEval.ts';
import { logLine, printLine, shellQuote } from './output.ts';
import { agreedSignal } from '../parallel/dataParallel.ts';

/** The per-stage table: base, then each stage's pass@1, format rate, language consistency and mean length. */
export function formatPipelineTable(r: PipelineResult): string[] {
  const lines = [`r1 pipeline: ${r.outDir}`];
  if (r.base) lines.push('  ' + formatStageEval('base', r.base));
  for (const s of r.stages) {
    if (s.eval) lines.push('  ' + formatStageEval(s.name, s.eval) + (s.resumed ? '   (finished earlier)' : ''));
    else lines.push(`  ${s.name.padEnd(18)} ${s.status === 'not_run' ? 'not run' : s.status}`);
  }
  return lines;
}

/** Registers `aha r1`. */
export function registerR1(program: Command): void {
  program
    .command('r1')
    .description("DeepSeek-R1's pipeline: cold-start SFT, reasoning RL, rejection sampling + SFT, all-scenario RL")
    .requiredOption('--config <file>', 'pipeline recipe (.yaml or .json): base_model, task or dataset, stages')
    .option('--out <dir>', "run directory (default: the recipe's output_dir)")
    .option('--stage <name>', `run only this stage (${STAGE_NAMES.join(', ')}); earlier stages must be finished`)
    .option('--resume', 'continue the run: finished stages are skipped, an interrupted one continues')
    .option('--json', 'end with one JSON line of the per-stage evaluations')
    .option('--set <path=value>', 'override a recipe field (repeatable): --set eval.problems=50', collectSet)
    .addHelpText('after', () => recipeHelpText('r1'))
    .action(
      async (o: { config: string; out?: string; stage?: string; resume?: boolean; json?: boolean; set?: string[] }) => {
        const { recipe } = loadR1Recipe(o.config, o.set ?? []);
        await withInterrupt(
          { onFirst: (sig) => logLine(`\naha r1: ${sig}: stopping at the next checkpoint (${sig} again to quit now)`) },
          async ({ signal: local }) => {
            // Under mpirun every rank stops at the same point, whichever saw the signal first.
            const signal = agreedSignal(local).signal;
            const r = await runR1Pipeline(recipe, {
              outDir: o.out !== undefined ? resolve(o.out) : undefined,
              resume: o.resume,
              stage: o.stage,
              signal,
              progress: process.stderr.isTTY === true ? progressBars() : undefined,
              log: (l) => logLine(l),
            });
            for (const l of formatPipelineTable(r)) printLine(l);
            if (o.json) {
              printLine(
                JSON.stringify({
                  out: r.outDir,
                  interrupted: r.interrupted,
                  base: r.base,
                  stages: r.stages.map((s) => ({
                    name: s.name,
                    status: s.status,
                    ...(s.resumed ? { resumed: true } : {}),
                    checkpoint: s.checkpoint,
                    eval: s.eval && { ...s.eval, examples: undefined },
                  })),
                }),
              );
            }
            if (r.interrupted) {
              const parts = [
                'aha r1 --config',
                shellQuote(o.config),
                '--out',
                shellQuote(r.outDir),
                ...(o.stage ? ['--stage', o.stage] : []),
                ...(o.set ?? []).flatMap((s) => ['--set', shellQuote(s)]),
                '--resume',
              ];
              logLine(`resume with: ${parts.join(' ')}`);
              process.exit(INTERRUPTED_EXIT_CODE);
            }
          },
        );
      },
    );
}
