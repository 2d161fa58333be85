/**
 * The `judge` reward: an LLM judge over any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs), through
 * `aha eval`'s client (OpenAiGenerator: retries on 429/5xx/timeouts/network errors with backoff, a per-attempt
 * timeout). A template (src/rewards/judgeTemplates.ts) puts the question, the reference answer and the response in a
 * prompt; the reply is read as a verdict or a rating (src/rewards/judgeVerdict.ts) and becomes a score in [0, 1].
 * DeepSeek-R1 used such a generative reward model for data no rule can check (rejection sampling) and reward
 * models on the final summary for helpfulness (`on: summary`).
 *
 * Requests in flight are bounded across all calls (`concurrency`); identical requests share one reply: the same
 * request already in flight is awaited, a reply already read is served from the cache (src/rewards/judgeCache.ts,
 * optionally on disk). A call that gets no reply (the server down or failing after its retries) or an unreadable
 * one throws, so scoreCompletions scores it 0 and counts it like any failing reward; `stats` counts them too.
 */
import { z } from 'zod';
import { isAbsolute, join } from 'node:path';
import { parseConfig } from '../config/configError.ts';
import { AhaError } from '../errors.ts';
import { OpenAiGenerator, openAiBase, probeServer } from '../eval/generators.ts';
import { JudgeCache, judgeCacheKey } from './judgeCache.ts';
import { renderJudgePrompt, resolveJudgeTemplate, type JudgeParse } from './judgeTemplates.ts';
import { parseScore, parseVerdict, type JudgeReading } from './judgeVerdict.ts';
import type { Example, RewardFn } from './types.ts';

/** The `judge` reward's recipe options (snake_case, as recipes write them). */
export const llmJudgeOptionsSchema = z
  .object({
    /** Server root, with or without /v1. */
    base_url: z.string().min(1),
    /** Default: the one model the server's /v1/models lists. */
    model: z.string().min(1).optional(),
    /** Environment variable holding the API key (sent as a Bearer token). */
    api_key_env: z.string().min(1).optional(),
    /** 'equivalence' (default), 'rating', or an inline template with {question}, {reference}, {response}. */
    template: z.string().min(1).default('equivalence'),
    /** How replies are read: the built-in template's way, required for an inline template. */
    parse: z.enum(['verdict', 'score']).optional(),
    /** The rating scale of `parse: score` (default [1, 10]), mapped linearly to [0, 1]. */
    score_range: z
      .tuple([z.number().finite(), z.number().finite()])
      .refine(([lo, hi]) => lo < hi, 'the first number must be below the second')
      .optional(),
    max_tokens: z.number().int().positive().default(1024),
    temperature: z.number().min(0).default(0),
    /** Requests in flight at once, across all calls. */
    concurrency: z.number().int().positive().default(8),
    /** Per attempt. */
    timeout_ms: z.number().int().positive().default(60_000),
    /** Retries after the first attempt (429, 5xx, timeouts, network errors). */
    retries: z.number().int().min(0).default(2),
    /** 'response': the whole completion; 'summary': the text after the reasoning block (`</think>`). */
    on: z.enum(['summary', 'response']).default('response'),
    /** A JSONL file that keeps replies across runs (relative paths: against the recipe's directory). */
    cache: z.string().min(1).optional(),
  })
  .strict();

export type LlmJudgeConfig = z.input<typeof llmJudgeOptionsSchema>;

/** Options of {@link LlmJudge} (programmatic; recipes use {@link llmJudgeFromOptions}). */
export interface LlmJudgeOptions {
  baseUrl: string;
  model?: string;
  apiKey?: string;
  /** A built-in template's name or an inline template. Default 'equivalence'. */
  template?: string;
  parse?: JudgeParse;
  scoreRange?: readonly [number, number];
  /** Default 1024. */
  maxTokens?: number;
  /** Default 0. */
  temperature?: number;
  /** Default 8. */
  concurrency?: number;
  /** Per attempt; default 60 s. */
  timeoutMs?: number;
  /** Default 2. */
  retries?: number;
  /** First backoff between attempts (doubled each retry); default 1000 ms. */
  backoffMs?: number;
  /** Default 'response'. */
  on?: 'summary' | 'response';
  /** JSONL cache file. */
  cachePath?: string;
  /** Where the options came from ("recipe.yaml: rewards[2].options"), for messages. */
  where?: string;
  /** For tests. */
  fetch?: typeof fetch;
}

