import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arithmeticTask, arithmeticExample, ARITHMETIC_ALPHABET, type ArithmeticExample } from '../../src/data/tasks/arithmetic.ts';
import { Rng } from '../../src/data/rng.ts';
import { AhaError } from '../../src/errors.ts';

/** Reference value of a chain expression: JavaScript's own parser and precedence, independent of our reducer. */
function value(expr: string): number {
  assert.match(expr, /^\d+([+*-]\d+)*$/, `not an expression: ${expr}`);
  return Function(`return (${expr});`)() as number;
}

/** Left-to-right (precedence-aware) intermediate values, computed independently of the task code. */
function prefixValues(q: string): number[] {
  // With only + and -, the intermediates of the leftmost-first reduction are the prefix values.
  const parts = q.match(/\d+|[+-]/g)!;
  const out: number[] = [];
  let acc = Number(parts[0]);
  for (let i = 1; i < parts.length; i += 2) {
    acc = parts[i] === '+' ? acc + Number(parts[i + 1]) : acc - Number(parts[i + 1]);
    out.push(acc);
  }
  return out;
}

test('generate is deterministic for a seed and varies with it', () => {
  const task = arithmeticTask();
  const a = task.generate(new Rng(1), 200, 'train');
  const b = task.generate(new Rng(1), 200, 'train');
  const c = task.generate(new Rng(2), 200, 'train');
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.map((e) => e.question), c.map((e) => e.question));
});

test('generated problems obey the difficulty knobs and have the right answers', () => {
  const task = arithmeticTask();
  for (const split of ['train', 'test'] as const) {
    const xs = task.generate(new Rng(3), 1000, split);
    assert.equal(new Set(xs.map((e) => e.question)).size, 1000, 'distinct questions');
    for (const e of xs) {
      assert.match(e.question, /^[1-9]([+-][1-9]){3,4}$/);
      assert.equal(Number(e.answer), value(e.question), e.question);
      assert.ok(prefixValues(e.question).every((v) => v >= 0 && v <= 99), e.question);
      assert.equal(task.steps(e), e.question.length === 7 ? 3 : 4);
      assert.ok(task.check(e.answer, e));
      for (const ch of e.question) assert.ok(ARITHMETIC_ALPHABET.includes(ch));
    }
    // Both lengths show up.
    assert.ok(xs.some((e) => task.steps(e) === 3) && xs.some((e) => task.steps(e) === 4));
  }
});

test('train and test splits are disjoint, seed-independent, and about testFraction of the space', () => {
  const task = arithmeticTask();
  const test1 = task.generate(new Rng(10), 2000, 'test');
  const train1 = task.generate(new Rng(10), 5000, 'train');
  const train2 = task.generate(new Rng(99), 5000, 'train');
  const testQs = new Set(test1.map((e) => e.question));
  for (const e of [...train1, ...train2]) assert.ok(!testQs.has(e.question), e.question);
  for (const e of test1) assert.equal(task.splitOf(e.question), 'test');
  for (const e of train1) assert.equal(task.splitOf(e.question), 'train');
  // Enumerate every 4-operand question: the test share of the valid ones is close to 20%.
  let valid = 0, inTest = 0;
  for (let n = 0; n < 9 ** 4 * 8; n++) {
    let k = n;
    const d = [1, 2, 3, 4].map(() => { const v = (k % 9) + 1; k = Math.floor(k / 9); return v; });
    const o = [0, 1, 2].map((i) => ((k >> i) & 1 ? '-' : '+'));
    const q = `${d[0]}${o[0]}${d[1]}${o[1]}${d[2]}${o[2]}${d[3]}`;
    if (!prefixValues(q).every((v) => v >= 0)) continue;
    valid++;
    if (task.splitOf(q) === 'test') inTest++;
  }
  assert.ok(valid > 20_000);
  assert.ok(Math.abs(inTest / valid - 0.2) < 0.01, `test share ${inTest / valid}`);
});

test('check compares integers numerically and rejects anything else', () => {
  const task = arithmeticTask();
  const ex = arithmeticExample('9+9-2');
  assert.equal(ex.answer, '16');
  for (const good of ['16', ' 16 ', '016', '+16', '\n16\n']) assert.equal(task.check(good, ex), true, JSON.stringify(good));
  for (const bad of ['15', '17', '-16', '16.0', '16.5', '1 6', '', 'sixteen', '16 17', '0x10', '1.6e1', '16.'])
    assert.equal(task.check(bad, ex), false, JSON.stringify(bad));
  assert.equal(task.check('0', arithmeticExample('5-5')), true);
  assert.equal(task.check('-0', arithmeticExample('5-5')), true);
});

test('prompt uses the short R1-Zero template by default and the paper one on request', () => {
  const ex = arithmeticExample('7+8+6-9+4');
  assert.equal(arithmeticTask().prompt(ex), 'User: 7+8+6-9+4. Assistant:');
  const full = arithmeticTask({ template: 'full' }).prompt(ex);
  assert.ok(full.startsWith('A conversation between User and Assistant.'));
  assert.ok(full.endsWith('User: 7+8+6-9+4. Assistant:'));
});

