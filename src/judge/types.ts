/**
 * The judge's vocabulary: languages, test cases, limits and verdicts. A program is judged per test; the overall
 * verdict is the first non-accepted test's (tests run in order), or `accepted` when every test passed.
 */

/** Languages the judge runs. */
export const LANGUAGES = ['python', 'javascript', 'cpp'] as const;
export type Language = (typeof LANGUAGES)[number];

/** Every verdict a test (or a whole program) can get. */
export const VERDICTS = [
  'accepted',
  'wrong_answer',
  'runtime_error',
  'time_limit',
  'memory_limit',
  'output_limit',
  'compile_error',
] as const;
export type Verdict = (typeof VERDICTS)[number];

/** A stdin/stdout pair: the program reads `stdin`, its output must equal `stdout` token by token. */
export interface IoTest {
  kind: 'io';
  stdin: string;
  stdout: string;
}

/**
 * Code appended to the program and run with it (HumanEval's `check(candidate)` plus the call, one MBPP `assert`):
 * the test passes when the combined program exits cleanly; an AssertionError is a wrong answer.
 */
export interface AssertTest {
  kind: 'assert';
  code: string;
}

export type TestCase = IoTest | AssertTest;

/** Resource limits of one run of a program (a compile gets its own, larger ones). */
export interface Limits {
  /** Wall-clock seconds; the whole process tree is killed past it. */
  timeoutS: number;
  /** Memory in MiB (address space for Python and C++; V8's heap for JavaScript, whose address space gets 1 GiB more). */
  memoryMb: number;
  /** Bytes of stdout (and, separately, of stderr) read before the program is killed with `output_limit`. */
  maxOutputBytes: number;
  /** Processes and threads the program may have at once. */
  maxProcesses: number;
}

/** Defaults of {@link Limits}: generous for HumanEval-sized programs, small enough for thousands per hour. */
export const DEFAULT_LIMITS: Limits = { timeoutS: 5, memoryMb: 512, maxOutputBytes: 4 << 20, maxProcesses: 32 };

/** A program and what to judge it against. */
export interface Submission {
  language: Language;
  program: string;
  tests: readonly TestCase[];
}

/** The verdict of one test. */
export interface TestVerdict {
  verdict: Verdict;
  /** Wall-clock milliseconds of the run. */
  ms: number;
  /** The first lines of stderr (compiler output for compile_error), for logs and metrics. */
  stderr: string;
}

/** The judge's answer for one submission. */
export interface JudgeResult {
  verdict: Verdict;
  /** Per test, in order; tests after the first failure are absent when the judge stopped early. */
  tests: TestVerdict[];
  passed: number;
  total: number;
  /** The first lines of stderr of the first failing test (or of the compiler). */
  stderr: string;
}
