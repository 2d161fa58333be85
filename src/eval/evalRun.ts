/**
 * An evaluation run with its files: every generation appended to a JSONL as each problem completes, a settings
 * file, and the summary JSON written atomically at the end. Rerunning the same command resumes: problems whose
 * samples are all in the JSONL are not generated again.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { AhaError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import type { Benchmark } from './benchmarks.ts';
import { evaluate, type EvalSummary, type EvaluateOptions, type SampleRecord } from './evaluate.ts';

/** The files of a run. */
export interface EvalRunFiles {
  generations: string;
  /** The settings the generations were made with (checked on resume). */
  settings: string;
  summary: string;
}

/**
 * Where a run writes: `out` ending in .jsonl is the generations file itself (settings and summary beside it as
 * NAME.run.json, NAME.summary.json); otherwise `out` is a directory holding BENCHMARK.jsonl, BENCHMARK.run.json and
 * BENCHMARK.summary.json, so several benchmarks can share one directory.
 */
export function evalRunFiles(out: string, benchmark: string): EvalRunFiles {
  if (/\.jsonl$/i.test(out)) {
    const stem = out.replace(/\.jsonl$/i, '');
    return { generations: out, settings: `${stem}.run.json`, summary: `${stem}.summary.json` };
  }
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new AhaError(`--out ${out}: exists and is not a directory (a file must end in .jsonl)`);
  return {
    generations: join(out, `${benchmark}.jsonl`),
    settings: join(out, `${benchmark}.run.json`),
    summary: join(out, `${benchmark}.summary.json`),
  };
}

function checkRecord(v: unknown, where: string): SampleRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AhaError(`${where}: expected a JSON object`);
  const r = v as Record<string, unknown>;
  const need = (field: string, ok: boolean, what: string) => {
    if (!ok) throw new AhaError(`${where}: field '${field}' must be ${what}`);
  };
  need('problem_id', typeof r.problem_id === 'string', 'a string');
  need('sample', Number.isInteger(r.sample) && (r.sample as number) >= 0, 'a non-negative integer');
  need('prompt', typeof r.prompt === 'string', 'a string');
  need('completion', typeof r.completion === 'string', 'a string');
  need('extracted', typeof r.extracted === 'string' || r.extracted === null, 'a string or null');
  need('rule', typeof r.rule === 'string' || r.rule === null, 'a string or null');
  need('equal', typeof r.equal === 'boolean', 'a boolean');
  need('tokens', typeof r.tokens === 'number' || r.tokens === null, 'a number or null');
  need('finish_reason', typeof r.finish_reason === 'string', 'a string');
  return r as unknown as SampleRecord;
}

/**
 * Reads the generations of an earlier run: for each problem, its samples 0..k-1 when all are present (a later line
 * for the same problem and sample replaces an earlier one). A last line cut short by a crash (no newline, not
 * JSON) is removed from the file, and so are the rows of a problem whose sample set is incomplete (a write torn
 * mid-problem): the problem is generated again, and readers of the file never see it twice. Any other malformed
 * line is an AhaError naming file:line.
 */
export function readCompleted(
  path: string,
  k: number,
): { completed: Map<string, SampleRecord[]>; lines: number; repaired: boolean; dropped: number } {
  const completed = new Map<string, SampleRecord[]>();
  if (!existsSync(path)) return { completed, lines: 0, repaired: false, dropped: 0 };
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const bySample = new Map<string, Map<number, SampleRecord>>();
  const kept: { line: string; problem: string }[] = [];
  let offset = 0;
  let count = 0;
  let repaired = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const isLast = i === lines.length - 1;
    if (raw.trim() !== '') {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (e) {
        if (isLast) {
          // Torn append: drop it so the file is valid JSONL again before anything is appended.
          truncateSync(path, Buffer.byteLength(text.slice(0, offset)));
          repaired = true;
          break;
        }
        throw new AhaError(`${path}:${i + 1}: malformed JSON (${(e as Error).message})`);
      }
      const r = checkRecord(value, `${path}:${i + 1}`);
      let m = bySample.get(r.problem_id);
      if (!m) bySample.set(r.problem_id, (m = new Map()));
      m.set(r.sample, r);
      kept.push({ line: raw, problem: r.problem_id });
      count++;
    }
    offset += raw.length + 1;
  }
  if (!repaired && text.length > 0 && !text.endsWith('\n')) {
    // A complete last record without its newline: add it, or the next append would join two records.
    const fd = openSync(path, 'a');
    try {
      writeSync(fd, '\n');
    } finally {
      closeSync(fd);
    }
  }
  for (const [id, m] of bySample) {
    const recs: SampleRecord[] = [];
    for (let j = 0; j < k && m.has(j); j++) recs.push(m.get(j)!);
    if (recs.length === k) completed.set(id, recs);
  }
  const partial = kept.filter((l) => !completed.has(l.problem));
  if (partial.length > 0) {
    const rest = kept.filter((l) => completed.has(l.problem));
    writeFileAtomic(path, rest.map((l) => l.line + '\n').join(''));
    count = rest.length;
  }
  return { completed, lines: count, repaired, dropped: partial.length };
}