test('a clean solution rewrites one operation per line and ends on the answer', () => {
  const task = arithmeticTask();
  const ex = arithmeticExample('7+8+6-9+4');
  const sol = task.solve(ex, new Rng(1), { slip: 'none', verify: false });
  assert.equal(sol.reasoning, '7+8+6-9+4\n=15+6-9+4\n=21-9+4\n=12+4\n=16');
  assert.equal(sol.answer, '16');
  assert.equal(sol.correct, true);
  const checked = task.solve(ex, new Rng(1), { slip: 'none', verify: true });
  assert.match(checked.reasoning.split('\n').at(-1)!, /^(let me check|wait, let me check|check|let me verify): 7\+8=15, 15\+6=21, 21-9=12, 12\+4=16\. (ok|correct|yes)\.$/);
});

test('precedence: "*" is reduced before "+" and "-"', () => {
  const task = arithmeticTask({ ops: '+-*', maxValue: 200 });
  const ex = arithmeticExample('3+4*5-2');
  assert.equal(ex.answer, '21');
  assert.equal(task.solve(ex, new Rng(1), { slip: 'none', verify: false }).reasoning, '3+4*5-2\n=3+20-2\n=23-2\n=21');
  for (const e of task.generate(new Rng(4), 500, 'train')) assert.equal(Number(e.answer), value(e.question), e.question);
});

test('corrected slips end right; uncorrected slips end wrong; both write a wrong line', () => {
  const task = arithmeticTask();
  const rng = new Rng(21);
  const xs: ArithmeticExample[] = task.generate(new Rng(20), 300, 'train');
  for (const ex of xs) {
    const fixed = task.solve(ex, rng, { slip: 'corrected', verify: false });
    assert.equal(fixed.slip, 'corrected');
    assert.equal(fixed.answer, ex.answer);
    assert.equal(fixed.correct, true);
    const lines = fixed.reasoning.split('\n');
    const r = lines.findIndex((l) => /^(wait|hmm),/.test(l));
    assert.ok(r > 1, fixed.reasoning);
    assert.notEqual(value(lines[r - 1].slice(1)), Number(ex.answer), 'the line before the reflection is wrong');
    assert.equal(value(lines[r + 1].slice(1)), Number(ex.answer), 'the line after it is right again');

    const wrong = task.solve(ex, rng, { slip: 'uncorrected', verify: false });
    assert.equal(wrong.slip, 'uncorrected');
    assert.equal(wrong.correct, false);
    assert.notEqual(wrong.answer, ex.answer);
    assert.equal(wrong.reasoning.split('\n').at(-1), '=' + wrong.answer);
    assert.ok(!/wait|hmm/.test(wrong.reasoning));
    assert.ok(Number(wrong.answer) >= 0);
  }
});

test('nearMiss is a close, different, non-negative integer', () => {
  const task = arithmeticTask();
  const rng = new Rng(8);
  for (const ex of task.generate(new Rng(7), 500, 'train')) {
    const g = Number(task.nearMiss(ex, rng));
    const v = Number(ex.answer);
    assert.ok(Number.isInteger(g) && g >= 0 && g !== v, `${ex.question} -> ${g}`);
    const swapped = Number(String(v).split('').reverse().join(''));
    assert.ok(Math.abs(g - v) <= 3 || Math.abs(g - v) === 10 || g === swapped, `${v} -> ${g}`);
  }
});

test('pretrainExamples are train-split and include easy one-step problems', () => {
  const task = arithmeticTask();
  const xs = task.pretrainExamples(new Rng(5), 2000);
  const steps = new Map<number, number>();
  for (const e of xs) {
    assert.equal(task.splitOf(e.question), 'train');
    steps.set(task.steps(e), (steps.get(task.steps(e)) ?? 0) + 1);
  }
  assert.deepEqual([...steps.keys()].sort(), [1, 2, 3, 4]);
});

test('bad options and questions are AhaErrors', () => {
  assert.throws(() => arithmeticTask({ minTerms: 1 }), AhaError);
  assert.throws(() => arithmeticTask({ minTerms: 5, maxTerms: 4 }), AhaError);
  assert.throws(() => arithmeticTask({ ops: '+/' }), AhaError);
  assert.throws(() => arithmeticTask({ testFraction: 1 }), AhaError);
  assert.throws(() => arithmeticExample('7 + 8'), AhaError);
  assert.throws(() => arithmeticTask().generate(new Rng(1), -1, 'train'), AhaError);
  // Only 2*9*9 two-operand questions exist: asking for more distinct ones than the split holds fails cleanly.
  assert.throws(() => arithmeticTask({ minTerms: 2, maxTerms: 2 }).generate(new Rng(1), 500, 'test'), AhaError);
});
