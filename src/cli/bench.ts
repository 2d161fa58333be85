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
    .option('--json', 'end with one JSON line of the results')
    .action(async (o: Record<string, string | boolean>) => {
      const int = (k: string, name: string) => parseInteger(o[k] as string, name, { min: 1 });
      if (!o.model === !o.config) throw new AhaError('bench: give --model <dir> or --config <shape>, one of them');
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
