import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { collectSet } from '../config/overrides.ts';
import { loadGrpoRecipe } from '../config/recipeLoad.ts';
import { recipeHelpText } from '../config/recipeReference.ts';
import { grpoTrain } from '../rl/grpoTrainer.ts';
import { INTERRUPTED_EXIT_CODE, withInterrupt } from '../train/interrupt.ts';
import { logLine, shellQuote } from './output.ts';
import { progressBars } from './progress.ts';

/**
 * `aha grpo --config recipe.yaml [--out DIR] [--resume] [--set path=value ...]`: a GRPO run from a recipe
 * (src/rl/recipe.ts; every field in docs/recipes.md).
 * Ctrl-C finishes or abandons the current step, saves a checkpoint, prints the command that resumes, exits 130;
 * a second Ctrl-C exits at once (checkpoints are written atomically, so none is left half-written).
 */
export function registerGrpo(program: Command): void {
  program
    .command('grpo')
    .description('train with GRPO (R1-Zero style RL from verifiable rewards) as a recipe file says')
    .requiredOption('--config <file>', 'recipe (.yaml or .json): model, dataset, prompt, rewards, grpo, training')
    .option('--out <dir>', "run directory (default: the recipe's output_dir)")
    .option('--resume', 'continue from the latest checkpoint in the run directory')
    .option('--set <path=value>', 'override a recipe field (repeatable): --set training.max_steps=10', collectSet)
    .addHelpText('after', () => recipeHelpText('grpo'))
    .action(async (o: { config: string; out?: string; resume?: boolean; set?: string[] }) => {
      const { recipe, text } = loadGrpoRecipe(o.config, o.set ?? []);
      const outDir =
        o.out !== undefined
          ? resolve(o.out)
          : recipe.output_dir !== undefined
            ? resolve(recipe.baseDir, recipe.output_dir)
            : undefined;
      if (outDir === undefined)
        throw new AhaError(`${o.config}: no run directory: give --out DIR or output_dir in the recipe`);
      await withInterrupt(
        {
          onFirst: (sig) =>
            logLine(
              `\naha grpo: ${sig}: finishing the current step and saving a checkpoint (${sig} again to quit now)`,
            ),
        },
        async (interrupt) => {
          const r = await grpoTrain(recipe, {
            outDir,
            resume: o.resume,
            signal: interrupt.signal,
            // A terminal gets a live bar with the metrics; a log one line per logging_steps steps.
            progress: progressBars({ every: recipe.training.logging_steps }),
            recipeText: text,
          });
          if (r.interrupted) {
            logLine(`aha grpo: checkpoint at step ${r.step}: ${r.checkpoint}`);
            const sets = (o.set ?? []).map((s) => ` --set ${shellQuote(s)}`).join('');
            logLine(
              `resume with: aha grpo --config ${shellQuote(o.config)} --out ${shellQuote(outDir)}${sets} --resume`,
            );
            process.exit(INTERRUPTED_EXIT_CODE);
          }
          logLine(`aha grpo: done, ${r.step} steps; model in ${r.checkpoint}`);
        },
      );
    });
}