/** One judgement: the score in [0, 1] and its reason (a verdict, a rating, or why no request was needed). */
export interface JudgeOutcome {
  score: number;
  /** 'correct' | 'incorrect' | 'rating_N' (rounded) | 'no_summary' | 'empty_response'. */
  reason: string;
  /** The reply came from the cache (or from an identical request in flight). */
  cached: boolean;
}

/** What the judge did, for tests and logs. */
export interface JudgeStats {
  /** Judgements asked for. */
  calls: number;
  /** Requests sent to the server (after the cache and in-flight sharing). */
  requests: number;
  /** Calls served without a request of their own (cache, or an identical request in flight). */
  cacheHits: number;
  /** Calls that threw (no reply, unreadable reply, missing reference, abandoned). */
  failures: number;
  /** Of the failures: replies that could not be read. */
  malformed: number;
}

/** A call's reply could not be read as the template asks. */
export class MalformedJudgeReply extends Error {}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

/** `p`, or a rejection as soon as `signal` aborts. */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** At most `n` holders at once; a waiter whose signal aborts leaves the queue. */
class Slots {
  private readonly queue: (() => void)[] = [];
  constructor(private free: number) {}

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortReason(signal!));
      };
      this.queue.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}

/** A judge's reply and why it ended ('stop', 'length', ...; 'cached' for a reply from the cache). */
interface Reply {
  text: string;
  finishReason: string;
}

/** A request in flight that several identical calls await; aborted only when every one of them has given up. */
interface Shared {
  promise: Promise<Reply>;
  waiting: number;
  stop: AbortController;
}

/** The text a judge sees of a completion: the whole of it, or the summary after `</think>` (null: none). */
export function judgedText(completion: string, on: 'summary' | 'response'): string | null {
  if (on === 'response') return completion;
  const close = completion.lastIndexOf('</think>');
  return close < 0 ? null : completion.slice(close + '</think>'.length);
}

/** An LLM judge: {@link LlmJudge.reward} is the `judge` reward; {@link LlmJudge.judge} judges one response. */
export class LlmJudge {
  readonly stats: JudgeStats = { calls: 0, requests: 0, cacheHits: 0, failures: 0, malformed: 0 };
  readonly cache: JudgeCache;
  /** Server and model, for messages ("model at http://host/v1"). */
  readonly description: string;
  private readonly template: ReturnType<typeof resolveJudgeTemplate>;
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly slots: Slots;
  private readonly inflight = new Map<string, Shared>();
  private readonly stopAll = new AbortController();
  private model: Promise<string> | null = null;
  private generator: OpenAiGenerator | null = null;

  constructor(private readonly o: LlmJudgeOptions) {
    const where = o.where ?? 'judge';
    if (!/^https?:\/\/[^/]/.test(o.baseUrl) || !URL.canParse(o.baseUrl))
      throw new AhaError(`${where}.base_url: '${o.baseUrl}' is not an http:// or https:// URL`);
    this.base = openAiBase(o.baseUrl);
    this.fetchFn = o.fetch ?? fetch;
    this.template = resolveJudgeTemplate(o.template ?? 'equivalence', o.parse, where);
    const c = o.concurrency ?? 8;
    if (!(Number.isInteger(c) && c >= 1))
      throw new AhaError(`${where}.concurrency: must be a positive integer, got ${c}`);
    this.slots = new Slots(c);
    const [lo, hi] = o.scoreRange ?? [1, 10];
    if (!(lo < hi)) throw new AhaError(`${where}.score_range: [${lo}, ${hi}] is empty`);
    this.cache = new JudgeCache(o.cachePath);
    if (o.model !== undefined) this.model = Promise.resolve(o.model);
    this.description = `${o.model ?? 'the served model'} at ${this.base}`;
  }

