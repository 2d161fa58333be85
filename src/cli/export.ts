import type { Command } from 'commander';
import { AhaError } from '../errors.ts';
import { exportGguf, GGUF_EXPORT_DTYPES, type GgufExportDtype } from '../model/gguf/exportGguf.ts';
import { printLine } from './output.ts';
import { Progress } from './progress.ts';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      'write a model (or a LoRA adapter merged into its base) as one GGUF file for llama.cpp, Ollama, LM Studio',
    )
    .addHelpText(
      'after',
      '\nTokenizers: byte-level BPE (Qwen2/2.5/3, SmolLM2, Llama 3), SentencePiece-style byte-fallback BPE\n' +
        "(Llama 2, TinyLlama, Mistral 7B) and aha's character tokenizer; others are refused.",
    )
    .requiredOption('--model <dir>', 'Hugging Face model directory, or a PEFT adapter directory (merged first)')
    .option('--base <dir>', "an adapter's base model (default: the adapter's base_model_name_or_path)")
    .requiredOption('--format <format>', 'output format: gguf')
    .requiredOption('--out <file>', 'the file to write (atomically)')
    .option(
      '--dtype <dtype>',
      `matrix weights: ${GGUF_EXPORT_DTYPES.join(', ')} (default: as stored, bf16/f16, else f32); norms and biases stay f32`,
    )
    .option('--overwrite', 'replace an existing --out file')
    .action(
      async (o: { model: string; base?: string; format: string; out: string; dtype?: string; overwrite?: boolean }) => {
        if (o.format !== 'gguf') throw new AhaError(`--format: expected gguf (got ${JSON.stringify(o.format)})`);
        if (o.dtype !== undefined && !(GGUF_EXPORT_DTYPES as readonly string[]).includes(o.dtype))
          throw new AhaError(
            `--dtype: expected one of ${GGUF_EXPORT_DTYPES.join(', ')} (got ${JSON.stringify(o.dtype)})`,
          );
        let bar: Progress | undefined;
        const r = await exportGguf({
          model: o.model,
          base: o.base,
          out: o.out,
          dtype: o.dtype as GgufExportDtype | undefined,
          overwrite: o.overwrite === true,
          onTensor: (done, total) => {
            bar ??= new Progress('export', total, 'tensors');
            bar.update(done);
          },
        });
        bar?.stop();
        const merged = r.merged > 0 ? ` (${r.merged} adapted matrices merged into ${r.weightsFrom})` : '';
        const t = r.tokenizer;
        const how =
          t.addSpacePrefix === undefined
            ? `pre ${t.pre}, ${t.tokens} tokens, ${t.merges} merges`
            : `${t.addSpacePrefix ? '' : 'no '}space prefix, ${t.tokens} tokens, scores from ${t.merges} merges`;
        printLine(
          `wrote ${o.out}: ${r.arch}, ${r.dtype}, ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB${merged}; ` +
            `tokenizer ${t.kind} (${how}${t.chatTemplate ? ', chat template' : ''})`,
        );
        if (t.unmatched)
          printLine(
            `warning: ${t.unmatched} tokens can be joined by llama.cpp from two tokens that are not a merge (or their merges are not consecutive); where they occur, llama.cpp may tokenize differently from aha`,
          );
        if (r.f16Fallbacks.length > 0)
          printLine(`f16 instead of q8_0 (rows not a multiple of 32): ${r.f16Fallbacks.join(', ')}`);
      },
    );
}
