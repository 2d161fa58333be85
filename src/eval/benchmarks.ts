/**
 * Evaluation benchmarks: the test sets shipped in data/benchmarks (GSM8K, MATH-500, AIME 2024, AMC 2023, and
 * HumanEval for code) by name, or any JSONL / Parquet file whose rows carry a question (`problem` or `question`) and
 * a reference answer, reduced to what the verifier compares: one answer string per problem. Rows that carry test
 * cases instead (`test` + `entry_point`, `tests`, `test_list`, `input_output`: src/judge/exampleTests.ts) make a code
 * benchmark, judged by running programs (codeScorer.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AhaError } from '../errors.ts';
import { readJsonlObjects } from '../data/jsonl.ts';
import { testsOfExample } from '../judge/exampleTests.ts';
import { languageOfFence } from '../judge/languages.ts';
import type { Language, TestCase } from '../judge/types.ts';
import { readParquetRows } from '../data/questionDataset.ts';
import { extractAnswer, lastBoxed } from '../verify/extractAnswer.ts';

/** One problem to evaluate. `id` is unique within its benchmark (outputs and resumption key on it). */
export interface BenchmarkExample {
  id: string;
  question: string;
  /** The reference answer as the verifier reads it (GSM8K: the number after "####"); '' for code problems. */
  answer: string;
  /** Breakdown keys (MATH-500 has both); absent elsewhere. */
  meta: { subject?: string; level?: string };
  /** Where the row came from, for messages: "file:line" (JSONL) or "file#row" (Parquet, 0-based). */
  source: string;
  /** What a code problem's programs are judged against; absent for math problems. */
  code?: CodeProblem;
}

/** A code problem's tests, and how its programs are read. */
export interface CodeProblem {
  tests: TestCase[];
  /** The language programs must be in (the row's `language`; Python for assertion tests); unset: the fence's tag. */
  language?: Language;
  /**
   * HumanEval's shape (an `entry_point`): the question is a function header a base model continues, so a completion
   * without a code block is judged as question + completion.
   */
  completesPrompt: boolean;
}

/** A loaded benchmark. */
export interface Benchmark {
  /** Math (answers verified; the default when absent) or code (programs judged). */
  kind?: 'math' | 'code';
  /** The registry name, or the file's base name for a file. */
  name: string;
  path: string;
  examples: BenchmarkExample[];
}

/** A named benchmark shipped with aha, and its default sample count (see {@link defaultSamples}). */
export interface BenchmarkInfo {
  file: string;
  rows: number;
  /** Samples per problem by default: DeepSeek-R1 reports pass@1 over k = 64 on AIME and 16 on MATH-500. */
  samples: number;
  description: string;
}

const DATA_DIR = fileURLToPath(new URL('../../data/benchmarks/', import.meta.url));

/**
 * The shipped benchmarks. Sample counts: AIME 64 and MATH-500 16 are DeepSeek-R1's; AMC 2023 (40 problems, not in
 * the R1 paper) gets 16 as in the R1 reproductions that report it (its pass@1 over 40 problems is as noisy as
 * MATH-500's would be with far fewer samples); GSM8K (1319 problems, mostly solved at one sample) gets 4.
 */
export const BENCHMARKS: Readonly<Record<string, BenchmarkInfo>> = Object.freeze({
  gsm8k: { file: 'gsm8k/test.jsonl', rows: 1319, samples: 4, description: 'GSM8K test (grade-school word problems)' },
  math500: {
    file: 'math500/test.jsonl',
    rows: 500,
    samples: 16,
    description: 'MATH-500 (Lightman et al. subset of MATH test)',
  },
  aime24: { file: 'aime24/test.jsonl', rows: 30, samples: 64, description: 'AIME 2024 I and II' },
  amc23: { file: 'amc23/test.jsonl', rows: 40, samples: 16, description: 'AMC 12 2023 (numeric answers)' },
  humaneval: {
    file: 'humaneval/test.jsonl',
    rows: 164,
    samples: 16,
    description: 'HumanEval (164 Python functions, judged in the sandbox)',
  },
});

