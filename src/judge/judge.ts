/**
 * The judge: runs a program against its tests in the sandbox (src/judge/sandbox.ts) and gives a verdict per test
 * and overall. Each submission gets a fresh run directory (deleted afterwards, whatever happened) and one slot of
 * a bounded pool, so a batch of submissions runs in parallel up to the pool's size.
 */
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { outputsMatch } from './compare.ts';
import { languageSpec, SYNTAX_ERROR_EXIT, type LanguageSpec } from './languages.ts';
import { defaultJudgePool, type JudgePool } from './pool.ts';
import {
  runSandboxed,
  sandboxTools,
  slotUid,
  type SandboxMode,
  type SandboxOutcome,
  type SandboxTools,
} from './sandbox.ts';
import {
  DEFAULT_LIMITS,
  type JudgeResult,
  type Limits,
  type Submission,
  type TestCase,
  type TestVerdict,
  type Verdict,
} from './types.ts';

/** How to judge. */
export interface JudgeOptions {
  limits?: Partial<Limits>;
  /** 'bwrap' (default) or 'none': run without isolation, only when asked explicitly; warns on every run. */
  sandbox?: SandboxMode;
  /** Tolerance of numeric tokens in stdin/stdout tests (see src/judge/compare.ts); 0: exact tokens. */
  floatTolerance?: number;
  /** Stop at the first failing test (the rest are not run); default false. */
  stopOnFirstFailure?: boolean;
  pool?: JudgePool;
  /** Where the unsandboxed-run warning goes (default: stderr). */
  warn?: (message: string) => void;
  /** Directory the per-run directories are made in (default: the OS temp dir); others must be able to enter it. */
  workRoot?: string;
}

/** Prefix of the run directories' names. */
export const RUN_DIR_PREFIX = 'aha-judge-';

const COMPILE_LIMITS = { timeoutS: 30, cpuS: 30, addressSpaceMb: 2048, maxProcesses: 32, maxOutputBytes: 64 << 10 };
const MEMORY_MESSAGE =
  /MemoryError|std::bad_alloc|JavaScript heap out of memory|Reached heap limit|Cannot allocate memory|out of memory/;
