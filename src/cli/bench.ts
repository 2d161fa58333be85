import type { Command } from 'commander';
import { loadPretrained } from '../model/pretrained.ts';
import { randomModel } from '../bench/randomModel.ts';
import { MODEL_SHAPES } from '../model/modelShapes.ts';
import { resolveLora } from '../engine/lora.ts';
import type { WeightsDtype } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { benchmarkEngine } from '../bench/engineBenchmark.ts';
import { printLine, logLine } from './output.ts';
import { parseInteger } from './parse.ts';
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { dataParallel, worldSize } from '../parallel/dataParallel.ts';
import {
  benchmarkDataParallelStep,
  formatDataParallelTable,
  type DataParallelStepResult,
} from '../bench/dataParallelBenchmark.ts';

/** Set by `aha bench --ranks` for the runs it starts: time the data-parallel step even at one rank. */
const DATA_PARALLEL_ENV = 'AHA_BENCH_DATA_PARALLEL';

/**
 * `aha bench --ranks N`: this command at 1 and N ranks under mpirun (each rank cores / ranks threads), one table.
 */
function benchAtRanks(ranks: number, json: boolean): void {
  const args = process.argv
    .slice(2)
    .filter((a, i, all) => a !== '--ranks' && all[i - 1] !== '--ranks' && !a.startsWith('--ranks='));
  const cores = availableParallelism();
  const load = `load average ${loadavg()[0].toFixed(2)} on ${cores} cores at the start`;
  const results: DataParallelStepResult[] = [];
  for (const n of ranks === 1 ? [1] : [1, ranks]) {
    logLine(`bench: mpirun -np ${n}`);
    const r = spawnSync(
      'mpirun',
      ['-np', String(n), '--oversubscribe', '--bind-to', 'none', process.execPath, process.argv[1], ...args, '--json'],
      { encoding: 'utf8', env: { ...process.env, [DATA_PARALLEL_ENV]: '1' } },
    );
    if (r.error) throw new AhaError('bench --ranks: needs Open MPI (apt-get install openmpi-bin libopenmpi-dev)');
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (r.status !== 0 || !line)
      throw new AhaError(`bench --ranks: mpirun -np ${n} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    results.push(JSON.parse(line) as DataParallelStepResult);
  }
  for (const l of formatDataParallelTable(results, load)) printLine(l);
  if (json) printLine(JSON.stringify({ load: loadavg()[0], cores, results }));
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time a training step (forward, backward, clip, AdamW) and batched sampling on random tokens')
    .option('--model <dir>', 'Hugging Face model directory (weights are used as they are)')
    .option(
      '--config <shape>',
      `random weights in a real model's shape: ${Object.keys(MODEL_SHAPES).join(', ')}, or a config.json`,
    )
    .option(
      '--weights <dtype>',
      'weights in memory: f32, bf16 or f16 (16-bit weights are frozen: train them with --lora-r)',
      'f32',
    )
    .option('--lora-r <r>', 'train LoRA adapters of rank r on all linear layers (alpha 2r) instead of every weight')
    .option('--batch <n>', 'training sequences per step (0: no training benchmark)', '8')
    .option('--seq <n>', 'training sequence length', '256')
    .option('--gradient-checkpointing', 'train with gradient checkpointing (recompute each layer in backward)')
    .option('--gen-batch <n>', 'prompts sampled at once (0: no sampling benchmark)', '64')
    .option('--prompt-len <n>', 'prompt length', '32')
    .option('--new-tokens <n>', 'tokens sampled per prompt', '64')
    .option('--kv-cache <dtype>', 'the sampling KV cache: f32, bf16 or f16 (16-bit: rounded keys and values)', 'f32')
    .option('--group <n>', 'completions per distinct prompt, as GRPO samples (1: all prompts distinct)', '1')
    .option('--steps <n>', 'timed training steps after a warm-up step (median reported); 0: time the first step', '3')
    .option(
      '--ranks <n>',
      'time a data-parallel training step at 1 and n ranks under mpirun, and the gradient all-reduce (under mpirun itself: at its ranks)',
    )
    .option('--json', 'end with one JSON line of the results')
    .action(async (o: Record<string, string | boolean>) => {
      const int = (k: string, name: string) => parseInteger(o[k] as string, name, { min: 1 });
      if (!o.model === !o.config) throw new AhaError('bench: give --model <dir> or --config <shape>, one of them');
      if (o.ranks !== undefined && worldSize() === 1 && !process.env[DATA_PARALLEL_ENV])
        return benchAtRanks(parseInteger(o.ranks as string, '--ranks', { min: 1 }), o.json === true);
      const dataParallelStep = worldSize() > 1 || process.env[DATA_PARALLEL_ENV] !== undefined;
      const weights = o.weights as string;
      if (!['f32', 'bf16', 'f16'].includes(weights))
        throw new AhaError(`--weights: expected f32, bf16 or f16 (got ${JSON.stringify(weights)})`);
      const kvCache = o.kvCache as string;
      if (!['f32', 'bf16', 'f16'].includes(kvCache))
        throw new AhaError(`--kv-cache: expected f32, bf16 or f16 (got ${JSON.stringify(kvCache)})`);
      const loraR = o.loraR === undefined ? 0 : parseInteger(o.loraR as string, '--lora-r', { min: 1 });
      const batch = parseInteger(o.batch as string, '--batch', { min: 0 });
      if (weights !== 'f32' && !loraR && batch > 0)
        throw new AhaError(`--weights ${weights}: 16-bit weights are frozen; add --lora-r to train adapters on them`);
      const lora = loraR ? resolveLora({ r: loraR, lora_alpha: 2 * loraR, target_modules: 'all-linear' }) : undefined;
      const memory = {
        training: batch > 0,
        gradientCheckpointing: o.gradientCheckpointing === true,
        batchTokens: batch * int('seq', '--seq'),
      };
      const model = o.config
        ? randomModel(o.config as string, { weights: weights as WeightsDtype, lora, memory })
        : loadPretrained(o.model as string, { weights: weights as WeightsDtype, lora, memory }).model;
      const p = { model };
      if (dataParallelStep) {
        if (batch < 1) throw new AhaError('bench --ranks: needs a training batch (--batch 1 or more)');
        // Under mpirun: the training step only, each rank its share of --batch; rank 0 prints.
        const r = await benchmarkDataParallelStep(
          model,
          { batch, seq: int('seq', '--seq'), steps: parseInteger(o.steps as string, '--steps', { min: 0 }) },
          dataParallel(),
        );
        if (o.json) printLine(JSON.stringify(r));
        else for (const l of formatDataParallelTable([r])) printLine(l);
        return;
      }
      const group = int('group', '--group');
      const r = await benchmarkEngine(
        p.model,
        {
          batch,
          seq: int('seq', '--seq'),
          gradientCheckpointing: o.gradientCheckpointing === true,
          genBatch: parseInteger(o.genBatch as string, '--gen-batch', { min: 0 }),
          promptLen: int('promptLen', '--prompt-len'),
          newTokens: int('newTokens', '--new-tokens'),
          steps: parseInteger(o.steps as string, '--steps', { min: 0 }),
          group,
          kvCacheDtype: kvCache as 'f32' | 'bf16' | 'f16',
        },
        (m) => logLine(`bench: ${m}`),
      );
      printLine(
        `model            ${o.model ?? o.config} (${(r.params / 1e6).toFixed(1)}M parameters, ${weights} weights${lora ? `, LoRA r=${loraR}: ${(model.numTrainable / 1e6).toFixed(2)}M trained` : ''})`,
      );
      printLine(`BLAS kernel      ${r.blas_kernel}, ${r.threads} threads`);
      if (r.train_step_s > 0)
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
          `sampling         ${r.generate_tokens_per_s.toFixed(1)} tokens/s (${r.generate_s.toFixed(2)} s${group > 1 ? `, ${group} completions per prompt` : ''}${kvCache !== 'f32' ? `, ${kvCache} KV cache` : ''})`,
        );
      printLine(
        `peak memory      ${r.train_peak_rss_mb.toFixed(0)} MB training, ${r.peak_rss_mb.toFixed(0)} MB in all`,
      );
      if (o.json) printLine(JSON.stringify(r));
    });
}
