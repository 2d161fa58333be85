/**
 * The LLM judge's cache (src/rewards/llmJudge.ts): replies by request, so a completion judged once (the same text in
 * another GRPO group, another epoch, a resumed run) is not sent again. In memory, and optionally in a JSONL file
 * (`{"key": ..., "reply": ...}` per line) that later runs load: written append-only, one line per reply, so a kill
 * mid-write tears at most the last line, which the next load drops.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { AhaError } from '../errors.ts';

/** What decides a judge's reply: the cache key is a hash of exactly these. */
export interface JudgeRequest {
  model: string;
  /** The template-rendered prompt (question, reference and response filled in). */
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
}

/** The cache key of a request: sha256 of its fields, in a fixed order. */
export function judgeCacheKey(r: JudgeRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([r.model, r.prompt, r.maxTokens, r.temperature, r.topP]))
    .digest('hex');
}

function isEntry(v: unknown): v is { key: string; reply: string } {
  const o = v as { key?: unknown; reply?: unknown } | null;
  return typeof o === 'object' && o !== null && typeof o.key === 'string' && typeof o.reply === 'string';
}

/** Judge replies by request key, in memory and, with a path, in an append-only JSONL file. */
export class JudgeCache {
  private readonly replies = new Map<string, string>();
  /** Entries read from the file when it was opened. */
  readonly loaded: number = 0;
  /** A torn last line was dropped from the file when it was opened. */
  readonly repaired: boolean = false;

  /**
   * Opens the cache; with `path`, loads the file (creating its directory). A last line cut short (no newline, not
   * JSON) is truncated away; any other line that is not `{"key", "reply"}` is an AhaError naming the file and line,
   * since appending to a file that is not a judge cache would damage it.
   */
  constructor(readonly path?: string) {
    if (path === undefined) return;
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path)) return;
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    // Without a final newline the last segment was the line being written.
    const tail = lines.pop() ?? '';
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw new AhaError(`${path}:${i + 1}: not a judge cache line (malformed JSON)`);
      }
      if (!isEntry(v)) throw new AhaError(`${path}:${i + 1}: not a judge cache line (expected {"key", "reply"})`);
      this.replies.set(v.key, v.reply);
    });
    if (tail.trim() !== '') {
      let v: unknown = null;
      try {
        v = JSON.parse(tail);
      } catch {
        // torn
      }
      if (isEntry(v)) {
        this.replies.set(v.key, v.reply);
        appendFileSync(path, '\n');
      } else {
        truncateSync(path, Buffer.byteLength(text) - Buffer.byteLength(tail));
        this.repaired = true;
      }
    }
    this.loaded = this.replies.size;
  }

  /** Entries held (loaded and added). */
  get size(): number {
    return this.replies.size;
  }

  get(key: string): string | undefined {
    return this.replies.get(key);
  }

  /** Keeps a reply; with a file, appends its line (one write, so concurrent calls never interleave lines). */
  set(key: string, reply: string): void {
    if (this.replies.get(key) === reply) return;
    this.replies.set(key, reply);
    if (this.path !== undefined) appendFileSync(this.path, JSON.stringify({ key, reply }) + '\n');
  }
}
