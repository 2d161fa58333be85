/**
 * `aha verify`: check answers against references in bulk. Reads JSONL lines `{"gold": ..., "pred": ...}`
 * (pred a whole completion, or a bare answer with `predExtraction: 'answer'`) and writes one JSONL verdict
 * per input line: `{"equal", "gold_parsed", "pred_parsed", "rule", "reason"}`, `rule` being the reading rule
 * that found the prediction's answer. A bad line gets a verdict naming the problem instead of stopping the
 * run, so outputs stay aligned with inputs (the command then exits 1); every comparison runs under a time budget.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { AhaError } from '../errors.ts';
import type { AnswerMode } from '../verify/extractAnswer.ts';
import { verifyAnswer } from '../verify/verify.ts';

/** Options of `aha verify`. `input` is a JSONL path, or `-` for stdin; `out` defaults to stdout. */
export type VerifyOptions = {
  input: string;
  out?: Writable;
  rtol?: number;
  /** How `pred` is read: 'completion' (default: the answer is found in the text) or 'answer' (taken whole). */
  predExtraction?: AnswerMode;
  /** Time budget of one comparison in ms (default 2000). */
  timeoutMs?: number;
};

/** Totals over the non-blank input lines. */
export type VerifySummary = { lines: number; equal: number; malformed: number };

function verdictFor(
  line: string,
  lineNo: number,
  opts: VerifyOptions,
): { row: Record<string, unknown>; malformed: boolean } {
  const bad = (why: string) => ({ row: { equal: false, reason: `line ${lineNo}: ${why}` }, malformed: true });
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    return bad(`invalid JSON (${(e as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    return bad('expected an object with "gold" and "pred"');
  const rec = obj as Record<string, unknown>;
  for (const field of ['gold', 'pred']) {
    const v = rec[field];
    if (v === undefined || v === null) return bad(`missing field "${field}"`);
    if (typeof v !== 'string' && typeof v !== 'number') return bad(`field "${field}" must be a string or number`);
  }
  const r = verifyAnswer(String(rec.gold), String(rec.pred), {
    predExtraction: opts.predExtraction,
    rtol: opts.rtol,
    timeoutMs: opts.timeoutMs,
  });
  const row: Record<string, unknown> = {
    equal: r.equal,
    gold_parsed: r.goldParsed,
    pred_parsed: r.predParsed,
    rule: r.rule,
  };
  if (r.reason !== undefined) row.reason = r.reason;
  return { row, malformed: false };
}

/** Run the verification, writing verdicts as they are computed. */
export async function verifyCommand(opts: VerifyOptions): Promise<VerifySummary> {
  const out = opts.out ?? process.stdout;
  let source: Readable;
  if (opts.input === '-') source = process.stdin;
  else {
    if (!existsSync(opts.input)) throw new AhaError(`verify: input file not found: ${opts.input}`);
    if (!statSync(opts.input).isFile()) throw new AhaError(`verify: input is not a file: ${opts.input}`);
    source = createReadStream(opts.input, { encoding: 'utf8' });
  }
  const summary: VerifySummary = { lines: 0, equal: 0, malformed: 0 };
  const rl = createInterface({ input: source, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      const { row, malformed } = verdictFor(line, lineNo, opts);
      summary.lines++;
      if (malformed) summary.malformed++;
      if (row.equal === true) summary.equal++;
      if (!out.write(JSON.stringify(row) + '\n')) await once(out, 'drain');
    }
  } catch (e) {
    throw new AhaError(`verify: cannot read ${opts.input}: ${(e as Error).message}`);
  }
  return summary;
}
