/**
 * How a benchmark question becomes the text a model continues. The default follows DeepSeek-R1's usage advice for
 * math: no system prompt, the model's own chat template, and the instruction "Please reason step by step, and put
 * your final answer within \boxed{}." after the question.
 */
import { existsSync, readFileSync } from 'node:fs';
import { AhaError } from '../errors.ts';
import { hasChatTemplate, renderChat } from '../model/chatTemplate.ts';
import { r1ZeroPrompt } from '../data/r1ZeroTemplate.ts';

/** DeepSeek-R1's instruction for math problems, appended on its own line after the question. */
export const MATH_INSTRUCTION = 'Please reason step by step, and put your final answer within \\boxed{}.';

/** The prefix R1 recommends forcing at the start of the output, so that the model does not skip its reasoning. */
export const THINK_PREFIX = '<think>\n';

/** The user message of the default template. */
export function mathUserMessage(question: string): string {
  return `${question}\n${MATH_INSTRUCTION}`;
}

/**
 * The user message of the default template on code benchmarks: EvalPlus's instruction for chat models, the problem
 * (HumanEval: a function header with its docstring) in a code block.
 */
export function codeUserMessage(question: string): string {
  const q = question.endsWith('\n') ? question : `${question}\n`;
  return `Please provide a self-contained Python script that solves the following problem in a markdown code block:\n\`\`\`python\n${q}\`\`\``;
}

/**
 * Which prompt: `default` (chat template + instruction), `r1-zero` (the paper's R1-Zero template, verbatim), or a
 * custom template: a string containing `{question}`, or `@path` to read one from a file.
 */
export type PromptTemplateSpec = 'default' | 'r1-zero' | string;

/** A resolved prompt format. */
export interface PromptFormat {
  /** What was used, for summaries: "chat", "plain", "r1-zero", "custom", "chat-message". */
  kind: 'chat' | 'plain' | 'r1-zero' | 'custom' | 'chat-message';
  /** The prompt of one question. */
  render(question: string): string;
  /**
   * Whether a tokenizer should add its special tokens (BOS) when encoding the prompt: false for chat-rendered text,
   * which already carries them, true for raw text, as transformers does for each.
   */
  addSpecialTokens: boolean;
}

/** Options of {@link makePromptFormat}. */
export interface PromptFormatOptions {
  /** Model directory whose chat template the default format uses; none → plain fallback. */
  modelDir?: string;
  /** Append {@link THINK_PREFIX} to the prompt (not done by default; see docs). Not possible for chat messages. */
  thinkPrefix?: boolean;
  /**
   * The prompt is a chat message sent to a server that applies its own template (OpenAI chat completions): the
   * default format is then just the user message, and templates are sent as the message's content.
   */
  chatMessage?: boolean;
  /** The default template's user message of a question (default {@link mathUserMessage}). */
  userMessage?: (question: string) => string;
  /** Variables for the model's chat template, e.g. `{ enable_thinking: false }` (Qwen3). */
  chatTemplateKwargs?: Record<string, unknown>;
}

/** The custom template text of a spec (`@file` read), or null for the named formats. */
function customTemplate(spec: string): string | null {
  if (spec === 'default' || spec === 'r1-zero') return null;
  let text = spec;
  if (spec.startsWith('@')) {
    const path = spec.slice(1);
    if (!existsSync(path)) throw new AhaError(`--prompt-template ${spec}: file not found`);
    text = readFileSync(path, 'utf8');
  }
  if (!text.includes('{question}')) {
    throw new AhaError(`--prompt-template: a custom template must contain {question} (or use default, r1-zero, @file)`);
  }
  return text;
}

function withThink(text: string, think: boolean): string {
  // Some templates (newer R1-Distill) already end their generation prompt with "<think>\n".
  if (!think || text.endsWith(THINK_PREFIX)) return text;
  return text + THINK_PREFIX;
}

/**
 * Resolves a prompt spec. Default with a chat template: the template applied to the single user message
 * `question + "\n" + MATH_INSTRUCTION` (or `opts.userMessage`'s) with the generation prompt; without one (a base model), the plain fallback
 * `"User: <message>\nAssistant:"`, the skeleton of R1-Zero's template.
 */
export function makePromptFormat(spec: PromptTemplateSpec, opts: PromptFormatOptions = {}): PromptFormat {
  const think = opts.thinkPrefix === true;
  if (opts.chatMessage && think) {
    throw new AhaError(
      '--think-prefix needs the prompt text: use the completions endpoint with --model DIR (its chat template), not chat completions',
    );
  }
  const custom = customTemplate(spec);
  if (custom !== null) {
    return {
      kind: 'custom',
      addSpecialTokens: true,
      render: (q) => withThink(custom.split('{question}').join(q), think),
    };
  }
  if (spec === 'r1-zero') {
    return { kind: 'r1-zero', addSpecialTokens: true, render: (q) => withThink(r1ZeroPrompt(q), think) };
  }
  const userMessage = opts.userMessage ?? mathUserMessage;
  if (opts.chatMessage) return { kind: 'chat-message', addSpecialTokens: false, render: userMessage };
  const dir = opts.modelDir;
  if (dir !== undefined && hasChatTemplate(dir)) {
    return {
      kind: 'chat',
      addSpecialTokens: false,
      render: (q) =>
        withThink(
          renderChat(dir, [{ role: 'user', content: userMessage(q) }], {
            addGenerationPrompt: true,
            vars: opts.chatTemplateKwargs,
          }),
          think,
        ),
    };
  }
  return {
    kind: 'plain',
    addSpecialTokens: true,
    render: (q) => withThink(`User: ${userMessage(q)}\nAssistant:`, think),
  };
}

/** Whether a prompt leaves a `<think>` block open, so that the completion is reasoning until `</think>`. */
export function promptOpensThink(prompt: string): boolean {
  const open = prompt.lastIndexOf('<think>');
  return open >= 0 && prompt.indexOf('</think>', open) < 0;
}
