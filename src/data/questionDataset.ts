/**
 * Question/answer datasets for RL: the rows a GRPO run draws its prompts from, read from JSONL or Parquet files,
 * or from a directory in the Hugging Face datasets layout (what `huggingface-cli download --repo-type dataset`
 * leaves on disk). Only the question (and, for the accuracy reward, the reference answer) is needed; every other
 * field of a row is kept so that custom rewards can read test cases, ids, etc.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { AhaError } from '../errors.ts';
import { extractAnswer, lastBoxed } from '../verify/extractAnswer.ts';
import { readJsonlObjects } from './jsonl.ts';

/** One row: the question, its reference answer (null when the dataset has none), and the whole record. */
export interface QuestionRow {
  question: string;
  answer: string | null;
  /** Where the row came from, for messages: "file:line" (JSONL) or "file#row" (Parquet, 0-based). */
  source: string;
  /** The row as read (every field), for rewards that need more than the answer. */
  fields: Record<string, unknown>;
}

/**
 * How the reference answer is cut out of the answer field: 'none' takes it whole; 'gsm8k' keeps what follows
 * "####" (GSM8K's answer field is a worked solution ending in "#### 42"); 'boxed' keeps the last \boxed{...}
 * (MATH's solution field).
 */
export type AnswerExtraction = 'none' | 'gsm8k' | 'boxed';

/** Options of {@link loadQuestionDataset}. */
export interface QuestionDatasetOptions {
  /** A .jsonl/.json(l) file, a .parquet file, or a directory in the Hugging Face datasets layout. */
  path: string;
  /** Field holding the question; dots reach into nested objects ("meta.problem"). Default "question". */
  questionField?: string;
  /** Field holding the reference answer, or null for a dataset without answers. Default "answer". */
  answerField?: string | null;
  answerExtraction?: AnswerExtraction;
  /** Which split to read from a directory (file names starting with it). Default "train". */
  split?: string;
  /** Keep only the first `limit` rows (in file order). */
  limit?: number;
}

const JSONL_EXT = new Set(['.jsonl', '.json', '.ndjson']);

function getField(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !(part in (cur as Record<string, unknown>))) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);
}

function toRow(
  record: Record<string, unknown>,
  source: string,
  o: Required<Pick<QuestionDatasetOptions, 'questionField' | 'answerField' | 'answerExtraction'>>,
): QuestionRow {
  const q = getField(record, o.questionField);
  if (q === undefined) {
    const fields = Object.keys(record).slice(0, 8).join(', ');
    throw new AhaError(`${source}: no field '${o.questionField}' (question_field); the row has: ${fields}`);
  }
  if (typeof q !== 'string' || q.trim() === '') {
    throw new AhaError(`${source}: field '${o.questionField}' must be a non-empty string, got ${describe(q)}`);
  }
  let answer: string | null = null;
  if (o.answerField !== null) {
    const a = getField(record, o.answerField);
    if (a === undefined) {
      const fields = Object.keys(record).slice(0, 8).join(', ');
      throw new AhaError(`${source}: no field '${o.answerField}' (answer_field); the row has: ${fields}`);
    }
    if (typeof a === 'number' || typeof a === 'bigint') answer = String(a);
    else if (typeof a === 'string') answer = a;
    else throw new AhaError(`${source}: field '${o.answerField}' must be a string or a number, got ${describe(a)}`);
    if (o.answerExtraction === 'gsm8k') {
      const r = extractAnswer(answer, { strategies: ['gsm8k'] });
      if (r.answer === null) throw new AhaError(`${source}: field '${o.answerField}' has no "#### answer" (answer_extraction gsm8k)`);
      answer = r.answer;
    } else if (o.answerExtraction === 'boxed') {
      const b = lastBoxed(answer);
      if (b === null) throw new AhaError(`${source}: field '${o.answerField}' has no \\boxed{} answer (answer_extraction boxed)`);
      answer = b.trim();
    }
  }
  return { question: q, answer, source, fields: record };
}

