/**
 * SFT data lines → token sequences with loss masks. A line is one of
 *
 *  - `{"text": ...}`: language modelling, every token is a target; eos is appended;
 *  - `{"prompt": ..., "completion": ...}`: only the completion (and the eos appended to it) is a target. The two
 *    are encoded separately and concatenated, so the prompt's tokens are exactly those a generation run sees;
 *  - `{"messages": [{role, content}, ...]}`: rendered with the model's chat template; only assistant turns are
 *    targets. A turn's span is found as TRL's assistant-only loss intends it: the tokens between the rendering of
 *    the chat before the turn (with the generation prompt) and the rendering through the turn, so the span includes
 *    whatever the template closes a turn with (e.g. `<|im_end|>`). Without a chat template the chat is written in
 *    the fallback format of {@link fallbackRoleHeader};
 *  - `{"prompt": [messages], "completion": [messages]}` (TRL's conversational prompt-completion): the chat
 *    prompt + completion, with loss on the assistant turns of the completion only.
 *
 * Other keys on a line are ignored. Sequences longer than max_seq_length keep their first max_seq_length tokens.
 */
import { readJsonlObjects } from '../data/jsonl.ts';
import { AhaError } from '../errors.ts';
import { renderChat, type ChatMessage, type ChatTemplateSource } from '../model/chatTemplate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';

/** One training sequence. */
export interface SftExample {
  ids: number[];
  /**
   * Per token: 1 when the token is a target of the loss. The engine scores tokens 1..n-1, so mask[t] weighs
   * logprob index t - 1 and mask[0] only matters once packing puts the token after another one.
   */
  mask: Uint8Array;
  /** 1-based line of the data file the sequence comes from (the first one for packed rows). */
  line: number;
}

/** Which of the line formats a record is. */
export type SftRecordFormat = 'text' | 'prompt_completion' | 'messages' | 'conversational_prompt_completion';

/** What loading a data file found. */
export interface SftDatasetStats {
  /** Non-blank lines read. */
  lines: number;
  byFormat: Record<SftRecordFormat, number>;
  /** Sequences cut to max_seq_length. */
  truncated: number;
  /** Lines dropped because no target token was left (e.g. a prompt longer than max_seq_length). */
  droppedNoTargets: number;
  /** Tokens of the kept sequences. */
  tokens: number;
  /** Target tokens that carry loss (mask[t] = 1 for t >= 1). */
  targetTokens: number;
}

/** How lines are turned into tokens. */
export interface SftEncodeContext {
  tokenizer: Tokenizer;
  /** Model directory (or tokenizer_config object) whose chat template renders `messages`; none → fallback format. */
  chatTemplate?: ChatTemplateSource;
  /** Template variables such as `{ enable_thinking: false }`. */
  chatTemplateVars?: Record<string, unknown>;
  /** Longer sequences are truncated; undefined keeps everything (packing cuts rows itself). */
  maxSeqLength?: number;
  /** The clock of `strftime_now` in templates (Llama 3 prints the date); default: now. */
  now?: Date;
}

/**
 * The role header of the chat layout used when the model has no chat template ("user" → "User: "): each message
 * is this header then its content; a non-assistant message ends with "\n", an assistant message ends with the eos
 * token. Targets: an assistant message's content and its eos. A generation prompt is therefore "Assistant: ".
 * Pieces are encoded separately (no token spans a boundary); a BOS the tokenizer adds comes first.
 */
export function fallbackRoleHeader(role: string): string {
  return role.charAt(0).toUpperCase() + role.slice(1) + ': ';
}

/** Special tokens the tokenizer wraps any text in (e.g. a BOS before, an eos after with add_eos_token). */
function specialWrap(tok: Tokenizer): { before: number[]; after: number[] } {
  const probe = 'a';
  const bare = tok.encode(probe, { addSpecialTokens: false });
  const full = tok.encode(probe, { addSpecialTokens: true });
  for (let i = 0; i + bare.length <= full.length; i++) {
    if (bare.every((id, k) => full[i + k] === id))
      return { before: full.slice(0, i), after: full.slice(i + bare.length) };
  }
  return { before: [], after: [] };
}