/** Settings that must match for a resumed run to continue the same experiment. */
export type EvalSettings = Record<string, string | number | boolean | null | readonly string[]>;

function sameSetting(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Options of {@link runEval}: evaluate()'s, with the benchmark, settings and output location. */
export interface EvalRunOptions extends Omit<EvaluateOptions, 'problems' | 'completed' | 'onProblem'> {
  benchmark: Benchmark;
  /** What produced the samples and how (model, template, sampling...): saved, and compared on resume. */
  settings: EvalSettings;
  /** Output directory or .jsonl file; none → nothing is written and nothing resumes. */
  out?: string;
  /** Discard earlier outputs instead of resuming. */
  fresh?: boolean;
  /**
   * Told once how many problems were found complete in the output, whether a torn last line was removed, and how
   * many rows of problems with an incomplete sample set were dropped (those problems are generated again).
   */
  onResume?: (problems: number, repaired: boolean, droppedRows: number) => void;
}

/** The written summary: evaluate()'s summary with the benchmark, settings and run facts. */
export type EvalRunSummary = { benchmark: string } & EvalSummary & {
    generator: string;
    settings: EvalSettings;
    resumed_problems: number;
    generated_problems: number;
    elapsed_s: number;
    finished_at: string;
    files?: EvalRunFiles;
  };

/**
 * Runs an evaluation with resumable outputs. Each problem's k records are appended (one write, then fsync) as soon
 * as the problem completes, so an interrupted or failed run loses at most the problems in flight; the summary is
 * written atomically when every problem is done.
 */
export async function runEval(o: EvalRunOptions): Promise<EvalRunSummary> {
  const started = Date.now();
  const k = o.samples;
  const files = o.out !== undefined ? evalRunFiles(o.out, o.benchmark.name) : undefined;
  let completed = new Map<string, SampleRecord[]>();
  let fd: number | undefined;
  if (files) {
    if (o.fresh) for (const f of Object.values(files)) rmSync(f, { force: true });
    if (existsSync(files.settings) && existsSync(files.generations)) {
      let saved: Record<string, unknown>;
      try {
        saved = JSON.parse(readFileSync(files.settings, 'utf8'));
      } catch (e) {
        throw new AhaError(`${files.settings}: malformed JSON (${(e as Error).message})`);
      }
      for (const key of new Set([...Object.keys(saved), ...Object.keys(o.settings)])) {
        if (!sameSetting(saved[key], o.settings[key])) {
          throw new AhaError(
            `${files.generations} was made with ${key} ${JSON.stringify(saved[key])}, not ${JSON.stringify(o.settings[key])}: ` +
              'rerun with the same settings to resume, or use another --out (or --fresh to start over)',
          );
        }
      }
    }
    const prev = readCompleted(files.generations, k);
    const wanted = new Set(o.benchmark.examples.map((e) => e.id));
    completed = new Map([...prev.completed].filter(([id]) => wanted.has(id)));
    if (prev.lines > 0 || prev.dropped > 0 || prev.repaired) o.onResume?.(completed.size, prev.repaired, prev.dropped);
    writeFileAtomic(files.settings, JSON.stringify(o.settings, null, 2) + '\n');
    mkdirSync(dirname(files.generations), { recursive: true });
    fd = openSync(files.generations, 'a');
  }
  try {
    const result = await evaluate({
      ...o,
      problems: o.benchmark.examples,
      completed,
      onProblem:
        fd === undefined
          ? undefined
          : (_p, recs) => {
              writeSync(fd!, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
              fsyncSync(fd!);
            },
    });
    const summary: EvalRunSummary = {
      benchmark: o.benchmark.name,
      ...result.summary,
      generator: o.generator.description,
      settings: o.settings,
      resumed_problems: o.benchmark.examples.length - result.generated,
      generated_problems: result.generated,
      elapsed_s: (Date.now() - started) / 1000,
      finished_at: new Date().toISOString(),
    };
    if (files) {
      summary.files = files;
      writeFileAtomic(files.summary, JSON.stringify(summary, null, 2) + '\n');
    }
    return summary;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
