/**
 * The examples' data (examples/data/*.jsonl, written by make-arithmetic-data.ts): every reference answer is the
 * value of its expression (computed here independently), every question is from the task's training split (the
 * demo's and the r1 example's held-out problems never appear), and the SFT lines are in the R1-Zero format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arithmeticTask } from '../../src/data/tasks/arithmetic.ts';
import { root } from './runAha.ts';

const lines = (name: string) =>
  readFileSync(join(root, 'examples', 'data', name), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, string>);

/** The value of a chain of single operations, '*' before '+' and '-'. */
function evaluate(expr: string): number {
  assert.match(expr, /^\d+([+*-]\d+)*$/);
  return expr
    .split(/(?=[+-])/)
    .map((term) =>
      term
        .replace(/^\+/, '')
        .split('*')
        .map(Number)
        .reduce((a, b) => a * b),
    )
    .reduce((a, b) => a + b, 0);
}

test('evaluate agrees with hand-computed values', () => {
  assert.equal(evaluate('7+8+6-9+4'), 16);
  assert.equal(evaluate('2+3*4-1'), 13);
  assert.equal(evaluate('9-9'), 0);
});

test('arithmetic-train.jsonl: distinct training questions with their values as answers', () => {
  const rows = lines('arithmetic-train.jsonl');
  assert.equal(rows.length, 2000);
  const task = arithmeticTask();
  for (const r of rows) {
    assert.deepEqual(Object.keys(r), ['question', 'answer']);
    assert.equal(r.answer, String(evaluate(r.question)), r.question);
    assert.equal(task.splitOf(r.question), 'train', r.question);
  }
  assert.equal(new Set(rows.map((r) => r.question)).size, rows.length);
});

test('arithmetic-sft.jsonl: R1-Zero prompts and worked, correct completions', () => {
  const rows = lines('arithmetic-sft.jsonl');
  assert.equal(rows.length, 400);
  const task = arithmeticTask();
  for (const r of rows) {
    const q = /^User: (.+)\. Assistant:$/.exec(r.prompt)?.[1];
    assert.ok(q, r.prompt);
    assert.equal(task.splitOf(q), 'train', q);
    const m = /^ <think>\n([\s\S]+)\n<\/think> <answer>(-?\d+)<\/answer>$/.exec(r.completion);
    assert.ok(m, r.completion);
    assert.equal(Number(m[2]), evaluate(q), r.completion);
    // Worked line by line: the chain restated, then one "=..." line per operation.
    assert.ok(m[1].startsWith(`${q}\n=`), r.completion);
  }
});
