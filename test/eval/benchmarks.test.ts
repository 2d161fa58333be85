import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import { writeParquet } from '../support/parquetWriter.ts';
import { BENCHMARKS, defaultSamples, loadBenchmark } from '../../src/eval/benchmarks.ts';
import { extractAnswer, lastBoxed } from '../../src/verify/extractAnswer.ts';
import { mathEqual } from '../../src/verify/mathEquivalence.ts';

const root = new URL('../../data/benchmarks/', import.meta.url);
const readJsonl = (rel: string): Record<string, unknown>[] =>
  readFileSync(new URL(rel, root), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));

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
      if (!v?.equal)
        failures.push(`${r.unique_id}: ${JSON.stringify(r.answer)} vs ${JSON.stringify(boxed)}: ${v?.reason}`);
    }
    assert.deepEqual(failures, []);
  });

  it('every answer parses, and the full extraction pipeline picks it out of the solution', () => {
    const failures: string[] = [];
    for (const r of rows) {
      const self = mathEqual(r.answer, r.answer);
      if (self.goldParsed === null)
        failures.push(`${r.unique_id}: unparseable ${JSON.stringify(r.answer)}: ${self.reason}`);
      const e = extractAnswer(r.solution);
      if (e.rule !== 'boxed' || !mathEqual(r.answer, e.answer).equal)
        failures.push(`${r.unique_id}: extraction ${JSON.stringify(e)}`);
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
      if (!v.equal)
        failures.push(`${r.unique_id}: ${JSON.stringify(r.answer)} vs ${JSON.stringify(canon)}: ${v.reason}`);
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

describe('loadBenchmark', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'aha-bench-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads the named benchmarks with their row counts, ids, answers and MATH-500 subject/level', async () => {
    const counts: Record<string, number> = {};
    for (const name of Object.keys(BENCHMARKS)) {
      const b = await loadBenchmark(name);
      counts[name] = b.examples.length;
      assert.equal(b.name, name);
      assert.equal(new Set(b.examples.map((e) => e.id)).size, b.examples.length, `${name}: unique ids`);
      // Code problems (HumanEval) have tests instead of an answer: test/eval/codeEval.test.ts.
      for (const e of b.examples)
        assert.ok(e.question.length > 0 && (e.answer.length > 0 || e.code !== undefined), `${name} ${e.id}`);
    }
    assert.deepEqual(counts, { gsm8k: 1319, math500: 500, aime24: 30, amc23: 40, humaneval: 164 });

    const gsm = await loadBenchmark('gsm8k', { limit: 2 });
    assert.equal(gsm.examples.length, 2);
    assert.deepEqual(
      gsm.examples.map((e) => [e.id, e.answer]),
      [
        ['0', '18'],
        ['1', '3'],
      ],
    );
    assert.match(gsm.examples[0].question, /^Janet’s ducks lay 16 eggs/);
    assert.deepEqual(gsm.examples[0].meta, {});
    // Every GSM8K answer is the number after "####", never the worked solution.
    for (const e of (await loadBenchmark('gsm8k')).examples) assert.match(e.answer, /^-?[\d,.]+$/, e.id);

    const math = await loadBenchmark('math500');
    const m0 = math.examples[0];
    assert.deepEqual(
      [m0.id, m0.answer, m0.meta],
      ['test/precalculus/807.json', '\\left( 3, \\frac{\\pi}{2} \\right)', { subject: 'Precalculus', level: '2' }],
    );
    assert.deepEqual([...new Set(math.examples.map((e) => e.meta.level))].sort(), ['1', '2', '3', '4', '5']);
    assert.equal(new Set(math.examples.map((e) => e.meta.subject)).size, 7);

    const aime = await loadBenchmark('aime24');
    assert.deepEqual([aime.examples[0].id, aime.examples[0].answer], ['60', '204']);
    assert.match(aime.examples[0].question, /^Every morning Aya/);
    const amc = await loadBenchmark('amc23');
    assert.deepEqual([amc.examples[0].id, amc.examples[0].answer], ['0', '27']);
    assert.match(amc.examples[0].source, /amc23\/test\.jsonl:1$/);

    assert.deepEqual(Object.keys(BENCHMARKS).map(defaultSamples), [4, 16, 64, 16, 16]);
    assert.equal(defaultSamples('my.jsonl'), 4);
  });

  it('files: problem/question fields, gsm8k-style and numeric answers, boxed solutions, ids, limit', async () => {
    const p = join(tmp, 'mine.jsonl');
    writeFileSync(
      p,
      [
        '{"question":"a?","answer":"work\\n#### 1,000"}',
        '{"problem":"b?","question":"ignored","answer":2.5,"type":"Algebra","level":"Level 4"}',
        '',
        '{"problem":"c?","solution":"so $\\\\boxed{\\\\frac{1}{3}}$."}',
      ].join('\n'),
    );
    const b = await loadBenchmark(p);
    assert.equal(b.name, 'mine');
    assert.deepEqual(
      b.examples.map((e) => [e.id, e.question, e.answer, e.meta, e.source]),
      [
        ['0', 'a?', '1,000', {}, `${p}:1`],
        ['1', 'b?', '2.5', { subject: 'Algebra', level: '4' }, `${p}:2`],
        ['2', 'c?', '\\frac{1}{3}', {}, `${p}:4`],
      ],
    );
    assert.equal((await loadBenchmark(p, { limit: 1 })).examples.length, 1);
    const custom = join(tmp, 'custom.jsonl');
    writeFileSync(custom, '{"id":"x1","q":"?","final":"7"}\n{"id":"x2","q":"??","final":8}\n');
    const c = await loadBenchmark(custom, { questionField: 'q', answerField: 'final' });
    assert.deepEqual(
      c.examples.map((e) => [e.id, e.question, e.answer]),
      [
        ['x1', '?', '7'],
        ['x2', '??', '8'],
      ],
    );
  });

  it('parquet files load like JSONL, with file#row sources', async () => {
    const p = join(tmp, 'test.parquet');
    writeParquet(p, [
      { name: 'problem', values: ['1+1?', '2+3?'] },
      { name: 'answer', values: ['2', '5'] },
      { name: 'id', values: [10, 11], int64: true },
    ]);
    const b = await loadBenchmark(p);
    assert.deepEqual(
      b.examples.map((e) => [e.id, e.question, e.answer, e.source]),
      [
        ['10', '1+1?', '2', `${p}#0`],
        ['11', '2+3?', '5', `${p}#1`],
      ],
    );
  });

  it('bad input names the file and line', async () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"question":"a","answer":"1"}\n{"question": "b", answer: 2}\n');
    await assert.rejects(
      loadBenchmark(bad),
      (e: Error) => e instanceof AhaError && e.message.startsWith(`${bad}:2: malformed JSON`),
    );
    writeFileSync(bad, '{"question":"a","answer":"1"}\n\n{"question":"b"}\n');
    const startsWith = (prefix: string) => (e: Error) => e instanceof AhaError && e.message.startsWith(prefix);
    await assert.rejects(loadBenchmark(bad), startsWith(`${bad}:3: no 'answer' field`));
    writeFileSync(bad, '{"text":"a","answer":"1"}\n');
    await assert.rejects(
      loadBenchmark(bad),
      startsWith(`${bad}:1: no 'problem' or 'question' or 'prompt' field; the row has: text, answer`),
    );
    writeFileSync(bad, '{"id":"a","question":"a","answer":"1"}\n{"id":"a","question":"b","answer":"2"}\n');
    await assert.rejects(loadBenchmark(bad), startsWith(`${bad}:2: duplicate id "a" (first at ${bad}:1)`));
    await assert.rejects(
      loadBenchmark('nope'),
      /nope: neither a benchmark name \(gsm8k, math500, aime24, amc23, humaneval\) nor a file/,
    );
    const txt = join(tmp, 'x.txt');
    writeFileSync(txt, 'hi');
    await assert.rejects(loadBenchmark(txt), /unknown benchmark format '\.txt'/);
  });
});
