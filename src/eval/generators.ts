/**
 * Where evaluation samples come from: the local engine (a model directory loaded into the native engine) or any
 * OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, hosted APIs). evaluate() sees only the `Generator`
 * interface, so scoring is the same whichever produced the text.
 */
import type { Model } from '../engine/model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { fnv1a32 } from '../data/rng.ts';
import { AhaError } from '../errors.ts';

/** One sampled completion. */
export interface Generation {
  text: string;
  /** Completion length in tokens (stop token included); null when the source cannot say (see OpenAiGenerator). */
  tokens: number | null;
  /** 'stop', 'length', or what the server said; 'prompt_too_long' when the prompt left no room to generate. */
  finishReason: string;
}

/** Sampling settings of one `generate` call. */
export interface GenerateOptions {
  /** Samples per prompt. */
  n: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Run seed; sample j of prompt i uses {@link sampleSeed}(seed, ids[i], j). */
  seed: number;
  /** A stable name per prompt (the problem id): seeds and error messages use it. Default: the prompt's index. */
  ids?: readonly string[];
  /**
   * Called (and awaited) as soon as all n samples of prompt i are done, so that callers can save work
   * incrementally; an error it throws ends the call with that error.
   */
  onPrompt?: (i: number, outputs: Generation[]) => void | Promise<void>;
  /** Stops the call: no new work starts, and it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A source of samples. Results are prompt-major: `result[i][j]` is sample j of prompt i. */
export interface Generator {
  /** What generates, for summaries and errors (a model directory, or "model at URL"). */
  readonly description: string;
  generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]>;
}

/**
 * The 32-bit sampling seed of sample `sample` of a problem: a function of the problem's id, not of its position in
 * a batch, so a resumed or re-batched run samples exactly what one uninterrupted run would.
 */
export function sampleSeed(seed: number, problemId: string, sample: number): number {
  return fnv1a32(`eval:${seed}:${problemId}:${sample}`);
}

