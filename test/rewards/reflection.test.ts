import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reflectiveWordFrequency, REFLECTIVE_WORDS } from '../../src/rewards/reflection.ts';

test('default list is the ten words of the R1 paper', () => {
  assert.deepEqual([...REFLECTIVE_WORDS].sort(), [
    'but',
    'check',
    'error',
    'evaluate',
    'however',
    'mistake',
    'retry',
    'verify',
    'wait',
    'wrong',
  ]);
});

test('counts whole words, case-insensitively, per 1000 words and per completion', () => {
  const texts = [
    // 10 words: Wait(1) I(2) made(3) a(4) mistake(5) wait(6) let(7) me(8) check(9) again(10)
    'Wait, I made a mistake. WAIT... let me check again.',
    // 5 words; "waiting", "button", "checked", "errors" are other words: no match
    'waiting button checked errors fine',
    // 5 words: <think>(tag, 1 word "think") but(2) it's(3) wrong(4) however(5)
    "<think>but it's wrong, however",
  ];
  const r = reflectiveWordFrequency(texts);
  assert.equal(r.numTexts, 3);
  assert.equal(r.totalWords, 20);
  const by = Object.fromEntries(r.words.map((w) => [w.word, w]));
  // wait: 2 occurrences in 20 words -> 2 * 1000 / 20 = 100 per 1000; in 1 of 3 texts
  assert.equal(by.wait.count, 2);
  assert.equal(by.wait.per1000Words, 100);
  assert.equal(by.wait.completionShare, 1 / 3);
  for (const w of ['mistake', 'check', 'but', 'wrong', 'however']) {
    assert.equal(by[w].count, 1, w);
    assert.equal(by[w].per1000Words, 50, w); // 1 * 1000 / 20
  }
  for (const w of ['verify', 'retry', 'error', 'evaluate']) assert.equal(by[w].count, 0, w);
  assert.equal(r.anyShare, 2 / 3);
});

test('custom words and empty input', () => {
  const r = reflectiveWordFrequency(['Hmm, hmm. Aha!'], ['hmm', 'aha']);
  assert.deepEqual(
    r.words.map((w) => w.count),
    [2, 1],
  );
  assert.equal(r.totalWords, 3);
  const e = reflectiveWordFrequency([]);
  assert.equal(e.totalWords, 0);
  assert.equal(e.anyShare, 0);
  assert.equal(e.words[0].per1000Words, 0);
});
