import type { Command } from 'commander';
import { loadPretrained } from '../model/pretrained.ts';
import { benchmarkEngine } from '../bench/engineBenchmark.ts';
import { printLine, logLine } from './output.ts';
import { parseInteger } from './parse.ts';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time a training step (forward, backward, clip, AdamW) and batched sampling on random tokens')
    .requiredOption('--model <dir>', 'Hugging Face model directory (weights are used as they are)')
    .option('--batch <n>', 'training sequences per step', '8')
    .option('--seq <n>', 'training sequence length', '256')
    .option('--gradient-checkpointing', 'train with gradient checkpointing (recompute each layer in backward)')
    .option('--gen-batch <n>', 'prompts sampled at once (0: no sampling benchmark)', '64')
    .option('--prompt-len <n>', 'prompt length', '32')
    .option('--new-tokens <n>', 'tokens sampled per prompt', '64')
    .option('--group <n>', 'completions per distinct prompt, as GRPO samples (1: all prompts distinct)', '1')
    .option('--steps <n>', 'timed training steps (median reported)', '3')
    .option('--json', 'end with one JSON line of the results')
    .action(async (o: Record<string, string | boolean>) => {
      const p = loadPretrained(o.model as string);
      const int = (k: string, name: string) => parseInteger(o[k] as string, name, { min: 1 });
      const group = int('group', '--group');
      const r = await benchmarkEngine(
        p.model,
        {
          batch: int('batch', '--batch'),
          seq: int('seq', '--seq'),
          gradientCheckpointing: o.gradientCheckpointing === true,
          genBatch: parseInteger(o.genBatch as string, '--gen-batch', { min: 0 }),
          promptLen: int('promptLen', '--prompt-len'),
          newTokens: int('newTokens', '--new-tokens'),
          steps: int('steps', '--steps'),
          group,
        },
        (m) => logLine(`bench: ${m}`),
      );
      printLine(`model            ${o.model} (${(r.params / 1e6).toFixed(1)}M parameters)`);
      printLine(`BLAS kernel      ${r.blas_kernel}, ${r.threads} threads`);
      printLine(
        `training         ${r.train_tokens_per_s.toFixed(1)} tokens/s (${r.train_step_s.toFixed(3)} s/step, ${r.train_gflops.toFixed(1)} GFLOP/s${r.gradient_checkpointing ? ', gradient checkpointing' : ''})`,
      );
      printLine(
        `sgemm probe      ${r.sgemm_gflops.toFixed(1)} GFLOP/s at the model's largest product -> training at ${(100 * r.train_fraction_of_peak).toFixed(0)}% of it`,
      );
      printLine(
        `FMA peak         ${r.fma_peak_gflops.toFixed(1)} GFLOP/s (float32, all cores) -> training at ${(100 * r.train_fraction_of_fma_peak).toFixed(0)}% of it`,
      );
      if (r.generate_s > 0)
        printLine(
          `sampling         ${r.generate_tokens_per_s.toFixed(1)} tokens/s (${r.generate_s.toFixed(2)} s${group > 1 ? `, ${group} completions per prompt` : ''})`,
        );
      printLine(
        `peak memory      ${r.train_peak_rss_mb.toFixed(0)} MB training, ${r.peak_rss_mb.toFixed(0)} MB in all`,
      );
      if (o.json) printLine(JSON.stringify(r));
    });
}
