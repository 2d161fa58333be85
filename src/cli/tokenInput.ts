import { readJsonlObjects } from '../data/jsonl.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { renderChat, type ChatMessage, type ChatTemplateSource } from '../model/chatTemplate.ts';
import { AhaError } from '../errors.ts';

/** How {@link readTokenInput} turns lines into tokens. */
export interface TokenInputOptions {
  /** Add the tokenizer's special tokens (BOS) to `text` lines. Default true. */
  addSpecialTokens?: boolean;
  /** Where `messages` lines find their chat template: the model directory (or a tokenizer_config object). */
  chatTemplate?: ChatTemplateSource;
  /**
   * `messages` lines end with the opening of an assistant turn (transformers' add_generation_prompt), or, when
   * their last message is the assistant's, continue that message (a prefill). Default false: the conversation as
   * it is, for scoring it.
   */
  generation?: boolean;
  /** Template variables, e.g. `{ enable_thinking: false }` for Qwen3 (transformers' chat_template_kwargs). */
  chatTemplateKwargs?: Record<string, unknown>;
}

/**
 * Reads `{"ids":[...]}`, `{"text":"..."}` or `{"messages":[{"role","content"}...]}` lines into token sequences;
 * messages are rendered with the model's chat template (optionally with the line's `tools`) and encoded without
 * added special tokens, since the template places them.
 */
export function readTokenInput(path: string, tokenizer: Tokenizer | undefined, o: TokenInputOptions = {}): number[][] {
  return readJsonlObjects(path).map(({ line, value }) => {
    if (Array.isArray(value.ids)) {
      if (!value.ids.every((x) => Number.isInteger(x)))
        throw new AhaError(`${path}:${line}: "ids" must be an array of integers`);
      return value.ids as number[];
    }
    if (typeof value.text === 'string') {
      if (!tokenizer)
        throw new AhaError(`${path}:${line}: "text" input needs a model directory with tokenizer.json (or give "ids")`);
      return tokenizer.encode(value.text, { addSpecialTokens: o.addSpecialTokens ?? true });
    }
    if (value.messages !== undefined) {
      if (!tokenizer || o.chatTemplate === undefined)
        throw new AhaError(`${path}:${line}: "messages" input needs a model directory with tokenizer.json`);
      if (!Array.isArray(value.messages) || value.messages.length === 0)
        throw new AhaError(`${path}:${line}: "messages" must be a non-empty array of {"role", "content"} objects`);
      const messages = value.messages as ChatMessage[];
      if (value.tools !== undefined && !Array.isArray(value.tools))
        throw new AhaError(`${path}:${line}: "tools" must be an array`);
      const prefill = o.generation === true && messages[messages.length - 1]?.role === 'assistant';
      let rendered: string;
      try {
        rendered = renderChat(o.chatTemplate, messages, {
          addGenerationPrompt: o.generation === true && !prefill,
          continueFinalMessage: prefill,
          tools: (value.tools as unknown[] | undefined) ?? null,
          vars: o.chatTemplateKwargs,
        });
      } catch (e) {
        if (e instanceof AhaError) throw new AhaError(`${path}:${line}: ${e.message.replace(/^renderChat: /, '')}`);
        throw e;
      }
      return tokenizer.encode(rendered, { addSpecialTokens: false });
    }
    throw new AhaError(`${path}:${line}: expected "ids" (array of token ids), "text" or "messages"`);
  });
}

/** `--chat-template-kwargs` as an object; anything but a JSON object is an AhaError showing the expected form. */
export function parseChatTemplateKwargs(v: string | undefined): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new AhaError(`--chat-template-kwargs: expected a JSON object, e.g. '{"enable_thinking": false}', got '${v}'`);
  return parsed as Record<string, unknown>;
}