/** Samples for a file that is not a named benchmark. */
export const DEFAULT_FILE_SAMPLES = 4;

/** Default samples per problem for a benchmark name (or a file). */
export function defaultSamples(benchmark: string): number {
  return Object.hasOwn(BENCHMARKS, benchmark) ? BENCHMARKS[benchmark].samples : DEFAULT_FILE_SAMPLES;
}

/** Path of a named benchmark's file, or null when `name` is not one. */
export function benchmarkPath(name: string): string | null {
  return Object.hasOwn(BENCHMARKS, name) ? DATA_DIR + BENCHMARKS[name].file : null;
}

/** Options of {@link loadBenchmark}. */
export interface LoadBenchmarkOptions {
  /** Keep the first `limit` problems (file order). */
  limit?: number;
  /** Field holding the question (default: `problem`, else `question`, else `prompt`). */
  questionField?: string;
  /** Field holding the answer (default: `answer`, else the last \boxed{} of `solution`). */
  answerField?: string;
}

const QUESTION_FIELDS = ['problem', 'question', 'prompt'];
const ID_FIELDS = ['unique_id', 'id', 'problem_id', 'task_id', 'idx'];
/** Fields that make a row a code problem (src/judge/exampleTests.ts reads them). */
const CODE_FIELDS = ['entry_point', 'tests', 'test_list', 'input_output'];

/** A code row's tests and language; errors name the row. */
function rowCode(row: Record<string, unknown>, source: string): CodeProblem {
  let tests: TestCase[];
  try {
    tests = testsOfExample(row);
  } catch (e) {
    if (e instanceof AhaError) throw new AhaError(`${source}: ${e.message}`);
    throw e;
  }
  if (tests.length === 0) throw new AhaError(`${source}: the problem has no tests`);
  const tagged = typeof row.language === 'string' ? languageOfFence(row.language) : null;
  if (typeof row.language === 'string' && tagged === null)
    throw new AhaError(`${source}: field 'language': '${row.language}' is not python, javascript or cpp`);
  const asserts = tests.every((t) => t.kind === 'assert');
  return {
    tests,
    language: tagged ?? (asserts ? 'python' : undefined),
    completesPrompt: typeof row.entry_point === 'string',
  };
}

function scalarString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'bigint') return String(v);
  return null;
}

/**
 * The reference answer of a row. A string holding "#### N" is a GSM8K worked solution: the answer is N. A JSON
 * number (AMC's 27.0) becomes its shortest spelling ("27").
 */
function rowAnswer(row: Record<string, unknown>, source: string, field: string | undefined): string {
  const fields = () => Object.keys(row).slice(0, 10).join(', ');
  let raw: unknown;
  let from: string;
  if (field !== undefined) {
    if (!(field in row)) throw new AhaError(`${source}: no field '${field}'; the row has: ${fields()}`);
    raw = row[field];
    from = field;
  } else if ('answer' in row && row.answer !== null) {
    raw = row.answer;
    from = 'answer';
  } else if (typeof row.solution === 'string') {
    const boxed = lastBoxed(row.solution);
    if (boxed === null) throw new AhaError(`${source}: no 'answer' field and 'solution' has no \\boxed{} answer`);
    return boxed;
  } else {
    throw new AhaError(
      `${source}: no 'answer' field (nor a 'solution' with a \\boxed{} answer); the row has: ${fields()}`,
    );
  }
  const s = scalarString(raw);
  if (s === null || s.trim() === '')
    throw new AhaError(
      `${source}: field '${from}' must be a non-empty string or number, got ${JSON.stringify(raw)?.slice(0, 60)}`,
    );
  if (/####/.test(s)) {
    const r = extractAnswer(s, { strategies: ['gsm8k'] });
    if (r.answer === null) throw new AhaError(`${source}: field '${from}' has "####" but no answer after it`);
    return r.answer;
  }
  return s.trim();
}

