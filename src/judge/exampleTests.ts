/**
 * The test cases a dataset row carries, in the shapes code datasets use:
 * - `tests: [{ stdin, stdout }]` (or `{ input, output }`): stdin/stdout pairs;
 * - `tests: ['assert f(1) == 2', ...]` or MBPP's `test_list` (with `test_setup_code`, `test_imports`): one
 *   assertion test per line;
 * - HumanEval's `test` (defines `check(candidate)`) with `entry_point`: one test, `check(entry_point)`;
 * - APPS/TACO's `input_output` (a JSON string or object `{ inputs: [...], outputs: [...] }`).
 */
import { AhaError } from '../errors.ts';
import type { TestCase } from './types.ts';

const str = (v: unknown): v is string => typeof v === 'string';

/** The tests of `example`; throws an AhaError naming the field when it has none or they are malformed. */
export function testsOfExample(example: Readonly<Record<string, unknown>>): TestCase[] {
  const setup = [example.test_imports, example.test_setup_code]
    .flatMap((v) => (Array.isArray(v) ? v : [v]))
    .filter(str)
    .join('\n');
  const asserts = (lines: readonly string[]): TestCase[] =>
    lines.map((code) => ({ kind: 'assert', code: setup === '' ? code : `${setup}\n${code}` }));
  if (Array.isArray(example.tests)) {
    return example.tests.map((t, i): TestCase => {
      if (str(t)) return { kind: 'assert', code: setup === '' ? t : `${setup}\n${t}` };
      const o = (t ?? {}) as Record<string, unknown>;
      const stdin = o.stdin ?? o.input;
      const stdout = o.stdout ?? o.output;
      if (!str(stdin) || !str(stdout))
        throw new AhaError(`tests[${i}]: expected {"stdin": string, "stdout": string} or an assertion string`);
      return { kind: 'io', stdin, stdout };
    });
  }
  if (Array.isArray(example.test_list)) {
    if (!example.test_list.every(str)) throw new AhaError('test_list: expected an array of assertion strings');
    return asserts(example.test_list);
  }
  if (str(example.test)) {
    const entry = example.entry_point;
    if (str(entry) && !/^[A-Za-z_$][\w$]*$/.test(entry)) throw new AhaError(`entry_point: '${entry}' is not a name`);
    return [{ kind: 'assert', code: str(entry) ? `${example.test}\n\ncheck(${entry})\n` : example.test }];
  }
  if (example.input_output !== undefined) {
    let io = example.input_output as { inputs?: unknown; outputs?: unknown };
    if (str(io)) {
      try {
        io = JSON.parse(io) as typeof io;
      } catch {
        throw new AhaError('input_output: not valid JSON');
      }
    }
    const ins = io?.inputs;
    const outs = io?.outputs;
    if (!Array.isArray(ins) || !Array.isArray(outs) || ins.length !== outs.length || !ins.every(str))
      throw new AhaError('input_output: expected {"inputs": [string], "outputs": [string]} of equal lengths');
    return ins.map((stdin, i) => ({
      kind: 'io',
      stdin,
      stdout: Array.isArray(outs[i]) ? (outs[i] as unknown[]).join('\n') : String(outs[i]),
    }));
  }
  throw new AhaError('the example has no tests (fields tests, test_list, test + entry_point, or input_output)');
}
