/**
 * `aha judge`: judge programs in bulk, in the sandbox. Reads JSONL lines
 * `{"language", "program", "tests": [{"stdin", "stdout"}]}` (or HumanEval's `"test"` + `"entry_point"`, MBPP's
 * `"test_list"`; see src/judge/exampleTests.ts) and writes one JSONL verdict per input line, in input order:
 * `{"verdict", "passed", "total", "tests": [verdict per test], "stderr"}`. A bad line gets
 * `{"verdict": "invalid", "reason"}` instead of stopping the run. Programs run in parallel (one per core unless
 * `--pool`); the throughput goes to stderr.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { Writable } from 'node:stream';
import { AhaError } from '../errors.ts';
import { testsOfExample } from '../judge/exampleTests.ts';
import { judge, type JudgeOptions } from '../judge/judge.ts';
import { JudgePool } from '../judge/pool.ts';
import { LANGUAGES, type Language } from '../judge/types.ts';
import type { SandboxMode } from '../judge/sandbox.ts';
import { parseInteger, parseNumber } from './parse.ts';

/** Options of `aha judge`. */
export interface JudgeCommandOptions {
  input: string;
  out?: Writable;
  /** Where the throughput line goes (default: stderr). */
  log?: (line: string) => void;
  pool?: number;
  judge?: Omit<JudgeOptions, 'pool'>;
}

/** Totals of a `judge` run. */
export interface JudgeSummary {
  programs: number;
  accepted: number;
  invalid: number;
  seconds: number;
}

type Row = { verdict: string; [k: string]: unknown };

async function judgeLine(line: string, lineNo: number, opts: JudgeOptions): Promise<Row> {
  const bad = (why: string): Row => ({ verdict: 'invalid', reason: `line ${lineNo}: ${why}` });
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    return bad(`invalid JSON (${(e as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return bad('expected a JSON object');
  const rec = obj as Record<string, unknown>;
  const language = rec.language ?? 'python';
  if (!LANGUAGES.includes(language as Language))
    return bad(`"language" must be one of ${LANGUAGES.join(', ')} (got ${JSON.stringify(language)})`);
  if (typeof rec.program !== 'string') return bad('missing string field "program"');
  let tests;
  try {
    tests = testsOfExample(rec);
    if (tests.length === 0) return bad('no tests');
  } catch (e) {
    return bad((e as Error).message);
  }
  const r = await judge({ language: language as Language, program: rec.program, tests }, opts);
  return {
    verdict: r.verdict,
    passed: r.passed,
    total: r.total,
    tests: r.tests.map((t) => t.verdict),
    stderr: r.stderr,
  };
}

/** Runs `aha judge`; throws an AhaError for what stops every line (no input file, no sandbox). */
export async function judgeCommand(opts: JudgeCommandOptions): Promise<JudgeSummary> {
  const out = opts.out ?? process.stdout;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!existsSync(opts.input)) throw new AhaError(`judge: input file not found: ${opts.input}`);
  if (!statSync(opts.input).isFile()) throw new AhaError(`judge: input is not a file: ${opts.input}`);
  const lines = readFileSync(opts.input, 'utf8')
    .split('\n')
    .map((text, i) => ({ text, no: i + 1 }))
    .filter((l) => l.text.trim() !== '');
  const judgeOpts: JudgeOptions = { ...opts.judge, pool: new JudgePool(opts.pool) };
  const t0 = performance.now();
  const pending = lines.map((l) => judgeLine(l.text, l.no, judgeOpts));
  // Settle all before writing, so a sandbox failure (the same for every line) is reported once, as an error.
  pending.forEach((p) => p.catch(() => {}));
  const summary: JudgeSummary = { programs: 0, accepted: 0, invalid: 0, seconds: 0 };
  for (const p of pending) {
    const row = await p;
    if (row.verdict === 'invalid') summary.invalid++;
    else summary.programs++;
    if (row.verdict === 'accepted') summary.accepted++;
    if (!out.write(`${JSON.stringify(row)}\n`)) await new Promise((r) => out.once('drain', r));
  }
  summary.seconds = (performance.now() - t0) / 1000;
  log(
    `aha judge: ${summary.programs} programs (${summary.accepted} accepted, ${summary.invalid} invalid lines) in ` +
      `${summary.seconds.toFixed(2)} s: ${(summary.programs / Math.max(summary.seconds, 1e-9)).toFixed(1)} programs/s`,
  );
  return summary;
}

/** Registers `aha judge`. */
export function registerJudge(program: Command): void {
  program
    .command('judge')
    .description('run programs against test cases in the sandbox: {"language","program","tests"} per line')
    .requiredOption('--input <file>', 'JSONL file')
    .option('--pool <n>', 'programs run at once (default: one per core)')
    .option('--timeout-s <s>', 'wall-clock seconds per test', '5')
    .option('--memory-mb <mb>', 'memory per program in MiB', '512')
    .option('--float-tolerance <x>', 'tolerance of numeric tokens in stdout comparisons', '0')
    .option('--sandbox <mode>', "'bwrap', or 'none' to run without isolation (warns on every run)", 'bwrap')
    .action(
      async (o: {
        input: string;
        pool?: string;
        timeoutS: string;
        memoryMb: string;
        floatTolerance: string;
        sandbox: string;
      }) => {
        if (o.sandbox !== 'bwrap' && o.sandbox !== 'none')
          throw new AhaError(`--sandbox must be 'bwrap' or 'none' (got '${o.sandbox}')`);
        await judgeCommand({
          input: o.input,
          pool: o.pool === undefined ? undefined : parseInteger(o.pool, '--pool', { min: 1, max: 256 }),
          judge: {
            sandbox: o.sandbox as SandboxMode,
            floatTolerance: parseNumber(o.floatTolerance, '--float-tolerance', { min: 0 }),
            limits: {
              timeoutS: parseNumber(o.timeoutS, '--timeout-s', { above: 0, max: 600 }),
              memoryMb: parseInteger(o.memoryMb, '--memory-mb', { min: 16, max: 65536 }),
            },
          },
        });
      },
    );
}
