import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { extractAnswer, lastBoxed } from '../../src/eval/extractAnswer.ts';
import { mathEqual } from '../../src/eval/mathEquivalence.ts';

const root = new URL('../../data/benchmarks/', import.meta.url);
const readJsonl = (rel: string): Record<string, unknown>[] =>
  readFileSync(new URL(rel, root), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

type MathRow = { problem: string; solution: string; answer: string; unique_id: string };
type GsmRow = { question: string; answer: string };

describe('MATH-500 self-check', () => {
  const rows = readJsonl('math500/test.jsonl') as MathRow[];

  it('has 500 problems', () => assert.equal(rows.length, 500));

  it("every reference solution's last \\boxed{} verifies equal to its answer field (500/500)", () => {
    const failures: string[] = [];
    for (const r of rows) {
      const boxed = lastBoxed(r.solution);
      const v = boxed === null ? null : mathEqual(r.answer, boxed);
      if (!v?.equal) failures.push(`${r.unique_id}: ${JSON.stringify(r.answer)} vs ${JSON.stringify(boxed)}: ${v?.reason}`);
    }
    assert.deepEqual(failures, []);
  });

  it('every answer parses, and the full extraction pipeline picks it out of the solution', () => {
    const failures: string[] = [];
    for (const r of rows) {
      const self = mathEqual(r.answer, r.answer);
      if (self.goldParsed === null) failures.push(`${r.unique_id}: unparseable ${JSON.stringify(r.answer)}: ${self.reason}`);
      const e = extractAnswer(r.solution);
      if (e.rule !== 'boxed' || !mathEqual(r.answer, e.answer).equal) failures.push(`${r.unique_id}: extraction ${JSON.stringify(e)}`);
    }
    assert.deepEqual(failures, []);
  });

  it('every answer also verifies against its parsed canonical form when that form is plain math', () => {
    // Round trip through a different spelling: goldParsed uses *, /, sqrt(), pi and no LaTeX.
    const failures: string[] = [];
    for (const r of rows) {
      const canon = mathEqual(r.answer, r.answer).goldParsed!;
      if (/oo|\bU\b|\+-|\[\[/.test(canon)) continue;
      const v = mathEqual(r.answer, canon);
      if (!v.equal) failures.push(`${r.unique_id}: ${JSON.stringify(r.answer)} vs ${JSON.stringify(canon)}: ${v.reason}`);
    }
    assert.deepEqual(failures, []);
  });

  it('integer answers reject their neighbours and their negation', () => {
    const failures: string[] = [];
    for (const r of rows) {
      if (!/^-?\d+$/.test(r.answer)) continue;
      const n = BigInt(r.answer);
      const wrong = [String(n + 1n), String(n - 1n), ...(n !== 0n ? [String(-n)] : [])];
      for (const w of wrong) if (mathEqual(r.answer, w).equal) failures.push(`${r.answer} accepted ${w}`);
    }
    assert.deepEqual(failures, []);
  });

  it('fraction answers reject the inverted fraction', () => {
    const failures: string[] = [];
    for (const r of rows) {
      const m = /^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$/.exec(r.answer);
      if (!m || m[2] === m[3]) continue;
      const inverted = `${m[1]}\\frac{${m[3]}}{${m[2]}}`;
      if (mathEqual(r.answer, inverted).equal) failures.push(`${r.answer} accepted ${inverted}`);
    }
    assert.deepEqual(failures, []);
  });
});

describe('GSM8K self-check', () => {
  const rows = readJsonl('gsm8k/test.jsonl') as GsmRow[];

  it('has 1319 problems', () => assert.equal(rows.length, 1319));

  it("every reference's '#### N' extracts to N and verifies (1319/1319)", () => {
    const failures: string[] = [];
    rows.forEach((r, i) => {
      const n = /####\s*(.+?)\s*$/.exec(r.answer)?.[1];
      const e = extractAnswer(r.answer);
      if (n === undefined || e.rule !== 'gsm8k' || e.answer !== n || !mathEqual(n, e.answer).equal) {
        failures.push(`row ${i}: ${JSON.stringify(n)} -> ${JSON.stringify(e)}`);
      }
    });
    assert.deepEqual(failures, []);
  });
});

describe('AIME 2024 and AMC 2023 answers', () => {
  it('AIME answers accept their value without leading zeros and reject neighbours', () => {
    const rows = readJsonl('aime24/test.jsonl') as { answer: string }[];
    assert.equal(rows.length, 30);
    for (const r of rows) {
      const v = Number(r.answer);
      assert.equal(mathEqual(r.answer, String(v)).equal, true, r.answer);
      assert.equal(mathEqual(r.answer, `\\boxed{${v}}`).equal, true, r.answer);
      assert.equal(mathEqual(r.answer, String(v + 1)).equal, false, r.answer);
    }
  });

  it('AMC answers (stored as JSON numbers) accept their integer spelling', () => {
    const rows = readJsonl('amc23/test.jsonl') as { answer: number }[];
    assert.equal(rows.length, 40);
    for (const r of rows) {
      assert.equal(mathEqual(String(r.answer), `${r.answer}`).equal, true);
      assert.equal(mathEqual(String(r.answer), String(Math.round(r.answer))).equal, true);
      assert.equal(mathEqual(String(r.answer), String(r.answer + 1)).equal, false);
    }
  });
});
