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
    .option('--dtype <dtype>', "weights on disk: f32, bf16 or f16 (default: the base's own type)")
    .option('--overwrite', 'replace what is in --out')
    .action((o: { adapter: string; base?: string; out: string; dtype?: string; overwrite?: boolean }) => {
      const dtypes = { f32: 'F32', bf16: 'BF16', f16: 'F16' } as const;
      if (o.dtype !== undefined && !(o.dtype in dtypes))
        throw new AhaError(`--dtype: expected f32, bf16 or f16 (got ${JSON.stringify(o.dtype)})`);
      const r = mergeAdapterDir({
        adapter: o.adapter,
        base: o.base,
        out: o.out,
        overwrite: o.overwrite,
        dtype: o.dtype === undefined ? undefined : dtypes[o.dtype as keyof typeof dtypes],
      });
      printLine(`merged ${r.merged} adapted matrices of ${o.adapter} into ${r.base}: ${o.out}`);
    });
}