  /** The `judge` reward: the example's `question` (else the prompt) and `answer` (the reference) fill the template. */
  readonly reward: RewardFn<Example> = async (completion, example, ctx) => {
    const question = typeof example.question === 'string' ? example.question : ctx.prompt;
    const a = example.answer;
    const reference = typeof a === 'string' || typeof a === 'number' ? String(a) : undefined;
    const r = await this.judge(completion, { question, reference }, ctx.signal);
    ctx.note?.(r.reason);
    return r.score;
  };

  /**
   * Judges one completion. Throws when no readable reply comes (after the client's retries), when the template
   * needs a reference and there is none, or when `signal` aborts; counted in `stats.failures` either way.
   */
  async judge(
    completion: string,
    input: { question: string; reference?: string },
    signal?: AbortSignal,
  ): Promise<JudgeOutcome> {
    this.stats.calls++;
    try {
      return await this.judgeOnce(completion, input, signal);
    } catch (e) {
      this.stats.failures++;
      if (e instanceof MalformedJudgeReply) this.stats.malformed++;
      throw e;
    }
  }

  private async judgeOnce(
    completion: string,
    input: { question: string; reference?: string },
    signal?: AbortSignal,
  ): Promise<JudgeOutcome> {
    const response = judgedText(completion, this.o.on ?? 'response');
    if (response === null) return { score: 0, reason: 'no_summary', cached: false };
    if (response.trim() === '') return { score: 0, reason: 'empty_response', cached: false };
    const prompt = renderJudgePrompt(this.template.text, { ...input, response: response.trim() });
    const model = await this.resolveModel(signal);
    const request = {
      model,
      prompt,
      maxTokens: this.o.maxTokens ?? 1024,
      temperature: this.o.temperature ?? 0,
      topP: 1,
    };
    const key = judgeCacheKey(request);
    const hit = this.cache.get(key);
    if (hit === undefined && signal?.aborted) throw abortReason(signal);
    let reply: Reply;
    let cached = true;
    if (hit !== undefined) reply = { text: hit, finishReason: 'cached' };
    else {
      const shared = this.inflight.get(key);
      if (shared === undefined) cached = false;
      reply = await this.await(shared ?? this.send(key, request), signal);
    }
    if (cached) this.stats.cacheHits++;
    const r = this.read(reply.text);
    if (!r.ok) {
      const cut = reply.finishReason === 'length' ? `; the reply hit max_tokens ${request.maxTokens}` : '';
      throw new MalformedJudgeReply(
        `unreadable judge reply (${r.why}${cut}): ${JSON.stringify(reply.text.slice(-200))}`,
      );
    }
    const reason =
      this.template.parse === 'verdict' ? (r.value === 1 ? 'correct' : 'incorrect') : `rating_${Math.round(r.value)}`;
    return { score: r.score, reason, cached };
  }

  private read(reply: string): JudgeReading {
    return this.template.parse === 'verdict' ? parseVerdict(reply) : parseScore(reply, this.o.scoreRange ?? [1, 10]);
  }