function rowQuestion(row: Record<string, unknown>, source: string, field: string | undefined): string {
  const candidates = field !== undefined ? [field] : QUESTION_FIELDS;
  for (const f of candidates) {
    const v = row[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v.trim() === '')
      throw new AhaError(`${source}: field '${f}' must be a non-empty string`);
    return v;
  }
  const fields = Object.keys(row).slice(0, 10).join(', ');
  throw new AhaError(`${source}: no ${candidates.map((f) => `'${f}'`).join(' or ')} field; the row has: ${fields}`);
}

function rowMeta(row: Record<string, unknown>): BenchmarkExample['meta'] {
  const meta: BenchmarkExample['meta'] = {};
  const subject = scalarString(row.subject ?? row.type);
  if (subject !== null && subject.trim() !== '') meta.subject = subject.trim();
  const level = scalarString(row.level);
  // MATH stores "Level 3", MATH-500 the integer 3: both become "3".
  if (level !== null && level.trim() !== '') meta.level = level.trim().replace(/^level\s*/i, '');
  return meta;
}

/**
 * Loads a named benchmark (`gsm8k`, `math500`, `aime24`, `amc23`, `humaneval`) or a .jsonl/.json/.parquet file. Problem ids come
 * from `unique_id`/`id`/`problem_id`/`idx` when the rows have one (duplicates are an error), else the 0-based row
 * number. Errors name the file and line (or Parquet row) and the field.
 */
export async function loadBenchmark(nameOrPath: string, opts: LoadBenchmarkOptions = {}): Promise<Benchmark> {
  const limit = opts.limit ?? Infinity;
  if (!(limit >= 1)) throw new AhaError(`benchmark limit must be >= 1 (got ${opts.limit})`);
  const named = benchmarkPath(nameOrPath);
  const path = named ?? nameOrPath;
  if (!existsSync(path)) {
    throw new AhaError(`${nameOrPath}: neither a benchmark name (${Object.keys(BENCHMARKS).join(', ')}) nor a file`);
  }
  if (!statSync(path).isFile()) throw new AhaError(`${path}: not a file (expected .jsonl or .parquet)`);
  const ext = extname(path).toLowerCase();
  let rows: { source: string; row: Record<string, unknown> }[];
  if (ext === '.parquet') {
    rows = (await readParquetRows(path)).map((row, i) => ({ source: `${path}#${i}`, row }));
  } else if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') {
    rows = readJsonlObjects(path).map(({ line, value }) => ({ source: `${path}:${line}`, row: value }));
  } else {
    throw new AhaError(`${path}: unknown benchmark format '${ext || '(no extension)'}' (expected .jsonl or .parquet)`);
  }
  if (rows.length === 0) throw new AhaError(`${path}: the benchmark has no rows`);
  const idField = ID_FIELDS.find((f) => rows.every(({ row }) => scalarString(row[f]) !== null));
  // A file is code when its first row carries tests and no answer was asked for by name.
  const kind =
    opts.answerField === undefined && CODE_FIELDS.some((f) => rows[0].row[f] !== undefined && rows[0].row[f] !== null)
      ? 'code'
      : 'math';
  const seen = new Map<string, string>();
  const examples: BenchmarkExample[] = [];
  for (let i = 0; i < rows.length && examples.length < limit; i++) {
    const { source, row } = rows[i];
    const id = idField !== undefined ? scalarString(row[idField])! : String(i);
    const dup = seen.get(id);
    if (dup !== undefined)
      throw new AhaError(`${source}: duplicate ${idField} ${JSON.stringify(id)} (first at ${dup})`);
    seen.set(id, source);
    const question = rowQuestion(row, source, opts.questionField);
    if (kind === 'code')
      examples.push({ id, question, answer: '', meta: rowMeta(row), source, code: rowCode(row, source) });
    else examples.push({ id, question, answer: rowAnswer(row, source, opts.answerField), meta: rowMeta(row), source });
  }
  const name = named !== null ? nameOrPath : nameOrPath.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  return { kind, name, path, examples };
}