const ASSERTION_MESSAGE = /AssertionError|Assertion `.*' failed|assertion failed/i;
const SIGXCPU = 24;

/** The first lines of a stream, with the last ones too when it is long (a traceback's last line names the error). */
export function stderrHead(s: string, maxChars = 1200): string {
  const lines = s.replace(/\s+$/, '').split('\n');
  const kept = lines.length <= 12 ? lines : [...lines.slice(0, 6), '...', ...lines.slice(-4)];
  const out = kept.join('\n');
  return out.length <= maxChars ? out : `${out.slice(0, maxChars)}...`;
}

/** The verdict of one finished run (`expected`: the stdout of a stdin/stdout test). */
export function classify(o: SandboxOutcome, expected: string | null, floatTolerance: number): Verdict {
  if (o.outputExceeded) return 'output_limit';
  if (o.timedOut || o.signal === SIGXCPU) return 'time_limit';
  if (o.exitCode === 0 && o.signal === null) {
    if (expected === null) return 'accepted';
    return outputsMatch(o.stdout, expected, floatTolerance) ? 'accepted' : 'wrong_answer';
  }
  if (o.exitCode === SYNTAX_ERROR_EXIT) return 'compile_error';
  if (MEMORY_MESSAGE.test(o.stderr)) return 'memory_limit';
  if (expected === null && ASSERTION_MESSAGE.test(o.stderr)) return 'wrong_answer';
  return 'runtime_error';
}

function writeFiles(dir: string, files: Record<string, string>, uid: number | null): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  if (uid !== null) {
    chownSync(dir, uid, uid);
    for (const name of readdirSync(dir)) chownSync(join(dir, name), uid, uid);
  }
}

/** Judges one submission. Throws only for what is not the program's fault (no sandbox, a bad submission). */
export async function judge(sub: Submission, opts: JudgeOptions = {}): Promise<JudgeResult> {
  if (sub.tests.length === 0) throw new AhaError('the submission has no tests');
  const mode = opts.sandbox ?? 'bwrap';
  const tools = await sandboxTools(mode);
  const spec = languageSpec(sub.language);
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const pool = opts.pool ?? defaultJudgePool();
  if (mode === 'none')
    (opts.warn ?? ((m) => process.stderr.write(`${m}\n`)))(
      "aha: warning: running a model-written program WITHOUT a sandbox (sandbox: 'none')",
    );
  return pool.run((slot) => judgeInSlot(sub, spec, limits, opts, tools, mode, slot));
}

async function judgeInSlot(
  sub: Submission,
  spec: LanguageSpec,
  limits: Limits,
  opts: JudgeOptions,
  tools: SandboxTools,
  mode: SandboxMode,
  slot: number,
): Promise<JudgeResult> {
  const dir = mkdtempSync(join(opts.workRoot ?? tmpdir(), RUN_DIR_PREFIX));
  const uid = tools.setpriv && mode === 'bwrap' ? slotUid(slot) : null;
  const base = { dir, slot, mode, roBinds: spec.roBinds, tmpMb: 64 };
  const runLimits = {
    timeoutS: limits.timeoutS,
    cpuS: Math.max(1, Math.ceil(limits.timeoutS)),
    addressSpaceMb: limits.memoryMb + spec.addressSpaceExtraMb,
    maxProcesses: limits.maxProcesses,
    maxOutputBytes: limits.maxOutputBytes,
  };
  const tests: TestVerdict[] = [];
  const finish = (): JudgeResult => {
    const failed = tests.find((t) => t.verdict !== 'accepted');
    return {
      verdict: failed?.verdict ?? 'accepted',
      tests,
      passed: tests.filter((t) => t.verdict === 'accepted').length,
      total: sub.tests.length,
      stderr: failed?.stderr ?? '',
    };
  };
  try {
    const compile = async (source: string, binary: string): Promise<TestVerdict | null> => {
      const o = await runSandboxed(
        {
          ...base,
          ...COMPILE_LIMITS,
          writable: true,
          argv: (d) => spec.compile!(d).map((a) => a.replace('main.cpp', source).replace(/\/main$/, `/${binary}`)),
        },
        tools,
      );
      if (o.exitCode === 0 && !o.timedOut && !o.outputExceeded) return null;
      const why = o.timedOut
        ? 'the compiler ran past its time limit\n'
        : o.outputExceeded
          ? 'too much compiler output\n'
          : '';
      return { verdict: 'compile_error', ms: o.ms, stderr: stderrHead(why + o.stderr) };
    };
    const files: Record<string, string> = { ...spec.support, [spec.source]: sub.program };
    sub.tests.forEach((t, i) => {
      if (t.kind === 'assert') files[testSource(spec, i)] = `${sub.program}\n\n${t.code}\n`;
    });
    writeFiles(dir, files, uid);
    const hasIo = sub.tests.some((t) => t.kind === 'io');
    if (spec.compile && hasIo) {
      const failed = await compile(spec.source, 'main');
      if (failed) {
        tests.push(failed);
        return finish();
      }
    }
    for (let i = 0; i < sub.tests.length; i++) {
      const t: TestCase = sub.tests[i];
      let binary = 'main';
      let source = spec.source;
      if (t.kind === 'assert') {
        source = testSource(spec, i);
        binary = `test_${i}`;
        if (spec.compile) {
          const failed = await compile(source, binary);
          if (failed) {
            tests.push(failed);
            if (opts.stopOnFirstFailure) break;
            continue;
          }
        }
      }
      const o = await runSandboxed(
        {
          ...base,
          ...runLimits,
          stdin: t.kind === 'io' ? t.stdin : '',
          argv: (d) => (spec.compile ? [`${d}/${binary}`] : spec.run(d, source, limits.memoryMb)),
        },
        tools,
      );
      const verdict = classify(o, t.kind === 'io' ? t.stdout : null, opts.floatTolerance ?? 0);
      tests.push({ verdict, ms: o.ms, stderr: verdict === 'accepted' ? '' : stderrHead(o.stderr) });
      if (verdict !== 'accepted' && opts.stopOnFirstFailure) break;
    }
    return finish();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function testSource(spec: LanguageSpec, i: number): string {
  return spec.source.replace(/^main\./, `test_${i}.`);
}
