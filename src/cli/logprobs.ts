import type { Command } from 'commander';
import { loadPretrained } from '../model/pretrained.ts';
import { readTokenInput } from './tokenInput.ts';
import { printLine } from './output.ts';
import { parseInteger } from './parse.ts';

export function registerLogprobs(program: Command): void {
  program
    .command('logprobs')
    .description('per-token log-probs of each input sequence (positions 1..n-1)')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .requiredOption('--input <file>', 'JSONL with {"ids":[...]} or {"text":"..."} per line')
    .option('--batch <n>', 'sequences per engine call', '16')
    .option('--entropy', 'also print the entropy at each position')
    .action(async (o: { model: string; input: string; batch: string; entropy?: boolean }) => {
      const bs = parseInteger(o.batch, '--batch', { min: 1 });
      const p = loadPretrained(o.model);
      const seqs = readTokenInput(o.input, p.tokenizer);
      for (let i = 0; i < seqs.length; i += bs) {
        const chunk = seqs.slice(i, i + bs);
        // A single-token sequence has no log-probs; keep its line.
        const runnable = chunk.filter((s) => s.length >= 2);
        const r = runnable.length
          ? await p.model.forward(runnable, { entropy: o.entropy })
          : { logprobs: [], entropy: [] };
        let k = 0;
        for (const s of chunk) {
          if (s.length < 2) {
            printLine(JSON.stringify({ logprobs: [] }));
            continue;
          }
          const line: Record<string, number[]> = { logprobs: Array.from(r.logprobs[k]) };
          if (o.entropy && r.entropy) line.entropy = Array.from(r.entropy[k]);
          printLine(JSON.stringify(line));
          k++;
        }
      }
    });
}