/**
 * The data files of one split in a Hugging Face datasets directory, in name order. Recognised layouts (those of
 * the Hub's auto-converted and hand-made repos): `data/<split>-00000-of-00001.parquet`, `<split>/*.parquet`,
 * `<split>.jsonl`, `data/<split>.jsonl`, `<split>-*.parquet`, and `default/<split>/*.parquet` (the
 * refs/convert/parquet branch).
 */
export function findSplitFiles(dir: string, split: string): string[] {
  const isData = (f: string) => extname(f) === '.parquet' || JSONL_EXT.has(extname(f));
  const found: string[] = [];
  const scan = (d: string, match: (name: string) => boolean) => {
    if (!existsSync(d) || !statSync(d).isDirectory()) return;
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isFile() && isData(name) && match(name)) found.push(p);
    }
  };
  const byPrefix = (name: string) => {
    const stem = basename(name, extname(name));
    return stem === split || stem.startsWith(`${split}-`) || stem.startsWith(`${split}_`) || stem.startsWith(`${split}.`);
  };
  for (const d of [dir, join(dir, 'data')]) scan(d, byPrefix);
  if (found.length === 0) for (const d of [join(dir, split), join(dir, 'data', split), join(dir, 'default', split)]) scan(d, () => true);
  return found;
}

/** All rows of a Parquet file as objects; errors name the file (and hint at unsupported compression). */
export async function readParquetRows(path: string): Promise<Record<string, unknown>[]> {
  let file;
  try {
    file = await asyncBufferFromFile(path);
    await parquetMetadataAsync(file);
  } catch (e) {
    throw new AhaError(`${path}: not a readable Parquet file (${(e as Error).message})`);
  }
  try {
    return (await parquetReadObjects({ file })) as Record<string, unknown>[];
  } catch (e) {
    const msg = (e as Error).message;
    const hint = /compression|codec|unsupported/i.test(msg) ? ' (only uncompressed and snappy Parquet can be read)' : '';
    throw new AhaError(`${path}: cannot read Parquet rows (${msg})${hint}`);
  }
}

/**
 * Loads question/answer rows. Errors name the file and line (JSONL) or row (Parquet) and the field, on one line:
 * a missing field lists the fields the row does have, so a wrong `question_field` is obvious.
 */
export async function loadQuestionDataset(opts: QuestionDatasetOptions): Promise<QuestionRow[]> {
  const o = {
    questionField: opts.questionField ?? 'question',
    answerField: opts.answerField === undefined ? 'answer' : opts.answerField,
    answerExtraction: opts.answerExtraction ?? 'none',
  };
  const split = opts.split ?? 'train';
  const limit = opts.limit ?? Infinity;
  if (!(limit >= 1)) throw new AhaError(`dataset limit must be >= 1 (got ${opts.limit})`);
  if (!existsSync(opts.path)) throw new AhaError(`${opts.path}: dataset not found`);
  let files: string[];
  if (statSync(opts.path).isDirectory()) {
    files = findSplitFiles(opts.path, split);
    if (files.length === 0) {
      throw new AhaError(`${opts.path}: no .parquet or .jsonl files for split '${split}' (looked for ${split}-*.parquet, data/${split}-*, ${split}/*.parquet, ${split}.jsonl)`);
    }
  } else {
    files = [opts.path];
  }
  const rows: QuestionRow[] = [];
  for (const f of files) {
    const name = statSync(opts.path).isDirectory() ? join(opts.path, relative(opts.path, f)) : f;
    const ext = extname(f).toLowerCase();
    if (ext === '.parquet') {
      const records = await readParquetRows(f);
      for (let i = 0; i < records.length && rows.length < limit; i++) rows.push(toRow(records[i], `${name}#${i}`, o));
    } else if (JSONL_EXT.has(ext)) {
      for (const { line, value } of readJsonlObjects(f)) {
        if (rows.length >= limit) break;
        rows.push(toRow(value, `${name}:${line}`, o));
      }
    } else {
      throw new AhaError(`${f}: unknown dataset format '${ext || '(no extension)'}' (expected .jsonl or .parquet)`);
    }
    if (rows.length >= limit) break;
  }
  if (rows.length === 0) throw new AhaError(`${opts.path}: the dataset has no rows`);
  return rows;
}