const wrapCache = new WeakMap<Tokenizer, { before: number[]; after: number[] }>();

function eosId(tok: Tokenizer): number {
  const id = tok.eosTokenIds[0];
  if (id === undefined) throw new AhaError('the tokenizer has no eos token: SFT needs one to end sequences');
  return id;
}

function isPrefix(a: readonly number[], b: readonly number[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function withEos(ids: number[], eos: number): number[] {
  return ids.length > 0 && ids[ids.length - 1] === eos ? ids : [...ids, eos];
}

function validateMessages(value: unknown, field: string, where: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new AhaError(`${where}: "${field}" must be a non-empty array of {role, content}`);
  return value.map((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw new AhaError(`${where}: ${field}[${i}] must be an object`);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string' || msg.role === '')
      throw new AhaError(`${where}: ${field}[${i}].role must be a non-empty string`);
    if (typeof msg.content !== 'string') throw new AhaError(`${where}: ${field}[${i}].content must be a string`);
    return msg as ChatMessage;
  });
}

/** Tokens and targets of a chat; assistant turns at index >= `trainFrom` are targets. */
function encodeChat(
  messages: ChatMessage[],
  trainFrom: number,
  ctx: SftEncodeContext,
  where: string,
): { ids: number[]; mask: Uint8Array } {
  const tok = ctx.tokenizer;
  if (ctx.chatTemplate === undefined) {
    const eos = eosId(tok);
    let wrap = wrapCache.get(tok);
    if (!wrap) wrapCache.set(tok, (wrap = specialWrap(tok)));
    const ids: number[] = [...wrap.before];
    const mask: number[] = ids.map(() => 0);
    const push = (piece: number[], target: boolean) => {
      for (const id of piece) {
        ids.push(id);
        mask.push(target ? 1 : 0);
      }
    };
    messages.forEach((m, i) => {
      const target = m.role === 'assistant' && i >= trainFrom;
      push(tok.encode(fallbackRoleHeader(m.role), { addSpecialTokens: false }), false);
      push(tok.encode(m.content as string, { addSpecialTokens: false }), target);
      if (m.role === 'assistant') push([eos], target);
      else push(tok.encode('\n', { addSpecialTokens: false }), false);
    });
    return { ids, mask: Uint8Array.from(mask) };
  }
  const src = ctx.chatTemplate;
  const opts = { vars: ctx.chatTemplateVars, now: ctx.now ?? new Date() };
  const encode = (text: string) => tok.encode(text, { addSpecialTokens: false });
  const full = encode(renderChat(src, messages, opts));
  const mask = new Uint8Array(full.length);
  for (let i = Math.max(0, trainFrom); i < messages.length; i++) {
    if (messages[i].role !== 'assistant') continue;
    const before = encode(renderChat(src, messages.slice(0, i), { ...opts, addGenerationPrompt: true }));
    const through = i === messages.length - 1 ? full : encode(renderChat(src, messages.slice(0, i + 1), opts));
    if (!isPrefix(before, through) || !isPrefix(through, full)) {
      throw new AhaError(
        `${where}: the chat template renders the chat up to messages[${i}] differently once later messages follow ` +
          `(e.g. it drops earlier reasoning), so the assistant turn cannot be located; put one assistant turn per line`,
      );
    }
    mask.fill(1, before.length, through.length);
  }
  return { ids: full, mask };
}

/** Encodes one data line (untruncated). Wrong shapes raise AhaError prefixed with `where` (file:line). */
export function encodeSftRecord(
  value: Record<string, unknown>,
  ctx: SftEncodeContext,
  where: string,
): { ids: number[]; mask: Uint8Array; format: SftRecordFormat } {
  const tok = ctx.tokenizer;
  if ('messages' in value) {
    const messages = validateMessages(value.messages, 'messages', where);
    return { ...encodeChat(messages, 0, ctx, where), format: 'messages' };
  }
  if ('prompt' in value || 'completion' in value) {
    if (!('prompt' in value)) throw new AhaError(`${where}: "completion" without "prompt"`);
    if (!('completion' in value)) throw new AhaError(`${where}: "prompt" without "completion"`);
    if (Array.isArray(value.prompt) || Array.isArray(value.completion)) {
      const prompt = validateMessages(value.prompt, 'prompt', where);
      const completion = validateMessages(value.completion, 'completion', where);
      return {
        ...encodeChat([...prompt, ...completion], prompt.length, ctx, where),
        format: 'conversational_prompt_completion',
      };
    }
    if (typeof value.prompt !== 'string')
      throw new AhaError(`${where}: "prompt" must be a string or a list of messages`);
    if (typeof value.completion !== 'string') throw new AhaError(`${where}: "completion" must be a string`);
    const eos = eosId(tok);
    let wrap = wrapCache.get(tok);
    if (!wrap) wrapCache.set(tok, (wrap = specialWrap(tok)));
    // A post-processor eos (add_eos_token) belongs after the completion, not between prompt and completion.
    const promptIds = tok.encode(value.prompt, { addSpecialTokens: true });
    const p =
      wrap.after.length > 0 && promptIds.length >= wrap.after.length
        ? promptIds.slice(0, promptIds.length - wrap.after.length)
        : promptIds;
    const c = withEos(tok.encode(value.completion, { addSpecialTokens: false }), eos);
    const mask = new Uint8Array(p.length + c.length);
    mask.fill(1, p.length);
    return { ids: [...p, ...c], mask, format: 'prompt_completion' };
  }
  if ('text' in value) {
    if (typeof value.text !== 'string') throw new AhaError(`${where}: "text" must be a string`);
    const ids = withEos(tok.encode(value.text, { addSpecialTokens: true }), eosId(tok));
    return { ids, mask: new Uint8Array(ids.length).fill(1), format: 'text' };
  }
  const keys = Object.keys(value)
    .slice(0, 5)
    .map((k) => JSON.stringify(k))
    .join(', ');
  throw new AhaError(`${where}: expected "text", "prompt" + "completion", or "messages" (found ${keys || 'no keys'})`);
}

/** Target tokens of a sequence trained on its own (mask[0] has no log-prob). */
export function countTargets(mask: Uint8Array): number {
  let n = 0;
  for (let t = 1; t < mask.length; t++) n += mask[t];
  return n;
}

/** Per-logprob weights of a sequence: w[t - 1] = mask[t], the layout of `Model.forward`'s logprobs. */
export function logprobMask(mask: Uint8Array): Uint8Array {
  return mask.subarray(1);
}

/**
 * Reads an SFT data file (JSONL, formats above). A malformed line or field is an AhaError naming file:line.
 * Sequences over `maxSeqLength` are truncated (counted); sequences left with no target token are dropped (counted).
 */
export function loadSftDataset(
  path: string,
  ctx: SftEncodeContext,
): { examples: SftExample[]; stats: SftDatasetStats } {
  const records = readJsonlObjects(path);
  const stats: SftDatasetStats = {
    lines: records.length,
    byFormat: { text: 0, prompt_completion: 0, messages: 0, conversational_prompt_completion: 0 },
    truncated: 0,
    droppedNoTargets: 0,
    tokens: 0,
    targetTokens: 0,
  };
  const examples: SftExample[] = [];
  const c = { ...ctx, now: ctx.now ?? new Date() };
  for (const { line, value } of records) {
    const r = encodeSftRecord(value, c, `${path}:${line}`);
    stats.byFormat[r.format]++;
    let { ids, mask } = r;
    if (ctx.maxSeqLength !== undefined && ids.length > ctx.maxSeqLength) {
      ids = ids.slice(0, ctx.maxSeqLength);
      mask = mask.slice(0, ctx.maxSeqLength);
      stats.truncated++;
    }
    const targets = countTargets(mask);
    if (targets === 0) {
      stats.droppedNoTargets++;
      continue;
    }
    stats.tokens += ids.length;
    stats.targetTokens += targets;
    examples.push({ ids, mask, line });
  }
  return { examples, stats };
}
