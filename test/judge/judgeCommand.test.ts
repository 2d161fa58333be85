import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { judgeCommand } from '../../src/cli/judge.ts';
import { workRoot } from './support.ts';

const root = workRoot();
after(() => rmSync(root, { recursive: true, force: true }));

test('aha judge: one verdict line per input line, in order; bad lines get a one-line verdict; throughput on the log', async () => {
  const input = join(root, 'in.jsonl');
  const lines = [
    { language: 'python', program: 'print(int(input()) * 2)', tests: [{ stdin: '4', stdout: '8' }] },
    {
      language: 'python',
      program: 'def f(x):\n    return x',
      test: 'def check(c):\n    assert c(1) == 2\n',
      entry_point: 'f',
    },
    'not json',
    { language: 'rust', program: 'fn main() {}', tests: [{ stdin: '', stdout: '' }] },
    { language: 'javascript', program: 'console.log(1)' },
    { language: 'cpp', program: 'int main() { return 0 }', tests: [{ stdin: '', stdout: '' }] },
  ];
  writeFileSync(input, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n\n');
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const logged: string[] = [];
  const s = await judgeCommand({ input, out, log: (l) => logged.push(l), judge: { workRoot: root } });
  const rows = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { verdict: string; reason?: string });
  assert.deepEqual(
    rows.map((r) => r.verdict),
    ['accepted', 'wrong_answer', 'invalid', 'invalid', 'invalid', 'compile_error'],
  );
  assert.match(rows[2].reason!, /^line 3: invalid JSON/);
  assert.match(rows[3].reason!, /^line 4: "language" must be one of/);
  assert.match(rows[4].reason!, /^line 5: the example has no tests/);
  assert.deepEqual(s, { ...s, programs: 3, accepted: 1, invalid: 3 });
  assert.match(logged[0], /^aha judge: 3 programs .* programs\/s$/);
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith('aha-judge-')),
    [],
  );
  await assert.rejects(judgeCommand({ input: join(root, 'missing.jsonl') }), /input file not found/);
});
