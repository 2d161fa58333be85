import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { findSplitFiles, loadQuestionDataset } from '../../src/data/questionDataset.ts';
import { AhaError } from '../../src/errors.ts';
import { writeParquet } from '../support/parquetWriter.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-test-'));
after(() => rmSync(root, { recursive: true, force: true }));


const tmp = () => mkdtempSync(join(root, 'aha-qds-'));

test('JSONL: question and answer fields, numbers as strings, other fields kept, file:line sources, limit', async () => {
  const dir = tmp();
  const p = join(dir, 'train.jsonl');
  writeFileSync(p, ['{"problem":"1+1?","sol":2,"id":"a"}', '', '{"problem":"2+3?","sol":"5","id":"b"}', '{"problem":"x","sol":"1"}'].join('\n'));
  const rows = await loadQuestionDataset({ path: p, questionField: 'problem', answerField: 'sol' });
  assert.deepEqual(rows.map((r) => [r.question, r.answer, r.source]), [
    ['1+1?', '2', `${p}:1`], ['2+3?', '5', `${p}:3`], ['x', '1', `${p}:4`],
  ]);
  assert.equal(rows[1].fields.id, 'b');
  assert.equal((await loadQuestionDataset({ path: p, questionField: 'problem', answerField: 'sol', limit: 2 })).length, 2);
  const noAnswers = await loadQuestionDataset({ path: p, questionField: 'problem', answerField: null });
  assert.equal(noAnswers[0].answer, null);
});

test('JSONL errors name the file, line and field', async () => {
  const dir = tmp();
  const p = join(dir, 'd.jsonl');
  writeFileSync(p, '{"question":"ok","answer":"1"}\n{"q":"missing","answer":"2"}\n');
  await assert.rejects(loadQuestionDataset({ path: p }), (e: unknown) =>
    e instanceof AhaError && e.message === `${p}:2: no field 'question' (question_field); the row has: q, answer`);
  writeFileSync(p, '{"question":"ok","answer":[1]}\n');
  await assert.rejects(loadQuestionDataset({ path: p }), new RegExp(`${p}:1: field 'answer' must be a string or a number, got an array`));
  writeFileSync(p, '{"question":"","answer":"1"}\n');
  await assert.rejects(loadQuestionDataset({ path: p }), /d\.jsonl:1: field 'question' must be a non-empty string/);
  writeFileSync(p, '{"question":"ok",\n');
  await assert.rejects(loadQuestionDataset({ path: p }), /d\.jsonl:1: malformed JSON/);
  await assert.rejects(loadQuestionDataset({ path: join(dir, 'none.jsonl') }), /dataset not found/);
  writeFileSync(join(dir, 'd.csv'), 'a,b\n');
  await assert.rejects(loadQuestionDataset({ path: join(dir, 'd.csv') }), /unknown dataset format '\.csv'/);
});

test('answer extraction: GSM8K "#### n" and MATH \\boxed{}', async () => {
  const dir = tmp();
  const p = join(dir, 'g.jsonl');
  writeFileSync(p, JSON.stringify({ question: 'q', answer: 'She has 3+4=<<3+4=7>>7 apples.\n#### 7' }) + '\n');
  assert.equal((await loadQuestionDataset({ path: p, answerExtraction: 'gsm8k' }))[0].answer, '7');
  writeFileSync(p, JSON.stringify({ problem: 'q', solution: 'So $x = \\boxed{\\frac{1}{2}}$.' }) + '\n');
  assert.equal((await loadQuestionDataset({ path: p, questionField: 'problem', answerField: 'solution', answerExtraction: 'boxed' }))[0].answer, '\\frac{1}{2}');
  writeFileSync(p, JSON.stringify({ question: 'q', answer: 'no marker' }) + '\n');
  await assert.rejects(loadQuestionDataset({ path: p, answerExtraction: 'gsm8k' }), /g\.jsonl:1: field 'answer' has no "#### answer"/);
});

test('Parquet: strings and INT64 answers, row sources, errors name file#row and field', async () => {
  const dir = tmp();
  const p = join(dir, 'train.parquet');
  writeParquet(p, [
    { name: 'question', values: ['What is 6*7?', 'Ünïcödé 1+1?', 'And 2+2?'] },
    { name: 'answer', values: [42, 2, 4], int64: true },
  ]);
  const rows = await loadQuestionDataset({ path: p });
  assert.deepEqual(rows.map((r) => [r.question, r.answer, r.source]), [
    ['What is 6*7?', '42', `${p}#0`], ['Ünïcödé 1+1?', '2', `${p}#1`], ['And 2+2?', '4', `${p}#2`],
  ]);
  await assert.rejects(loadQuestionDataset({ path: p, questionField: 'problem' }), (e: unknown) =>
    e instanceof AhaError && e.message === `${p}#0: no field 'problem' (question_field); the row has: question, answer`);
  const junk = join(dir, 'junk.parquet');
  writeFileSync(junk, 'not parquet at all');
  await assert.rejects(loadQuestionDataset({ path: junk }), /junk\.parquet: not a readable Parquet file/);
});

test('Hugging Face datasets directory: the split\'s files in name order', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'data'));
  writeParquet(join(dir, 'data', 'train-00001-of-00002.parquet'), [{ name: 'question', values: ['b1'] }, { name: 'answer', values: ['2'] }]);
  writeParquet(join(dir, 'data', 'train-00000-of-00002.parquet'), [{ name: 'question', values: ['a1', 'a2'] }, { name: 'answer', values: ['1', '1'] }]);
  writeParquet(join(dir, 'data', 'test-00000-of-00001.parquet'), [{ name: 'question', values: ['t1'] }, { name: 'answer', values: ['0'] }]);
  writeFileSync(join(dir, 'README.md'), '# dataset card\n');
  assert.deepEqual((await loadQuestionDataset({ path: dir })).map((r) => r.question), ['a1', 'a2', 'b1']);
  assert.deepEqual((await loadQuestionDataset({ path: dir, split: 'test' })).map((r) => r.question), ['t1']);
  assert.deepEqual((await loadQuestionDataset({ path: dir, limit: 2 })).map((r) => r.question), ['a1', 'a2']);
  await assert.rejects(loadQuestionDataset({ path: dir, split: 'validation' }), /no \.parquet or \.jsonl files for split 'validation'/);

  const other = tmp();
  mkdirSync(join(other, 'train'));
  writeFileSync(join(other, 'train', 'part.jsonl'), '{"question":"q","answer":"1"}\n');
  writeFileSync(join(other, 'test.jsonl'), '{"question":"t","answer":"1"}\n');
  assert.deepEqual(findSplitFiles(other, 'train'), [join(other, 'train', 'part.jsonl')]);
  assert.deepEqual(findSplitFiles(other, 'test'), [join(other, 'test.jsonl')]);
});