function checkOptions(prompts: readonly string[], o: GenerateOptions): void {
  if (!Number.isInteger(o.n) || o.n < 1)
    throw new AhaError(`samples per prompt must be a positive integer (got ${o.n})`);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new AhaError(`max new tokens must be a positive integer (got ${o.maxNewTokens})`);
  if (o.ids !== undefined && o.ids.length !== prompts.length)
    throw new AhaError(`generate: ${o.ids.length} ids for ${prompts.length} prompts`);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

// ---------------------------------------------------------------------------------------------------------------
// Local engine

/** Options of {@link LocalEngineGenerator}. */
export interface LocalEngineGeneratorOptions {
  model: Model;
  tokenizer: Tokenizer;
  /** Default: the tokenizer's eos ids. */
  stopTokenIds?: readonly number[];
  /** Sequences per engine call. Default: as many as fit {@link DEFAULT_KV_BUDGET_BYTES} of KV cache, 1..64. */
  batchSize?: number;
  /** Add the tokenizer's special tokens (BOS) when encoding; false for chat-rendered prompts (PromptFormat). */
  addSpecialTokens?: boolean;
  topK?: number;
  /** For `description`. */
  name?: string;
}

/** KV-cache memory one engine call may take by default. */
export const DEFAULT_KV_BUDGET_BYTES = 4 * 2 ** 30;

/** Sequences per engine call whose float32 KV cache (keys and values, every layer) fits `budget`. */
export function kvBatchSize(
  model: Model,
  maxNewTokens: number,
  longestPrompt: number,
  budget = DEFAULT_KV_BUDGET_BYTES,
): number {
  const c = model.config;
  const len = Math.min(c.maxPositionEmbeddings, longestPrompt + maxNewTokens);
  const perSeq = 2 * c.numLayers * c.numKvHeads * c.headDim * len * 4;
  return Math.max(1, Math.min(64, Math.floor(budget / perSeq)));
}

/**
 * Samples with the native engine. Each (prompt, sample) pair is one sequence with its own seed
 * ({@link sampleSeed}), so the texts do not depend on batching. Generation stops at an eos id, after
 * `maxNewTokens`, or at the model's max_position_embeddings, whichever comes first (the engine's rule). A prompt
 * that already fills the context gets empty samples with finish reason 'prompt_too_long' rather than ending the run.
 */
export class LocalEngineGenerator implements Generator {
  readonly description: string;
  private readonly stop: number[];

  constructor(private readonly o: LocalEngineGeneratorOptions) {
    this.stop = [...(o.stopTokenIds ?? o.tokenizer.eosTokenIds)];
    this.description = o.name ?? 'local engine';
    if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize >= 1)) {
      throw new AhaError(`batch size must be a positive integer (got ${o.batchSize})`);
    }
  }

  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    checkOptions(prompts, opts);
    const { model, tokenizer } = this.o;
    const maxPos = model.config.maxPositionEmbeddings;
    const ids = opts.ids ?? prompts.map((_, i) => String(i));
    const encoded = prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: this.o.addSpecialTokens ?? true }));
    const results: Generation[][] = prompts.map(() => []);
    const remaining = prompts.map(() => opts.n);
    const finishPrompt = async (i: number) => {
      if (--remaining[i] === 0 && opts.onPrompt) await opts.onPrompt(i, results[i]);
    };
    // Sequences in prompt-major order; prompts that leave no room are answered without the engine.
    const seqs: { prompt: number; sample: number }[] = [];
    for (let i = 0; i < prompts.length; i++) {
      if (encoded[i].length === 0) throw new AhaError(`problem ${ids[i]}: the prompt encodes to no tokens`);
      for (let j = 0; j < opts.n; j++) {
        if (encoded[i].length >= maxPos) results[i][j] = { text: '', tokens: 0, finishReason: 'prompt_too_long' };
        else seqs.push({ prompt: i, sample: j });
      }
    }
    for (let i = 0; i < prompts.length; i++)
      if (encoded[i].length >= maxPos) {
        remaining[i] = 1;
        await finishPrompt(i);
      }
    const longest = seqs.reduce((m, s) => Math.max(m, encoded[s.prompt].length), 1);
    const bs = this.o.batchSize ?? kvBatchSize(model, opts.maxNewTokens, longest);
    for (let s = 0; s < seqs.length; s += bs) {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      const chunk = seqs.slice(s, s + bs);
      const out = await model.generate(
        chunk.map((q) => encoded[q.prompt]),
        {
          maxNewTokens: Math.min(opts.maxNewTokens, maxPos),
          temperature: opts.temperature,
          topP: opts.topP,
          topK: this.o.topK ?? 0,
          stopTokenIds: this.stop,
          seeds: chunk.map((q) => sampleSeed(opts.seed, ids[q.prompt], q.sample)),
        },
      );
      for (let k = 0; k < chunk.length; k++) {
        const { prompt, sample } = chunk[k];
        const x = out[k];
        // The stop token is not part of the text, as with an OpenAI server; it does count as a generated token.
        const body = x.finishReason === 'stop' ? x.tokens.slice(0, -1) : x.tokens;
        results[prompt][sample] = {
          text: tokenizer.decode(body),
          tokens: x.tokens.length,
          finishReason: x.finishReason,
        };
        await finishPrompt(prompt);
      }
    }
    return results;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI-compatible HTTP

/** Options of {@link OpenAiGenerator}. */
export interface OpenAiGeneratorOptions {
  /** Server root, with or without the trailing /v1 (http://127.0.0.1:8000 and http://127.0.0.1:8000/v1 are the same). */
  baseUrl: string;
  /** The `model` field of requests. */
  model: string;
  apiKey?: string;
  /** `/v1/chat/completions` (prompts are user messages; the server applies the chat template) or `/v1/completions`
   * (prompts are the exact text). Default 'chat'. */
  endpoint?: 'chat' | 'completions';
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** One request asks for all n samples (the `n` field) instead of n requests of one. Default false. */
  nPerRequest?: boolean;
  /** Per attempt. Default 30 minutes (a 32k-token reasoning trace takes minutes). */
  timeoutMs?: number;
  /** Retries after the first attempt on 429, 5xx, timeouts and network errors. Default 5. */
  maxRetries?: number;
  /** First backoff; doubled each retry, with ±25% jitter, capped at 60 s (a 429's Retry-After wins). Default 1000. */
  backoffMs?: number;
  /** Counts tokens of a text when the server cannot tell per sample (nPerRequest with n > 1). */
  countTokens?: (text: string) => number;
  /** Extra fields merged into every request body (e.g. top_k, repetition_penalty, chat_template_kwargs). */
  extraBody?: Record<string, unknown>;
  /** Called when a request failed and is about to be retried, so that the wait is never silent. */
  onRetry?: (r: RetryNotice) => void;
  /** For tests. */
  fetch?: typeof fetch;
}

