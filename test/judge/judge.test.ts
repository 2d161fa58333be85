import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { judge, stderrHead } from '../../src/judge/judge.ts';
import { outputsMatch } from '../../src/judge/compare.ts';
import { testsOfExample } from '../../src/judge/exampleTests.ts';
import { JudgePool } from '../../src/judge/pool.ts';
import type { Language, TestCase } from '../../src/judge/types.ts';
import { AhaError } from '../../src/errors.ts';
import { workRoot } from './support.ts';

const root = workRoot();
after(() => {
  assert.deepEqual(readdirSync(root), [], 'every run directory is deleted');
  rmSync(root, { recursive: true, force: true });
});
const pool = new JudgePool(2);
const io = (stdin: string, stdout: string): TestCase => ({ kind: 'io', stdin, stdout });
const run = (language: Language, program: string, tests: TestCase[], o: Parameters<typeof judge>[1] = {}) =>
  judge({ language, program, tests }, { pool, workRoot: root, ...o });

const ADD = {
  python: 'a, b = map(int, input().split())\nprint(a + b)',
  javascript:
    "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);",
  cpp: '#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << "\\n"; }',
};

for (const language of ['python', 'javascript', 'cpp'] as const) {
  test(`${language}: stdin/stdout tests give accepted and wrong_answer per test`, async () => {
    const r = await run(language, ADD[language], [io('1 2', '3'), io('40 2\n', '42\n'), io('1 1', '3')]);
    assert.deepEqual(
      r.tests.map((t) => t.verdict),
      ['accepted', 'accepted', 'wrong_answer'],
    );
    assert.equal(r.verdict, 'wrong_answer');
    assert.equal(r.passed, 2);
    assert.equal(r.total, 3);
  });
}

test('compile_error: a syntax error in each language, with the compiler message', async () => {
  const py = await run('python', 'def f(:\n  pass', [io('', '')]);
  assert.equal(py.verdict, 'compile_error');
  assert.match(py.stderr, /SyntaxError/);
  const js = await run('javascript', 'function f( {', [io('', '')]);
  assert.equal(js.verdict, 'compile_error');
  assert.match(js.stderr, /SyntaxError/);
  const cpp = await run('cpp', 'int main() { return x; }', [io('', ''), io('', '')]);
  assert.equal(cpp.verdict, 'compile_error');
  assert.match(cpp.stderr, /'x' was not declared|‘x’ was not declared/);
  assert.equal(cpp.tests.length, 1, 'compiled once; the compile error is the verdict');
});

test('runtime_error: an exception or a non-zero exit, with the first lines of stderr', async () => {
  const r = await run('python', 'print(1)\nraise ValueError("boom")', [io('', '1')]);
  assert.equal(r.verdict, 'runtime_error');
  assert.match(r.stderr, /ValueError: boom/);
  assert.equal((await run('javascript', 'process.exit(3)', [io('', '')])).verdict, 'runtime_error');
  assert.equal(
    (await run('cpp', 'int main() { int* p = nullptr; return *p; }', [io('', '')])).verdict,
    'runtime_error',
  );
});

test('time_limit, memory_limit and output_limit', async () => {
  const limits = { timeoutS: 1, memoryMb: 128, maxOutputBytes: 1 << 16 };
  assert.equal((await run('python', 'while True: pass', [io('', '')], { limits })).verdict, 'time_limit');
  assert.equal((await run('python', 'import time\ntime.sleep(30)', [io('', '')], { limits })).verdict, 'time_limit');
  const mem = await run('python', 'a = []\nwhile True: a.append(bytearray(1 << 24))', [io('', '')], { limits });
  assert.equal(mem.verdict, 'memory_limit');
  assert.equal((await run('python', "print('x' * 100000)", [io('', 'x')], { limits })).verdict, 'output_limit');
});

test('assertion tests: HumanEval check(candidate) and MBPP assert lines', async () => {
  const he = testsOfExample({ test: 'def check(candidate):\n    assert candidate(2) == 4\n', entry_point: 'double' });
  assert.equal((await run('python', 'def double(x):\n    return 2 * x', he)).verdict, 'accepted');
  const wrong = await run('python', 'def double(x):\n    return x + 1', he);
  assert.equal(wrong.verdict, 'wrong_answer');
  const mbpp = testsOfExample({ test_list: ['assert sq(2) == 4', 'assert sq(3) == 9', 'assert sq(0) == 1'] });
  const r = await run('python', 'def sq(x):\n    return x * x', mbpp);
  assert.deepEqual(
    r.tests.map((t) => t.verdict),
    ['accepted', 'accepted', 'wrong_answer'],
  );
  const early = await run('python', 'def sq(x):\n    return 0', mbpp, { stopOnFirstFailure: true });
  assert.equal(early.tests.length, 1);
  assert.equal(early.total, 3);
  const js = await run('javascript', 'function sq(x) { return x * x; }', [
    { kind: 'assert', code: "require('assert').equal(sq(3), 9);" },
    { kind: 'assert', code: "require('assert').equal(sq(3), 8);" },
  ]);
  assert.deepEqual(
    js.tests.map((t) => t.verdict),
    ['accepted', 'wrong_answer'],
  );
});

test('float tolerance compares numeric tokens; tokens otherwise match exactly', async () => {
  assert.equal(outputsMatch('1 2\n3  ', '1 2 3'), true);
  assert.equal(outputsMatch('0.3333', '0.33333333', 1e-3), true);
  assert.equal(outputsMatch('0.3333', '0.33333333'), false);
  assert.equal(outputsMatch('1000001', '1000000', 1e-6), true, 'relative for large values');
  assert.equal(outputsMatch('1000002', '1000000', 1e-6), false);
  assert.equal(outputsMatch('abc', 'abd', 1), false);
  assert.equal(outputsMatch('1 2', '1 2 3'), false);
  const r = await run('python', 'print(1 / 3)', [io('', '0.333333')], { floatTolerance: 1e-6 });
  assert.equal(r.verdict, 'accepted');
});

test('bad submissions and tests are one-line AhaErrors', async () => {
  await assert.rejects(run('python', 'pass', []), AhaError);
  assert.throws(() => testsOfExample({ question: 'x' }), /has no tests/);
  assert.throws(() => testsOfExample({ tests: [{ stdin: 1 }] }), /tests\[0\]/);
  assert.deepEqual(testsOfExample({ input_output: '{"inputs":["1\\n"],"outputs":["2\\n"]}' }), [io('1\n', '2\n')]);
});

test('stderrHead keeps the first lines and the last ones of a long stream', () => {
  const s = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
  const h = stderrHead(s);
  assert.match(h, /^line 0\n/);
  assert.match(h, /line 29$/);
  assert.doesNotMatch(h, /line 15/);
});

test("sandbox: 'none' runs without isolation and warns on every run", async () => {
  const warnings: string[] = [];
  const r = await run('python', ADD.python, [io('2 2', '4')], { sandbox: 'none', warn: (m) => warnings.push(m) });
  assert.equal(r.verdict, 'accepted');
  await run('python', ADD.python, [io('2 2', '4')], { sandbox: 'none', warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /WITHOUT a sandbox/);
});
