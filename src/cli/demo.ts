import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runR1ZeroDemo, showcaseAnswer } from '../demo/r1ZeroDemo.ts';
import { runR1PipelineDemo, runDistillDemo } from '../demo/pipelineDemos.ts';
import { AhaError } from '../errors.ts';
import { INTERRUPTED_EXIT_CODE, withInterrupt } from '../train/interrupt.ts';
import { printLine, logLine } from './output.ts';
import { progressBars } from './progress.ts';
import { parseInteger, parseNumber } from './parse.ts';

const SHIPPED_BASE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'demo-base');

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the R1-Zero story on a laptop CPU: GRPO with rule rewards makes a small base model reason')
    .option('--out <dir>', 'run directory', 'runs/demo')
    .option('--base <dir>', 'base model (default: the shipped models/demo-base)', SHIPPED_BASE)
    .option('--rebuild-base', 'pre-train the base model from scratch first (aha sft on the synthetic corpus)')
    .option('--steps <n>', 'GRPO steps at most', '60')
    .option('--minutes <m>', 'wall-clock budget of the RL stage', '10')
    .option('--eval-problems <n>', 'held-out problems', '200')
    .option('--eval-samples <k>', 'samples per problem for pass@1', '4')
    .option('--seed <s>', 'seed', '0')
    .option('--learning-rate <lr>', 'GRPO learning rate', '5e-5')
    .option('--resume', 'continue an interrupted run from its last checkpoint')
    .option('--json', 'end with one JSON line of the results')
    .option('--pipeline <name>', 'r1 (the four R1 stages) or distill (teacher traces into a smaller student)')
    .option(
      '--reward-model',
      'r1: the last stage also trains on general prompts scored by a random reward model the demo initialises',
    )
    .option('--teacher <dir>', 'distill: teacher checkpoint (default runs/demo/grpo/final, else the base)')
    .action((o: Record<string, string | boolean | undefined>) =>
      withInterrupt(
        { onFirst: (sig) => logLine(`\naha: ${sig}: saving a checkpoint (${sig} again to quit at once)`) },
        async ({ signal }) => {
          const progress = process.stderr.isTTY === true ? progressBars() : undefined;
          if (o.pipeline !== undefined) {
            if (o.pipeline !== 'r1' && o.pipeline !== 'distill')
              throw new AhaError(`--pipeline: expected r1 or distill (got ${o.pipeline})`);
            const common = {
              out: o.out === 'runs/demo' ? `runs/demo-${o.pipeline}` : (o.out as string),
              base: o.base as string,
              minutes: Math.min(6, parseNumber(o.minutes as string, '--minutes', { min: 0.1 })),
              evalProblems: 64,
              evalSamples: 2,
              seed: parseInteger(o.seed as string, '--seed', { min: 0 }),
              signal,
              progress,
              log: logLine,
              print: printLine,
            };
            const r =
              o.pipeline === 'r1'
                ? await runR1PipelineDemo({ ...common, rewardModel: o.rewardModel === true })
                : await runDistillDemo({
                    ...common,
                    teacher: (o.teacher as string | undefined) ?? 'runs/demo/grpo/final',
                  });
            if (r.interrupted) {
              logLine('aha: stopped; run the same command again to resume');
              process.exit(INTERRUPTED_EXIT_CODE);
            }
            return;
          }
          const r = await runR1ZeroDemo({
            out: o.out as string,
            base: o.base as string,
            rebuildBase: o.rebuildBase === true,
            steps: parseInteger(o.steps as string, '--steps', { min: 1 }),
            minutes: parseNumber(o.minutes as string, '--minutes', { min: 0.1 }),
            evalProblems: parseInteger(o.evalProblems as string, '--eval-problems', { min: 1 }),
            evalSamples: parseInteger(o.evalSamples as string, '--eval-samples', { min: 1 }),
            seed: parseInteger(o.seed as string, '--seed', { min: 0 }),
            learningRate: parseNumber(o.learningRate as string, '--learning-rate', { min: 0 }),
            resume: o.resume === true,
            progress,
            signal,
            log: logLine,
          });
          if (r.interrupted) {
            logLine(`aha: stopped after step ${r.steps}; resume with: aha demo --out ${o.out} --resume`);
            process.exit(INTERRUPTED_EXIT_CODE);
          }
          const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
          printLine('');
          printLine(
            `R1-Zero demo: ${r.steps} GRPO steps in ${(r.seconds / 60).toFixed(1)} min (held-out: ${r.before.problems} problems x ${r.before.samples} samples)`,
          );
          printLine('');
          printLine('             pass@1    format    mean length    reflective words /1000');
          for (const [name, e] of [
            ['before', r.before],
            ['after', r.after],
          ] as const)
            printLine(
              `  ${name.padEnd(9)}  ${pct(e.pass_at_1).padStart(7)}   ${pct(e.format_rate).padStart(7)}   ${e.mean_length.toFixed(1).padStart(8)} tok   ${e.reflective_per_1000_words.toFixed(1).padStart(10)}`,
            );
          printLine('');
          printLine(`run directory: ${r.runDir}${r.report ? `\nreport: ${r.report}` : ''}`);
          const shown = showcaseAnswer(r.after);
          if (shown) printLine(`\n${shown.label}:\n${shown.text}\n`);
          if (o.json)
            printLine(
              JSON.stringify({
                before: {
                  pass_at_1: r.before.pass_at_1,
                  format_rate: r.before.format_rate,
                  mean_length: r.before.mean_length,
                },
                after: {
                  pass_at_1: r.after.pass_at_1,
                  format_rate: r.after.format_rate,
                  mean_length: r.after.mean_length,
                },
                steps: r.steps,
                seconds: Math.round(r.seconds),
              }),
            );
        },
      ),
    );
}
