import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { AhaError } from '../errors.ts';
import { readJsonObjectIfExists, templateSpecialTokens, type SpecialTokenFiles } from './specialTokens.ts';

/** One chat message. `content` is usually a string; templates may also read tool_calls, reasoning_content, etc. */
export interface ChatMessage {
  role: string;
  content?: string | null | unknown[];
  [key: string]: unknown;
}

/** A tokenizer_config.json object (or the parts of one a chat template needs). */
export type TokenizerConfigLike = Record<string, unknown>;

/** Options for {@link renderChat}. */
export interface RenderChatOptions {
  /** Append the start of an assistant turn (transformers' `add_generation_prompt`). Default false. */
  addGenerationPrompt?: boolean;
  /**
   * End the text right after the last message's content so the model continues it (transformers'
   * `continue_final_message`), e.g. to prefill "<think>\n". Cannot be combined with addGenerationPrompt.
   */
  continueFinalMessage?: boolean;
  /** JSON-schema tool descriptions, passed as `tools` (null when absent, as transformers passes None). */
  tools?: unknown[] | null;
  /** Retrieval documents, passed as `documents` (null when absent). */
  documents?: unknown[] | null;
  /** Pick one of several named templates (a list-valued chat_template); default "tool_use" when tools are given
   * and the model has one, else "default". */
  templateName?: string;
  /** Extra template variables, e.g. `{ enable_thinking: false }` for Qwen3. They override the special tokens. */
  vars?: Record<string, unknown>;
  /** The clock `strftime_now` reads (Llama 3.x templates print today's date). Default: now. */
  now?: Date;
}

/** Where a chat template comes from: a model directory or a parsed tokenizer_config.json. */
export type ChatTemplateSource = string | TokenizerConfigLike;

interface ResolvedSource {
  /** The raw chat_template value: a string, or named templates. */
  template: unknown;
  files: SpecialTokenFiles;
  /** For error messages. */
  name: string;
}

function resolveSource(source: ChatTemplateSource): ResolvedSource {
  if (typeof source === 'string') {
    if (!existsSync(source) || !statSync(source).isDirectory()) throw new AhaError(`${source}: not a directory`);
    const tcPath = join(source, 'tokenizer_config.json');
    const tokenizerConfig = readJsonObjectIfExists(tcPath);
    const files: SpecialTokenFiles = {
      tokenizerConfig,
      specialTokensMap: readJsonObjectIfExists(join(source, 'special_tokens_map.json')),
      names: { tokenizerConfig: tcPath, specialTokensMap: join(source, 'special_tokens_map.json') },
    };
    // transformers >= 4.43 saves the template to chat_template.jinja, which wins over tokenizer_config.json.
    const jinjaPath = join(source, 'chat_template.jinja');
    if (existsSync(jinjaPath)) return { template: readFileSync(jinjaPath, 'utf8'), files, name: jinjaPath };
    if (!tokenizerConfig) {
      throw new AhaError(`${source}: no chat template (neither chat_template.jinja nor tokenizer_config.json exists)`);
    }
    return { template: tokenizerConfig.chat_template, files, name: tcPath };
  }
  if (source === null || typeof source !== 'object' || Array.isArray(source)) {
    throw new AhaError('renderChat: expected a model directory or a tokenizer_config object');
  }
  return { template: source.chat_template, files: { tokenizerConfig: source }, name: 'tokenizer_config' };
}

/** Named templates as `{name: template}`, or undefined when chat_template is a single string or absent. */
function namedTemplates(value: unknown, where: string): Map<string, string> | undefined {
  if (value === undefined || value === null || typeof value === 'string') return undefined;
  const out = new Map<string, string>();
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const it = item as { name?: unknown; template?: unknown } | null;
      if (!it || typeof it.name !== 'string' || typeof it.template !== 'string') {
        throw new AhaError(`${where}: chat_template[${i}] must be {"name": string, "template": string}`);
      }
      out.set(it.name, it.template);
    }
    return out;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new AhaError(`${where}: chat_template.${k} must be a string`);
      out.set(k, v);
    }
    return out;
  }
  throw new AhaError(`${where}: chat_template must be a string or a list of named templates`);
}

