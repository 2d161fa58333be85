import type { Command } from 'commander';
import { loadPretrained } from '../model/pretrained.ts';
import { parseChatTemplateKwargs, readTokenInput } from './tokenInput.ts';
import { printLine } from './output.ts';
import { parseNumber, parseInteger } from './parse.ts';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample continuations of each prompt with a KV cache')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .requiredOption(
      '--input <file>',
      'JSONL prompts: {"ids":[...]}, {"text":"..."} or {"messages":[{"role","content"}...]} (rendered with the ' +
        "model's chat template and the assistant turn's opening; a last assistant message is continued)",
    )
    .option(
      '--chat-template-kwargs <json>',
      'variables for the chat template of "messages" prompts, e.g. \'{"enable_thinking": false}\' (Qwen3)',
    )
    .option('--greedy', 'argmax decoding')
    .option('--temperature <t>', 'sampling temperature', '1.0')
    .option('--top-p <p>', 'nucleus sampling mass', '1.0')
    .option('--top-k <k>', 'keep the k most likely tokens (0: off)', '0')
    .option('--max-new-tokens <n>', 'tokens to generate at most', '64')
    .option('--seed <s>', 'seed; prompt i uses seed + i', '0')
    .option('--batch <n>', 'prompts per engine call', '64')
    .action(async (o: Record<string, string | boolean>) => {
      const temperature = o.greedy ? 0 : parseNumber(o.temperature as string, '--temperature', { min: 0 });
      const topP = parseNumber(o.topP as string, '--top-p', { above: 0, max: 1 });
      const topK = parseInteger(o.topK as string, '--top-k', { min: 0 });
      const maxNewTokens = parseInteger(o.maxNewTokens as string, '--max-new-tokens', { min: 1 });
      const seed = parseInteger(o.seed as string, '--seed', { min: 0 });
      const bs = parseInteger(o.batch as string, '--batch', { min: 1 });
      const chatTemplateKwargs = parseChatTemplateKwargs(o.chatTemplateKwargs as string | undefined);
      const p = loadPretrained(o.model as string);
      const prompts = readTokenInput(o.input as string, p.tokenizer, {
        chatTemplate: p.dir,
        generation: true,
        chatTemplateKwargs,
      });
      const stop =
        p.tokenizer?.eosTokenIds ?? (p.hf.eosTokenId === null ? [] : ([] as number[]).concat(p.hf.eosTokenId));
      for (let i = 0; i < prompts.length; i += bs) {
        const chunk = prompts.slice(i, i + bs);
        const out = await p.model.generate(chunk, {
          maxNewTokens,
          temperature,
          topP,
          topK,
          stopTokenIds: [...stop],
          seeds: chunk.map((_, k) => seed + i + k),
        });
        for (const s of out) {
          const line: Record<string, unknown> = { ids: s.tokens, logprobs: s.logprobs, finish_reason: s.finishReason };
          if (p.tokenizer) line.text = p.tokenizer.decode(s.tokens);
          printLine(JSON.stringify(line));
        }
      }
    });
}
