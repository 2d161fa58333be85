import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { findSplitFiles, loadQuestionDataset } from '../../src/data/questionDataset.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * A minimal Parquet writer (hyparquet-writer is not a dependency): one row group, one uncompressed PLAIN data page
 * per column, REQUIRED columns of UTF-8 strings or INT64, metadata in Thrift's compact protocol. Just enough of the
 * format (github.com/apache/parquet-format, parquet.thrift) to give the reader a real file.
 */
class Compact {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(n: bigint | number): void {
    let v = BigInt(n);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v * 2n : -v * 2n - 1n);
  }
  field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number): void {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number): void {
    this.field(id, 6);
    this.zigzag(v);
  }
  binary(id: number, s: string): void {
    this.field(id, 8);
    this.rawString(s);
  }
  rawString(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes.push(...b);
  }
  list(id: number, elemType: number, n: number): void {
    this.field(id, 9);
    if (n < 15) this.bytes.push((n << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(n);
    }
  }
  begin(id?: number): void {
    if (id !== undefined) this.field(id, 12);
    this.last.push(0);
  }
  end(): void {
    this.bytes.push(0);
    this.last.pop();
  }
}

type Column = { name: string; values: string[] } | { name: string; values: number[]; int64: true };

function writeParquet(path: string, columns: Column[]): void {
  const numRows = columns[0].values.length;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const metas: { name: string; type: number; pageOffset: number; size: number }[] = [];
  for (const col of columns) {
    const int64 = 'int64' in col;
    const data = int64
      ? Buffer.concat((col.values as number[]).map((v) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); return b; }))
      : Buffer.concat((col.values as string[]).map((s) => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(4); l.writeUInt32LE(b.length); return Buffer.concat([l, b]); }));
    const h = new Compact();
    h.begin();
    h.i32(1, 0); // DATA_PAGE
    h.i32(2, data.length);
    h.i32(3, data.length);
    h.begin(5); // DataPageHeader
    h.i32(1, numRows);
    h.i32(2, 0); // PLAIN
    h.i32(3, 3); // RLE
    h.i32(4, 3);
    h.end();
    h.end();
    const page = Buffer.concat([Buffer.from(h.bytes), data]);
    metas.push({ name: col.name, type: int64 ? 2 : 6, pageOffset: offset, size: page.length });
    chunks.push(page);
    offset += page.length;
  }
  const m = new Compact();
  m.begin();
  m.i32(1, 1);
  m.list(2, 12, columns.length + 1);
  m.begin(); // root
  m.binary(4, 'schema');
  m.i32(5, columns.length);
  m.end();
  for (const c of metas) {
    m.begin();
    m.i32(1, c.type);
    m.i32(3, 0); // REQUIRED
    m.binary(4, c.name);
    if (c.type === 6) m.i32(6, 0); // UTF8
    m.end();
  }
  m.i64(3, numRows);
  m.list(4, 12, 1);
  m.begin(); // RowGroup
  m.list(1, 12, metas.length);
  for (const c of metas) {
    m.begin(); // ColumnChunk
    m.i64(2, c.pageOffset);
    m.begin(3); // ColumnMetaData
    m.i32(1, c.type);
    m.list(2, 5, 1);
    m.zigzag(0);
    m.list(3, 8, 1);
    m.rawString(c.name);
    m.i32(4, 0); // UNCOMPRESSED
    m.i64(5, numRows);
    m.i64(6, c.size);
    m.i64(7, c.size);
    m.i64(9, c.pageOffset);
    m.end();
    m.end();
  }
  m.i64(2, metas.reduce((a, c) => a + c.size, 0));
  m.i64(3, numRows);
  m.end();
  m.end();
  const meta = Buffer.from(m.bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(meta.length);
  chunks.push(meta, len, Buffer.from('PAR1'));
  writeFileSync(path, Buffer.concat(chunks));
}

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