function pickTemplate(
  src: ResolvedSource,
  opts: { templateName?: string; tools?: unknown[] | null },
): string | undefined {
  const named = namedTemplates(src.template, src.name);
  if (!named) {
    if (opts.templateName !== undefined && opts.templateName !== 'default') {
      throw new AhaError(`${src.name}: has a single chat template, not one named ${JSON.stringify(opts.templateName)}`);
    }
    return typeof src.template === 'string' && src.template.length > 0 ? src.template : undefined;
  }
  if (opts.templateName !== undefined) {
    const t = named.get(opts.templateName);
    if (t === undefined) {
      throw new AhaError(
        `${src.name}: no chat template named ${JSON.stringify(opts.templateName)} (has ${[...named.keys()].join(', ')})`,
      );
    }
    return t;
  }
  if (opts.tools && named.has('tool_use')) return named.get('tool_use');
  if (named.has('default')) return named.get('default');
  throw new AhaError(
    `${src.name}: several chat templates (${[...named.keys()].join(', ')}) and none named "default": pass templateName`,
  );
}

/** Whether a model directory or tokenizer_config has a chat template. Malformed files still raise AhaError. */
export function hasChatTemplate(source: ChatTemplateSource): boolean {
  if (typeof source === 'string') {
    if (existsSync(join(source, 'chat_template.jinja'))) return true;
    if (!existsSync(join(source, 'tokenizer_config.json'))) return false;
  }
  const src = resolveSource(source);
  const named = namedTemplates(src.template, src.name);
  if (named) return named.size > 0;
  return typeof src.template === 'string' && src.template.length > 0;
}

/** The chat template text that {@link renderChat} would use. No template → AhaError. */
export function getChatTemplate(
  source: ChatTemplateSource,
  opts: { templateName?: string; tools?: unknown[] | null } = {},
): string {
  const src = resolveSource(source);
  const t = pickTemplate(src, opts);
  if (t === undefined) throw new AhaError(`${src.name}: no chat_template`);
  return t;
}

/** What `raise_exception(...)` in a template throws, so it can be told apart from a template bug. */
class TemplateRaised extends Error {}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's strftime for the directives chat templates use, in the C locale (English names, local time). */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%([YmdbBaAHMSyjIp%-]d?)/g, (all, d: string) => {
    switch (d) {
      case 'Y':
        return String(date.getFullYear());
      case 'y':
        return p2(date.getFullYear() % 100);
      case 'm':
        return p2(date.getMonth() + 1);
      case 'd':
        return p2(date.getDate());
      case '-d':
        return String(date.getDate());
      case 'b':
        return MONTHS[date.getMonth()].slice(0, 3);
      case 'B':
        return MONTHS[date.getMonth()];
      case 'a':
        return DAYS[date.getDay()].slice(0, 3);
      case 'A':
        return DAYS[date.getDay()];
      case 'H':
        return p2(date.getHours());
      case 'I':
        return p2(((date.getHours() + 11) % 12) + 1);
      case 'p':
        return date.getHours() < 12 ? 'AM' : 'PM';
      case 'M':
        return p2(date.getMinutes());
      case 'S':
        return p2(date.getSeconds());
      case 'j': {
        const start = new Date(date.getFullYear(), 0, 1);
        return String(Math.floor((date.getTime() - start.getTime()) / 86400000) + 1).padStart(3, '0');
      }
      case '%':
        return '%';
      default:
        return all;
    }
  });
}

function pyRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new AhaError('renderChat: messages must be an array');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw new AhaError(`renderChat: messages[${i}] must be an object`);
    if (typeof (m as { role?: unknown }).role !== 'string')
      throw new AhaError(`renderChat: messages[${i}].role must be a string`);
  });
}

