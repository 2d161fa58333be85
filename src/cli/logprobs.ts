import type { Command } from 'commander';
import { loadPretrained } from '../model/pretrained.ts';
import { parseChatTemplateKwargs, readTokenInput } from './tokenInput.ts';
import { printLine } from './output.ts';
import { parseInteger } from './parse.ts';

export function registerLogprobs(program: Command): void {
  program
    .command('logprobs')
    .description('per-token log-probs of each input sequence (positions 1..n-1)')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .requiredOption(
      '--input <file>',
      'JSONL with {"ids":[...]}, {"text":"..."} or {"messages":[{"role","content"}...]} (rendered with the ' +
        "model's chat template) per line; each output line has ids, tokens (with a tokenizer) and logprobs of " +
        'positions 1..n-1, aligned',
    )
    .option(
      '--chat-template-kwargs <json>',
      'variables for the chat template of "messages" lines, e.g. \'{"enable_thinking": false}\' (Qwen3)',
    )
    .option('--batch <n>', 'sequences per engine call', '16')
    .option('--entropy', 'also print the entropy at each position')
    .action(
      async (o: { model: string; input: string; batch: string; entropy?: boolean; chatTemplateKwargs?: string }) => {
        const bs = parseInteger(o.batch, '--batch', { min: 1 });
        const chatTemplateKwargs = parseChatTemplateKwargs(o.chatTemplateKwargs);
        const p = loadPretrained(o.model);
        const seqs = readTokenInput(o.input, p.tokenizer, { chatTemplate: p.dir, chatTemplateKwargs });
        const tok = p.tokenizer;
        for (let i = 0; i < seqs.length; i += bs) {
          const chunk = seqs.slice(i, i + bs);
          // A single-token sequence has no log-probs; keep its line.
          const runnable = chunk.filter((s) => s.length >= 2);
          const r = runnable.length
            ? await p.model.forward(runnable, { entropy: o.entropy })
            : { logprobs: [], entropy: [] };
          let k = 0;
          for (const s of chunk) {
            // Token i's id and text sit beside its log-prob: log p(ids[i] | the tokens before it).
            const ids = s.slice(1);
            const line: Record<string, unknown> = { ids };
            if (tok) line.tokens = ids.map((id) => tok.decode([id]));
            if (s.length < 2) {
              printLine(JSON.stringify({ ...line, logprobs: [] }));
              continue;
            }
            line.logprobs = Array.from(r.logprobs[k]);
            if (o.entropy && r.entropy) line.entropy = Array.from(r.entropy[k]);
            printLine(JSON.stringify(line));
            k++;
          }
        }
      },
    );
}