/** A request that failed and will be tried again (see {@link OpenAiGeneratorOptions.onRetry}). */
export interface RetryNotice {
  /** What the request was for: "problem ID" or "problem ID sample J". */
  what: string;
  /** The retry about to start (1 for the first retry) and how many there may be. */
  retry: number;
  maxRetries: number;
  /** Why the last attempt failed, e.g. "HTTP 503: down" or "request failed (ECONNREFUSED)". */
  error: string;
  /** How long until the retry. */
  waitMs: number;
}

/** One line for a {@link RetryNotice}: "problem p2: HTTP 503: down; retry 1 of 5 in 1.1 s". */
export function formatRetry(r: RetryNotice): string {
  return `${r.what}: ${r.error}; retry ${r.retry} of ${r.maxRetries} in ${(r.waitMs / 1000).toFixed(1)} s`;
}

/** Normalises a server root to its /v1 base (no trailing slash). */
export function openAiBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AhaError(`--openai-base-url ${url}: not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new AhaError(`--openai-base-url ${url}: expected http:// or https://`);
  const s = url.replace(/\/+$/, '');
  return /\/v1$/.test(s) ? s : `${s}/v1`;
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

interface Job {
  prompt: number;
  /** First sample index this request produces, and how many. */
  first: number;
  count: number;
}

/**
 * Samples from an OpenAI-compatible server. Each request carries a `seed` from {@link sampleSeed} (servers that
 * honour it, like vLLM, reproduce samples). Failed requests are retried with exponential backoff on HTTP 429, 5xx,
 * timeouts and connection errors; other 4xx, malformed responses, or a request still failing after the retries
 * end the call with an AhaError naming the server and the problem. Prompts already completed have been passed to
 * `onPrompt` by then; requests in flight are cancelled.
 */
export class OpenAiGenerator implements Generator {
  readonly description: string;
  private readonly base: string;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly o: OpenAiGeneratorOptions) {
    this.base = openAiBase(o.baseUrl);
    this.fetchFn = o.fetch ?? fetch;
    this.description = `${o.model} at ${this.base}`;
    const c = o.concurrency ?? 8;
    if (!Number.isInteger(c) || c < 1) throw new AhaError(`concurrency must be a positive integer (got ${c})`);
  }

  private get url(): string {
    return `${this.base}/${(this.o.endpoint ?? 'chat') === 'chat' ? 'chat/completions' : 'completions'}`;
  }

  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    checkOptions(prompts, opts);
    const ids = opts.ids ?? prompts.map((_, i) => String(i));
    const perRequest = this.o.nPerRequest ? opts.n : 1;
    const jobs: Job[] = [];
    for (let i = 0; i < prompts.length; i++) {
      for (let j = 0; j < opts.n; j += perRequest)
        jobs.push({ prompt: i, first: j, count: Math.min(perRequest, opts.n - j) });
    }
    const results: Generation[][] = prompts.map(() => new Array<Generation>(opts.n));
    const remaining = prompts.map(() => opts.n);
    // One controller cancels everything in flight on the first fatal error or on the caller's abort.
    const stop = new AbortController();
    const onOuterAbort = () => stop.abort(abortReason(opts.signal!));
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    let failure: { error: unknown } | null = null;
    let next = 0;
    const worker = async () => {
      while (!failure && !stop.signal.aborted && next < jobs.length) {
        const job = jobs[next++];
        try {
          const gens = await this.request(prompts[job.prompt], ids[job.prompt], job, opts, stop.signal);
          gens.forEach((g, k) => (results[job.prompt][job.first + k] = g));
          remaining[job.prompt] -= job.count;
          if (remaining[job.prompt] === 0 && opts.onPrompt && !failure)
            await opts.onPrompt(job.prompt, results[job.prompt]);
        } catch (e) {
          if (!failure) {
            failure = { error: stop.signal.aborted && opts.signal?.aborted ? abortReason(opts.signal) : e };
            stop.abort(e);
          }
          return;
        }
      }
    };
    const concurrency = Math.min(this.o.concurrency ?? 8, Math.max(1, jobs.length));
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }
    if (failure) throw (failure as { error: unknown }).error;
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    return results;
  }

  private body(prompt: string, id: string, job: Job, o: GenerateOptions): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.o.model,
      max_tokens: o.maxNewTokens,
      temperature: o.temperature,
      top_p: o.topP,
      n: job.count,
      seed: sampleSeed(o.seed, id, job.first),
      ...this.o.extraBody,
    };
    if ((this.o.endpoint ?? 'chat') === 'chat') body.messages = [{ role: 'user', content: prompt }];
    else body.prompt = prompt;
    return body;
  }

  private async request(
    prompt: string,
    id: string,
    job: Job,
    o: GenerateOptions,
    signal: AbortSignal,
  ): Promise<Generation[]> {
    const maxRetries = this.o.maxRetries ?? 5;
    const backoff = this.o.backoffMs ?? 1000;
    const timeoutMs = this.o.timeoutMs ?? 30 * 60_000;
    const body = JSON.stringify(this.body(prompt, id, job, o));
    const what = `problem ${id}${job.count === o.n ? '' : ` sample ${job.first}`}`;
    let lastError: RetryableError | undefined;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (lastError) {
        const wait =
          lastError.retryAfterMs ?? Math.min(60_000, backoff * 2 ** (attempt - 1) * (0.75 + 0.5 * Math.random()));
        this.o.onRetry?.({ what, retry: attempt, maxRetries, error: lastError.message, waitMs: wait });
        await sleep(wait, signal);
      }
      try {
        return await this.attempt(body, job, signal, timeoutMs);
      } catch (e) {
        if (signal.aborted) throw signal.reason ?? e;
        if (!(e instanceof RetryableError)) throw new AhaError(`${this.url}: ${what}: ${(e as Error).message}`);
        lastError = e;
      }
    }
    throw new AhaError(
      `${this.url}: ${what}: failed after ${maxRetries + 1} attempts; last error: ${lastError?.message}`,
    );
  }

  private async attempt(body: string, job: Job, signal: AbortSignal, timeoutMs: number): Promise<Generation[]> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchFn(this.url, { method: 'POST', headers, body, signal: AbortSignal.any([signal, timeout]) });
      text = await res.text();
    } catch (e) {
      if (signal.aborted) throw e;
      if (timeout.aborted) throw new RetryableError(`no response within ${Math.round(timeoutMs / 1000)} s`);
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new RetryableError(`request failed (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
    if (res.status === 429 || res.status >= 500) {
      const ra = Number(res.headers.get('retry-after'));
      throw new RetryableError(
        `HTTP ${res.status}: ${text.slice(0, 200)}`,
        Number.isFinite(ra) && ra > 0 ? Math.min(ra, 120) * 1000 : undefined,
      );
    }
    if (!res.ok) {
      const hint =
        res.status === 400 && /context length|max_tokens|maximum/i.test(text)
          ? ' (hint: lower the max new tokens)'
          : '';
      throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}${hint}`);
    }
    let json: { choices?: unknown; usage?: { completion_tokens?: unknown } };
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`response is not JSON: ${text.slice(0, 200)}`);
    }
    const choices = json.choices;
    if (!Array.isArray(choices) || choices.length !== job.count) {
      throw new Error(
        `expected ${job.count} choice(s), got ${Array.isArray(choices) ? choices.length : 'no choices array'}`,
      );
    }
    const chat = (this.o.endpoint ?? 'chat') === 'chat';
    const ordered = [...choices].sort((a, b) => (Number(a?.index) || 0) - (Number(b?.index) || 0));
    const usage = Number(json.usage?.completion_tokens);
    return ordered.map((c: Record<string, unknown>) => {
      let text: string;
      if (chat) {
        const m = c.message as Record<string, unknown> | undefined;
        if (!m || (typeof m.content !== 'string' && m.content !== null && m.content !== undefined))
          throw new Error('a choice has no message content');
        const content = typeof m.content === 'string' ? m.content : '';
        // Servers with a reasoning parser (vLLM, SGLang) return the thinking apart; rebuild R1's output so that
        // the think-format check sees it. No content means the reasoning never closed.
        const reasoning =
          typeof m.reasoning_content === 'string'
            ? m.reasoning_content
            : typeof m.reasoning === 'string'
              ? m.reasoning
              : null;
        if (reasoning)
          text =
            m.content === null || m.content === undefined
              ? `<think>\n${reasoning}`
              : `<think>\n${reasoning}\n</think>\n\n${content}`;
        else text = content;
      } else {
        if (typeof c.text !== 'string') throw new Error('a choice has no text');
        text = c.text;
      }
      let tokens: number | null = null;
      if (job.count === 1 && Number.isFinite(usage)) tokens = usage;
      else if (this.o.countTokens) tokens = this.o.countTokens(text);
      return { text, tokens, finishReason: typeof c.finish_reason === 'string' ? c.finish_reason : 'unknown' };
    });
  }
}

