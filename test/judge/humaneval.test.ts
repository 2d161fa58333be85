import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { judge } from '../../src/judge/judge.ts';
import { humanEvalSubmission, loadHumanEval } from '../../src/judge/humaneval.ts';
import { JudgePool } from '../../src/judge/pool.ts';
import { workRoot } from './support.ts';

const root = workRoot();
after(() => {
  assert.deepEqual(readdirSync(root), []);
  rmSync(root, { recursive: true, force: true });
});
const pool = new JudgePool(2);
const rows = loadHumanEval();

test('all 164 HumanEval canonical solutions are accepted', async () => {
  assert.equal(rows.length, 164);
  const results = await Promise.all(rows.map((r) => judge(humanEvalSubmission(r), { pool, workRoot: root })));
  const failed = results.flatMap((r, i) => (r.verdict === 'accepted' ? [] : [`${rows[i].task_id}: ${r.verdict}`]));
  assert.deepEqual(failed, []);
});

test("broken solutions fail: wrong results, exceptions, syntax errors, another problem's solution", async () => {
  const some = rows.filter((_, i) => i % 8 === 0);
  const broken = some.flatMap((r, i) => [
    { id: r.task_id, sub: humanEvalSubmission(r, '    return None\n'), expect: ['wrong_answer', 'runtime_error'] },
    { id: r.task_id, sub: humanEvalSubmission(r, '    raise ValueError("no")\n'), expect: ['runtime_error'] },
    { id: r.task_id, sub: humanEvalSubmission(r, '    return (\n'), expect: ['compile_error'] },
    {
      id: r.task_id,
      sub: humanEvalSubmission(r, some[(i + 1) % some.length].canonical_solution),
      expect: ['wrong_answer', 'runtime_error', 'time_limit'],
    },
  ]);
  const results = await Promise.all(broken.map((b) => judge(b.sub, { pool, workRoot: root, limits: { timeoutS: 3 } })));
  const unexpected = results.flatMap((r, i) =>
    broken[i].expect.includes(r.verdict) ? [] : [`${broken[i].id} (${i % 4}): ${r.verdict}`],
  );
  assert.deepEqual(unexpected, []);
});
