import { strict as assert } from 'node:assert';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { JudgeCache, judgeCacheKey } from '../../src/rewards/judgeCache.ts';
import { AhaError } from '../../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-judge-cache-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const request = { model: 'm', prompt: 'Is 2 = 2?', maxTokens: 64, temperature: 0, topP: 1 };
const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { key: string; reply: string });

describe('judge cache', () => {
  it('the key is sha256 of the request fields and changes with each of them', () => {
    const expected = createHash('sha256')
      .update(JSON.stringify(['m', 'Is 2 = 2?', 64, 0, 1]))
      .digest('hex');
    assert.equal(judgeCacheKey(request), expected);
    const keys = new Set([
      judgeCacheKey(request),
      judgeCacheKey({ ...request, model: 'n' }),
      judgeCacheKey({ ...request, prompt: 'Is 2 = 3?' }),
      judgeCacheKey({ ...request, maxTokens: 65 }),
      judgeCacheKey({ ...request, temperature: 0.5 }),
      judgeCacheKey({ ...request, topP: 0.9 }),
    ]);
    assert.equal(keys.size, 6);
  });

  it('in memory only without a path', () => {
    const c = new JudgeCache();
    assert.equal(c.get('k'), undefined);
    c.set('k', 'Verdict: correct');
    assert.equal(c.get('k'), 'Verdict: correct');
    assert.equal(c.size, 1);
  });

  it('on disk: appended line by line, loaded by a new instance (directories created)', () => {
    const path = join(tmp, 'a', 'b', 'cache.jsonl');
    const c = new JudgeCache(path);
    c.set('k1', 'Verdict: correct');
    c.set('k2', 'Rating: [[7]]\nwith "quotes" and a newline');
    c.set('k2', 'Rating: [[7]]\nwith "quotes" and a newline'); // same reply: not written twice
    assert.deepEqual(lines(path), [
      { key: 'k1', reply: 'Verdict: correct' },
      { key: 'k2', reply: 'Rating: [[7]]\nwith "quotes" and a newline' },
    ]);
    const d = new JudgeCache(path);
    assert.deepEqual(
      [d.loaded, d.repaired, d.get('k1'), d.get('k2')],
      [2, false, 'Verdict: correct', 'Rating: [[7]]\nwith "quotes" and a newline'],
    );
  });

  it('a torn last line is truncated away, and later appends start on a line of their own', () => {
    const path = join(tmp, 'torn.jsonl');
    const c = new JudgeCache(path);
    c.set('k1', 'Verdict: correct');
    appendFileSync(path, '{"key": "k2", "reply": "Verd');
    const d = new JudgeCache(path);
    assert.deepEqual([d.loaded, d.repaired, d.get('k2')], [1, true, undefined]);
    assert.equal(readFileSync(path, 'utf8'), JSON.stringify({ key: 'k1', reply: 'Verdict: correct' }) + '\n');
    d.set('k3', 'No');
    assert.deepEqual(
      lines(path).map((l) => l.key),
      ['k1', 'k3'],
    );
  });

  it('a complete last line without its newline is kept, and the newline added', () => {
    const path = join(tmp, 'nonewline.jsonl');
    writeFileSync(path, JSON.stringify({ key: 'k1', reply: 'Yes' }));
    const c = new JudgeCache(path);
    assert.deepEqual([c.loaded, c.repaired, c.get('k1')], [1, false, 'Yes']);
    c.set('k2', 'No');
    assert.deepEqual(
      lines(path).map((l) => l.key),
      ['k1', 'k2'],
    );
  });

  it('a file that is not a judge cache is refused, naming the line, and left alone', () => {
    const path = join(tmp, 'other.jsonl');
    const text = '{"key": "k1", "reply": "Yes"}\n{"prompt": "p", "completion": "c"}\n{"key": "k2", "reply": "No"}\n';
    writeFileSync(path, text);
    assert.throws(
      () => new JudgeCache(path),
      (e: Error) =>
        e instanceof AhaError && e.message === `${path}:2: not a judge cache line (expected {"key", "reply"})`,
    );
    writeFileSync(path, 'not json\n' + text);
    assert.throws(
      () => new JudgeCache(path),
      (e: Error) => e.message === `${path}:1: not a judge cache line (malformed JSON)`,
    );
    assert.equal(readFileSync(path, 'utf8'), 'not json\n' + text);
    assert.ok(existsSync(path));
  });
});