/** A model an OpenAI-compatible server lists at `/v1/models`. */
export interface ServerModel {
  id: string;
  /** The context length, where the server says (vLLM's `max_model_len`). */
  maxModelLen?: number;
}

/** Options of {@link probeServer}. */
export interface ProbeServerOptions {
  apiKey?: string;
  /** How long the check may take. Default 10 s. */
  timeoutMs?: number;
  /** For tests. */
  fetch?: typeof fetch;
}

/**
 * Asks an OpenAI-compatible server once, with a short timeout, which models it serves (GET /v1/models), so that a
 * server that is down, unreachable or refusing the key fails at once with one line instead of after every request's
 * retries. Returns null when the server answers but does not list models (no such route, or not the OpenAI shape):
 * it may still serve completions.
 */
export async function probeServer(baseUrl: string, o: ProbeServerOptions = {}): Promise<ServerModel[] | null> {
  const url = `${openAiBase(baseUrl)}/models`;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const headers: Record<string, string> = {};
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  let res: Response;
  let text: string;
  try {
    res = await (o.fetch ?? fetch)(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (e) {
    if ((e as Error).name === 'TimeoutError')
      throw new AhaError(`${url}: no answer within ${timeoutMs / 1000} s: is the server up and reachable?`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new AhaError(
      `${url}: cannot reach the server (${cause?.code ?? cause?.message ?? (e as Error).message}): is it running?`,
    );
  }
  if (res.status === 401 || res.status === 403)
    throw new AhaError(`${url}: HTTP ${res.status}: the server refused the API key: ${text.slice(0, 200)}`);
  if (!res.ok) return null;
  let data: unknown;
  try {
    data = (JSON.parse(text) as { data?: unknown }).data;
  } catch {
    return null;
  }
  if (!Array.isArray(data)) return null;
  return data
    .filter((m): m is { id: string; max_model_len?: unknown } => typeof m?.id === 'string')
    .map((m) => ({
      id: m.id,
      ...(Number.isInteger(m.max_model_len) ? { maxModelLen: m.max_model_len as number } : {}),
    }));
}

/**
 * The model to ask for: `given` when set, else the one model the server lists. Several, or none listed, is an
 * AhaError naming the choices (or saying to give the name).
 */
export function chooseServerModel(
  baseUrl: string,
  listed: readonly ServerModel[] | null,
  given: string | undefined,
): string {
  if (given !== undefined) return given;
  const url = `${openAiBase(baseUrl)}/models`;
  if (listed === null) throw new AhaError(`${url} lists no models: give --model-name (the model the server serves)`);
  if (listed.length === 1) return listed[0].id;
  if (listed.length === 0) throw new AhaError(`${url} lists no models: give --model-name`);
  const names = listed.map((m) => m.id);
  const shown = names.length > 10 ? [...names.slice(0, 10), `... (${names.length} in all)`] : names;
  throw new AhaError(`the server serves ${names.length} models: give --model-name (one of ${shown.join(', ')})`);
}
