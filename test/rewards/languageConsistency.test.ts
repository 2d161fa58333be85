import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chainOfThought,
  languageConsistency,
  languageConsistencyReward,
  languageRewardFromOptions,
  resolveLanguageTarget,
  scriptWords,
} from '../../src/rewards/languageConsistency.ts';
import { AhaError } from '../../src/errors.ts';

const ctx = { prompt: 'User: q. Assistant:' };

test('pure English reasoning scores 1; the summary after </think> is not part of the chain of thought', () => {
  const text = '<think>First we add seven and eight.</think> 答案是十五。';
  const r = languageConsistency(text, { target: 'en' });
  // First, we, add, seven, and, eight: 6 Latin words; the Chinese summary is outside the chain of thought.
  assert.deepEqual(r, { score: 1, words: 6, inTarget: 6, byScript: { Latin: 6 } });
  assert.equal(languageConsistency(text, { target: 'en', scope: 'all' }).score, 6 / 11);
});

test('English with Chinese words: each Han character is a word, numbers are neutral', () => {
  // Latin: First, add, and, so (4); Han: 我, 们, 得, 到 (4); 7, 8, 15 are not counted.
  const r = languageConsistency('<think>First 我们 add 7 and 8, so 得到 15.</think>', { target: 'en' });
  assert.equal(r.words, 8);
  assert.equal(r.inTarget, 4);
  assert.equal(r.score, 0.5);
  assert.deepEqual(r.byScript, { Latin: 4, Han: 4 });
  // The same text judged for Chinese: the other half.
  assert.equal(languageConsistency('<think>First 我们 add 7 and 8, so 得到 15.</think>', { target: 'zh' }).score, 0.5);
  // 'cjk' takes kana and Hangul too: ひ, 한국 (Hangul is spaced: one word), 漢 are in it, "ok" is not.
  const cjk = languageConsistency('ひ 한국 漢 ok', { target: 'cjk' });
  assert.deepEqual({ words: cjk.words, inTarget: cjk.inTarget }, { words: 4, inTarget: 3 });
});

test('pure Chinese, Cyrillic and mixed-script words follow the majority of their letters', () => {
  assert.equal(languageConsistency('所以答案是16。我们先计算7+8=15。', { target: 'zh' }).score, 1);
  assert.equal(languageConsistency('所以答案是16。', { target: 'en' }).score, 0);
  assert.equal(languageConsistency('Привет мир and hello', { target: 'ru' }).score, 0.5);
  assert.equal(languageConsistency('Привет мир and hello', { target: 'Cyrillic' }).score, 0.5);
  // Diacritics and apostrophes stay inside Latin words.
  assert.deepEqual(languageConsistency("naïve café don't", { target: 'en' }), {
    score: 1,
    words: 3,
    inTarget: 3,
    byScript: { Latin: 3 },
  });
  // A word of 3 Latin letters and 1 Cyrillic one is Latin.
  assert.deepEqual(
    scriptWords('abcд', resolveLanguageTarget('en')).map((w) => [w.script, w.inTarget]),
    [['Latin', true]],
  );
});

test('empty and math-only chains of thought have no score; the reward gives them noWordsScore', async () => {
  for (const text of [
    '',
    '<think></think>',
    '<think>7+8+6-9+4\n=15+6-9+4\n=21-9+4\n=12+4\n=16\n</think> <answer>16</answer>',
    '$x^2+2x=3$, 2x, f(x)=y, \\frac{1}{2}, (x, y)',
  ]) {
    assert.equal(languageConsistency(text).score, null, JSON.stringify(text));
    assert.equal(languageConsistency(text).words, 0);
  }
  assert.equal(await languageConsistencyReward()('', {}, ctx), 1);
  assert.equal(await languageConsistencyReward({ noWordsScore: 0 })('<think>1+1=2</think>', {}, ctx), 0);
  // Math inside prose is skipped, the prose counted: Let, so, and, here.
  assert.deepEqual(languageConsistency('Let $x^2 + 2x = 3$, so 2x and f(x)=y; \\frac{1}{2} here.').words, 4);
});

test('the reward is the score; the chain of thought is found whatever the tags', async () => {
  const reward = languageConsistencyReward({ target: 'en' });
  assert.equal(await reward('<think>we 我 check</think>answer', {}, ctx), 2 / 3);
  // A prompt that opened <think>: everything before </think> is the chain of thought.
  assert.equal(chainOfThought('reasoning here</think> summary'), 'reasoning here');
  // Unclosed: to the end. Several blocks: all of them.
  assert.equal(chainOfThought('x <think>abc'), 'abc');
  assert.equal(chainOfThought('<think>a</think> b <think>c</think>'), 'a\nc');
  assert.equal(chainOfThought('no tags at all'), 'no tags at all');
});

test('targets: language codes, groups, script names and aliases; unknown names are errors naming them', () => {
  assert.deepEqual(resolveLanguageTarget('en').scripts, ['Latin']);
  assert.deepEqual(resolveLanguageTarget('latin').scripts, ['Latin']);
  assert.deepEqual(resolveLanguageTarget('cjk').scripts, ['Han', 'Hiragana', 'Katakana', 'Hangul']);
  assert.deepEqual(resolveLanguageTarget('greek').scripts, ['Greek']);
  assert.deepEqual(resolveLanguageTarget('Latin+Greek').scripts, ['Latin', 'Greek']);
  assert.deepEqual(resolveLanguageTarget('Latn').scripts, ['Latn']);
  assert.throws(
    () => resolveLanguageTarget('klingon'),
    (e: unknown) => e instanceof AhaError && /'klingon'/.test(e.message),
  );
  assert.throws(
    () => languageRewardFromOptions({ target: 'en', trget: 1 }, 'r.yaml: rewards[2]'),
    /r\.yaml: rewards\[2\]\.options: unknown option 'trget'/,
  );
  assert.throws(
    () => languageRewardFromOptions({ target: 'xx' }, 'r.yaml: rewards[2]'),
    /rewards\[2\]\.options\.target: .*'xx'/,
  );
});
