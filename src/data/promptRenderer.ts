/**
 * How a question becomes the text a model continues: the one renderer behind GRPO recipes, the R1 pipeline,
 * distillation and evaluation, so that a recipe's `prompt` means the same thing everywhere.
 */
import { AhaError } from '../errors.ts';
import { renderChat, type ChatMessage } from '../model/chatTemplate.ts';
import { r1ZeroPrompt, r1ZeroShortPrompt } from './r1ZeroTemplate.ts';

/**
 * 'r1-zero' (the paper's template, verbatim), 'r1-zero-short' (its short form), 'chat' (the model's own chat
 * template over one user message, after an optional system prompt), or a template containing `{question}`.
 */
export type PromptSpec = string;

/** The named specs; anything else must be a template with `{question}`. */
export const NAMED_PROMPTS = ['r1-zero', 'r1-zero-short', 'chat'] as const;

/** A rendered prompt. */
export interface RenderedPrompt {
  /** The text the model continues. */
  text: string;
  /** Chat-rendered: the template already carries the special tokens, so a tokenizer must not add BOS again. */
  chat: boolean;
  /** For chat prompts, the messages the text was rendered from (SFT data keeps them as messages). */
  messages?: ChatMessage[];
}

export interface RenderPromptOptions {
  /** Model directory whose chat template 'chat' applies. */
  modelDir?: string;
  /** System message before the question, for 'chat'. */
  systemPrompt?: string;
  /** Extra variables of the chat template for 'chat' (transformers' chat_template_kwargs, e.g. Qwen3's enable_thinking). */
  chatTemplateKwargs?: Record<string, unknown>;
  /** Where the spec came from, for error messages (e.g. "recipe.prompt"). */
  source?: string;
}

/** Checks a spec without rendering (fails early on a template without `{question}`). */
export function checkPromptSpec(spec: PromptSpec, source = 'prompt'): void {
  if ((NAMED_PROMPTS as readonly string[]).includes(spec)) return;
  if (!spec.includes('{question}')) {
    throw new AhaError(`${source} '${spec}': expected ${NAMED_PROMPTS.join(', ')}, or a template with {question}`);
  }
}

/** Renders `question` as `spec` says. */
export function renderPrompt(spec: PromptSpec, question: string, o: RenderPromptOptions = {}): RenderedPrompt {
  switch (spec) {
    case 'r1-zero':
      return { text: r1ZeroPrompt(question), chat: false };
    case 'r1-zero-short':
      return { text: r1ZeroShortPrompt(question), chat: false };
    case 'chat': {
      if (o.modelDir === undefined) throw new AhaError(`${o.source ?? 'prompt'} 'chat' needs a local model's chat template`);
      const messages: ChatMessage[] = o.systemPrompt !== undefined ? [{ role: 'system', content: o.systemPrompt }] : [];
      messages.push({ role: 'user', content: question });
      const text = renderChat(o.modelDir, messages, { addGenerationPrompt: true, vars: o.chatTemplateKwargs });
      return { text, chat: true, messages };
    }
    default:
      checkPromptSpec(spec, o.source);
      return { text: spec.split('{question}').join(question), chat: false };
  }
}