/** Parsed templates by text: a training run renders thousands of prompts with one template. */
const parsedTemplates = new Map<string, Template>();

const RESERVED_VARS = new Set([
  'messages',
  'add_generation_prompt',
  'tools',
  'documents',
  'raise_exception',
  'strftime_now',
  'range',
  'namespace',
]);

/**
 * Render a chat with a model's chat template the way transformers' `apply_chat_template(tokenize=False)` does:
 * Jinja with trim_blocks/lstrip_blocks, variables `messages`, `add_generation_prompt`, `tools`, `documents`, the
 * tokenizer's special tokens (`bos_token`, `eos_token`, ...), plus `raise_exception` and `strftime_now`.
 * A template that cannot be parsed, fails, or calls raise_exception → AhaError saying why.
 * Encode the result with `addSpecialTokens: false`: the template already placed any BOS.
 */
export function renderChat(source: ChatTemplateSource, messages: ChatMessage[], opts: RenderChatOptions = {}): string {
  validateMessages(messages);
  const src = resolveSource(source);
  const text = pickTemplate(src, opts);
  if (text === undefined) throw new AhaError(`${src.name}: no chat_template`);
  if (opts.addGenerationPrompt && opts.continueFinalMessage) {
    throw new AhaError('renderChat: addGenerationPrompt and continueFinalMessage cannot both be set');
  }
  for (const k of Object.keys(opts.vars ?? {})) {
    if (RESERVED_VARS.has(k))
      throw new AhaError(`renderChat: vars.${k} is set by renderChat itself; use the option instead`);
  }

  let template = parsedTemplates.get(text);
  if (!template) {
    try {
      template = new Template(text);
    } catch (e) {
      // The parser crashes with a TypeError when the template ends inside an open block.
      const hint = e instanceof TypeError ? ' (unexpected end of template: an unclosed {% ... %} block?)' : '';
      throw new AhaError(`${src.name}: chat template does not parse${hint}: ${(e as Error).message}`);
    }
    if (parsedTemplates.size >= 64) parsedTemplates.clear();
    parsedTemplates.set(text, template);
  }

  const now = opts.now;
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range: pyRange,
    raise_exception: (message: unknown) => {
      throw new TemplateRaised(String(message));
    },
    strftime_now: (format: unknown) => strftime(now ?? new Date(), String(format)),
    ...templateSpecialTokens(src.files),
    ...(opts.vars ?? {}),
    messages,
    tools: opts.tools ?? null,
    documents: opts.documents ?? null,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
  };
  let rendered: string;
  try {
    for (const [k, v] of Object.entries(globals)) env.set(k, v);
    const result = new Interpreter(env).run(template.parsed) as { value: unknown };
    rendered = String(result.value);
  } catch (e) {
    if (e instanceof TemplateRaised) throw new AhaError(`${src.name}: chat template raised an error: ${e.message}`);
    throw new AhaError(`${src.name}: chat template failed to render: ${(e as Error).message}`);
  }

  if (opts.continueFinalMessage) {
    const last = messages[messages.length - 1];
    let final: unknown = last?.content;
    if (Array.isArray(final)) {
      const textPart = [...final].reverse().find((p) => p && typeof (p as { text?: unknown }).text === 'string') as
        { text: string } | undefined;
      if (!textPart) throw new AhaError('renderChat: continueFinalMessage needs text in the final message');
      final = textPart.text;
    }
    if (typeof final !== 'string')
      throw new AhaError('renderChat: continueFinalMessage needs a final message with string content');
    const needle = final.trim();
    const at = rendered.lastIndexOf(needle);
    if (at < 0) {
      throw new AhaError(
        'renderChat: continueFinalMessage is set but the final message does not appear in the rendered chat',
      );
    }
    rendered = rendered.slice(0, at + needle.length);
  }
  return rendered;
}