  /** Starts the request for `key`, shared by identical calls until it settles; a readable reply is cached. */
  private send(
    key: string,
    request: { model: string; prompt: string; maxTokens: number; temperature: number },
  ): Shared {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.stopAll.signal]);
    const shared: Shared = { waiting: 0, stop, promise: Promise.resolve({ text: '', finishReason: '' }) };
    shared.promise = (async () => {
      await this.slots.acquire(signal);
      try {
        this.stats.requests++;
        const out = await this.client(request.model).generate([request.prompt], {
          n: 1,
          temperature: request.temperature,
          topP: 1,
          maxNewTokens: request.maxTokens,
          seed: 0,
          ids: [`judge-${key.slice(0, 12)}`],
          signal,
        });
        const g = out[0][0];
        // Only readable replies are kept: an unreadable one may read next time (temperature > 0, a fixed server).
        if (this.read(g.text).ok) this.cache.set(key, g.text);
        return { text: g.text, finishReason: g.finishReason };
      } finally {
        this.slots.release();
      }
    })().finally(() => {
      if (this.inflight.get(key) === shared) this.inflight.delete(key);
    });
    // A rejection nobody awaits any more (every caller gave up) must not surface as unhandled.
    shared.promise.catch(() => {});
    this.inflight.set(key, shared);
    return shared;
  }

  /** Waits for a shared request; the caller's abort leaves it, and the last caller to leave cancels it. */
  private await(shared: Shared, signal?: AbortSignal): Promise<Reply> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    shared.waiting++;
    return new Promise<Reply>((resolve, reject) => {
      const onAbort = () => {
        if (--shared.waiting === 0) {
          for (const [k, s] of this.inflight) if (s === shared) this.inflight.delete(k);
          shared.stop.abort(abortReason(signal!));
        }
        reject(abortReason(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  private client(model: string): OpenAiGenerator {
    this.generator ??= new OpenAiGenerator({
      baseUrl: this.base,
      model,
      apiKey: this.o.apiKey,
      endpoint: 'chat',
      concurrency: 1,
      timeoutMs: this.o.timeoutMs ?? 60_000,
      maxRetries: this.o.retries ?? 2,
      backoffMs: this.o.backoffMs,
      fetch: this.fetchFn,
    });
    return this.generator;
  }

  /** The model to ask: the option, else the one model /v1/models lists (asked once; again after a failure). */
  private resolveModel(signal?: AbortSignal): Promise<string> {
    if (this.model === null) {
      const p = this.listedModel();
      this.model = p;
      p.catch(() => {
        if (this.model === p) this.model = null;
      });
    }
    return untilAborted(this.model, signal);
  }

  private async listedModel(): Promise<string> {
    const listed = await probeServer(this.base, {
      apiKey: this.o.apiKey,
      timeoutMs: Math.min(this.o.timeoutMs ?? 60_000, 30_000),
      fetch: this.fetchFn,
    });
    if (listed?.length === 1) return listed[0].id;
    const url = `${this.base}/models`;
    if (!listed || listed.length === 0) throw new AhaError(`${url} lists no model: set the judge's \`model\``);
    const names = listed.slice(0, 5).map((m) => m.id);
    throw new AhaError(`${url} lists ${listed.length} models (${names.join(', ')}): set the judge's \`model\``);
  }

  /** Cancels requests in flight and waiting (their calls fail); the judge is not used after. */
  async dispose(): Promise<void> {
    this.stopAll.abort(new Error('the judge was disposed'));
    await Promise.allSettled([...this.inflight.values()].map((s) => s.promise));
  }
}

/**
 * The `judge` reward from a recipe's options: validated (messages name `where`.options.x), the API key read from
 * `api_key_env`, the cache path resolved against `baseDir`.
 */
export function llmJudgeFromOptions(
  value: unknown,
  where: string,
  o: { baseDir?: string; fetch?: typeof fetch } = {},
): LlmJudge {
  const c = parseConfig(llmJudgeOptionsSchema, value ?? {}, where, {
    prefix: ['options'],
    noun: 'option',
    sourceIsPath: true,
  });
  return llmJudgeFromConfig(c, `${where}.options`, o);
}

/** {@link llmJudgeFromOptions} on options already validated (e.g. as part of a larger schema). */
export function llmJudgeFromConfig(
  c: z.output<typeof llmJudgeOptionsSchema>,
  where: string,
  o: { baseDir?: string; fetch?: typeof fetch } = {},
): LlmJudge {
  let apiKey: string | undefined;
  if (c.api_key_env !== undefined) {
    apiKey = process.env[c.api_key_env];
    if (!apiKey) throw new AhaError(`${where}.api_key_env: the environment variable ${c.api_key_env} is not set`);
  }
  const cachePath = c.cache === undefined || isAbsolute(c.cache) ? c.cache : join(o.baseDir ?? '.', c.cache);
  return new LlmJudge({
    baseUrl: c.base_url,
    model: c.model,
    apiKey,
    template: c.template,
    parse: c.parse,
    scoreRange: c.score_range,
    maxTokens: c.max_tokens,
    temperature: c.temperature,
    concurrency: c.concurrency,
    timeoutMs: c.timeout_ms,
    retries: c.retries,
    on: c.on,
    cachePath,
    where,
    fetch: o.fetch,
  });
}
