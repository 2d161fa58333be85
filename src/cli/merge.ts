import type { Command } from 'commander';
import { mergeAdapterDir } from '../model/mergeAdapter.ts';
import { AhaError } from '../errors.ts';
import { printLine } from './output.ts';

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('merge a LoRA adapter into its base model: a plain Hugging Face checkpoint (W + alpha/r B A)')
    .requiredOption('--adapter <dir>', 'PEFT adapter directory (adapter_config.json + adapter_model.safetensors)')
    .option('--base <dir>', "base model directory (default: the adapter's base_model_name_or_path)")
    .requiredOption('--out <dir>', 'where to write the merged model')
    .option('--dtype <dtype>', 'weights on disk: bf16 or f32 (default: bf16 when the base is 16-bit, else f32)')
    .option('--overwrite', 'replace what is in --out')
    .action((o: { adapter: string; base?: string; out: string; dtype?: string; overwrite?: boolean }) => {
      if (o.dtype !== undefined && o.dtype !== 'bf16' && o.dtype !== 'f32')
        throw new AhaError(`--dtype: expected bf16 or f32 (got ${JSON.stringify(o.dtype)})`);
      const r = mergeAdapterDir({
        adapter: o.adapter,
        base: o.base,
        out: o.out,
        overwrite: o.overwrite,
        dtype: o.dtype === undefined ? undefined : o.dtype === 'bf16' ? 'BF16' : 'F32',
      });
      printLine(`merged ${r.merged} adapted matrices of ${o.adapter} into ${r.base}: ${o.out}`);
    });
}
