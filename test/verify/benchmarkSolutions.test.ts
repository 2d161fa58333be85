// The verifier against the shipped benchmarks: every reference solution, read as a whole completion, verifies
// equal to its own answer (MATH-500's `solution` against `answer`, GSM8K's worked answer against its `#### N`),
// and against another problem's different answer it verifies unequal.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readAnswer } from '../../src/verify/extractAnswer.ts';
import { mathEqual } from '../../src/verify/mathEquivalence.ts';
import { verifyAnswer } from '../../src/verify/verify.ts';

const root = new URL('../../data/benchmarks/', import.meta.url);
const rows = (name: string): Record<string, string>[] =>
  readFileSync(new URL(name, root), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, string>);

/** Pairs (solution i, answer j) for a shift of the list, kept when the two answers are different values. */
function wrongPairs(items: { solution: string; answer: string }[], shift: number) {
  return items
    .map((x, i) => ({ solution: x.solution, answer: items[(i + shift) % items.length].answer, own: x.answer }))
    .filter((p) => p.answer.trim() !== p.own.trim() && !mathEqual(p.answer, p.own).equal);
}

describe('MATH-500 reference solutions', () => {
  const items = rows('math500/test.jsonl').map((r) => ({ solution: r.solution, answer: r.answer }));

  it('all 500 whole solutions verify equal to their answers', () => {
    assert.equal(items.length, 500);
    const failures = items
      .map((x, i) => ({ i, v: verifyAnswer(x.answer, x.solution) }))
      .filter((f) => !f.v.equal)
      .map((f) => `${f.i}: ${items[f.i].answer} read ${f.v.predAnswer} (${f.v.reason})`);
    assert.deepEqual(failures, []);
  });

  it("a solution never verifies equal to another problem's different answer", () => {
    const pairs = wrongPairs(items, 1).concat(wrongPairs(items, 7));
    assert.ok(pairs.length > 900, `${pairs.length} pairs`);
    const wrong = pairs.filter((p) => verifyAnswer(p.answer, p.solution).equal).map((p) => `${p.own} vs ${p.answer}`);
    assert.deepEqual(wrong, []);
  });
});

describe('GSM8K reference solutions', () => {
  const items = rows('gsm8k/test.jsonl').map((r) => {
    const a = readAnswer(r.answer, { strategies: ['gsm8k'] });
    assert.ok(a.answer !== null);
    return { solution: r.answer, answer: a.answer };
  });

  it('every worked solution verifies equal to its #### answer', () => {
    assert.equal(items.length, 1319);
    const failures = items.filter((x) => !verifyAnswer(x.answer, x.solution).equal).map((x) => x.answer);
    assert.deepEqual(failures, []);
  });

  it("a worked solution never verifies equal to another problem's different answer", () => {
    const pairs = wrongPairs(items, 1);
    assert.ok(pairs.length > 1200, `${pairs.length} pairs`);
    const wrong = pairs.filter((p) => verifyAnswer(p.answer, p.solution).equal).map((p) => `${p.own} vs ${p.answer}`);
    assert.deepEqual(wrong, []);
  });
});
