import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyFilters,
  buildFilters,
  codeBlockFilter,
  lengthFilter,
  longParagraphFilter,
  missingSummaryFilter,
  mixedLanguageFilter,
  repetitionFilter,
  shortReasoningFilter,
} from '../../src/r1/filters.ts';
import { AhaError } from '../../src/errors.ts';

const readable = '<think>\nFirst add 7 and 8 to get 15.\nThen subtract 9: 6.\n</think>\nThe answer is 6.';
const keep = (
  f: { test: (s: { completion: string; tokens?: number | null }) => { keep: boolean; reason: string | null } },
  completion: string,
  tokens?: number,
) => f.test({ completion, tokens });

test('mixed language: drops a chain of thought below the threshold, keeps pure and math-only ones', () => {
  const f = mixedLanguageFilter({ target: 'en', threshold: 0.9 });
  assert.equal(f.name, 'mixed_language');
  assert.deepEqual(keep(f, readable), { keep: true, reason: null });
  assert.deepEqual(keep(f, '<think>7+8=15\n=15-9\n=6</think> <answer>6</answer>'), { keep: true, reason: null });
  // 4 Latin words (First, add, and, then) of 8 (4 Han characters).
  const v = keep(f, '<think>First 我们 add 7 and 8, then 得到 15.</think> The answer is 15.');
  assert.equal(v.keep, false);
  assert.match(v.reason!, /4 of 8 words in en \(0\.50 < 0\.9\)/);
  // Chinese outside the chain of thought does not count.
  assert.equal(keep(f, '<think>add them</think> 答案是十五').keep, true);
});

test('long paragraphs: any paragraph over the limit drops the sample', () => {
  const f = longParagraphFilter({ maxChars: 50 });
  assert.equal(keep(f, readable).keep, true);
  const long = `<think>\n${'word '.repeat(20)}\n\nshort\n</think>\nok`;
  const v = keep(f, long);
  assert.equal(v.keep, false);
  assert.match(v.reason!, /paragraph of 99 characters \(over 50\)/);
  // The same words split by blank lines pass.
  assert.equal(
    keep(f, `<think>\n${'word '.repeat(8)}\n\n${'word '.repeat(8)}\n\n${'word '.repeat(4)}\n</think>\nok`).keep,
    true,
  );
  assert.throws(() => longParagraphFilter({ maxChars: 0 }), AhaError);
});

test('code blocks: a ``` or ~~~ fence drops, inline backticks do not', () => {
  const f = codeBlockFilter();
  assert.equal(keep(f, readable).keep, true);
  assert.equal(keep(f, '<think>use `x` here</think> ok').keep, true);
  assert.deepEqual(keep(f, '<think>\n```python\nprint(1)\n```\n</think> ok'), {
    keep: false,
    reason: 'contains a code block (``` fence)',
  });
  assert.equal(keep(f, 'text\n  ~~~\ncode\n~~~').keep, false);
});

test('length bounds: characters and tokens, both ends inclusive; tokens counted when unknown', () => {
  const chars = lengthFilter({ minChars: 5, maxChars: 10 });
  assert.equal(keep(chars, '12345').keep, true);
  assert.equal(keep(chars, '1234567890').keep, true);
  assert.match(keep(chars, '1234').reason!, /4 characters \(under 5\)/);
  assert.match(keep(chars, '12345678901').reason!, /11 characters \(over 10\)/);
  const tokens = lengthFilter({ minTokens: 2, maxTokens: 3 });
  assert.equal(keep(tokens, 'anything', 3).keep, true);
  assert.match(keep(tokens, 'anything', 4).reason!, /4 tokens \(over 3\)/);
  assert.match(keep(tokens, 'anything', 1).reason!, /1 tokens \(under 2\)/);
  assert.throws(() => keep(tokens, 'no count'), /no token count/);
  const counted = lengthFilter({ maxTokens: 3, countTokens: (t) => t.split(' ').length });
  assert.equal(keep(counted, 'a b c').keep, true);
  assert.equal(keep(counted, 'a b c d').keep, false);
});

test('repetition: a repeated line, a repeated n-gram, or a back-to-back loop drops; ordinary reasoning is kept', () => {
  const f = repetitionFilter();
  assert.equal(keep(f, readable).keep, true);
  assert.equal(
    keep(
      f,
      '<think>\n7+8+6-9+4\n=15+6-9+4\n=21-9+4\n=12+4\n=16\nlet me check: 7+8=15, 15+6=21, 21-9=12, 12+4=16. ok.\n</think> <answer>16</answer>',
    ).keep,
    true,
  );
  const lines = keep(
    f,
    '<think>\nwait, let me redo it.\nwait, let me redo it.\nwait, let me redo it.\nwait, let me redo it.\n</think> x',
  );
  assert.equal(lines.keep, false);
  assert.match(lines.reason!, /the line "wait, let me redo it\." repeats 4 times/);
  const grams = keep(f, `<think>${'so the next value is one more than before '.repeat(4)}</think> x`);
  assert.equal(grams.keep, false);
  assert.match(grams.reason!, /8-word sequence .* repeats 4 times/);
  const loop = keep(f, '<think>=12' + '=12'.repeat(20) + '</think>');
  assert.equal(loop.keep, false);
  assert.match(loop.reason!, /"=12" repeated/);
  // Punctuation rules (no letter or digit) are not loops.
  assert.equal(keep(f, `<think>a\n${'-'.repeat(80)}\nb</think> ok`).keep, true);
});

test('short reasoning: a chain of thought with fewer lines than the minimum drops, even with a right answer', () => {
  const f = shortReasoningFilter({ minLines: 4 });
  assert.equal(keep(f, ' <think>\n7+8-9\n=15-9\n=6\nthe answer is 6.\n</think>\nthe answer is 6.').keep, true);
  assert.deepEqual(keep(f, ' <think>\n7+8-9\n\n</think>\nthe answer is 6.'), {
    keep: false,
    reason: 'a chain of thought of 1 line (under 4)',
  });
  assert.equal(keep(f, '<think>a\nb\nc</think> x').reason, 'a chain of thought of 3 lines (under 4)');
  assert.throws(() => shortReasoningFilter({ minLines: 0 }), AhaError);
});

test('missing summary: no </think>, nothing after it, or no answer in it drops', () => {
  const f = missingSummaryFilter();
  assert.equal(keep(f, readable).keep, true);
  assert.equal(keep(f, ' <think>\n7+8\n=15\n</think> <answer>15</answer>').keep, true);
  assert.deepEqual(keep(f, '<think>still thinking'), { keep: false, reason: 'no </think>: the reasoning never ends' });
  assert.deepEqual(keep(f, '<think>done</think>  \n'), { keep: false, reason: 'nothing after </think>' });
  assert.deepEqual(keep(f, '<think>done</think> <answer></answer>'), { keep: false, reason: 'nothing after </think>' });
  assert.deepEqual(keep(f, '<think>done</think> I hope this helps.'), {
    keep: false,
    reason: 'the summary states no answer',
  });
  assert.equal(
    keep(missingSummaryFilter({ requireAnswer: false }), '<think>done</think> I hope this helps.').keep,
    true,
  );
});

test('applyFilters reports the first filter that drops; buildFilters follows the config', () => {
  const filters = buildFilters(
    { language_threshold: 0.9, max_paragraph_chars: 100, min_chars: 10 },
    { language: 'en' },
  );
  assert.deepEqual(
    filters.map((f) => f.name),
    ['mixed_language', 'long_paragraph', 'code_block', 'length', 'repetition', 'missing_summary'],
  );
  assert.deepEqual(
    buildFilters({ min_reasoning_lines: 2 }).map((f) => f.name),
    ['mixed_language', 'long_paragraph', 'code_block', 'short_reasoning', 'repetition', 'missing_summary'],
  );
  assert.deepEqual(applyFilters(filters, { completion: readable }), { keep: true, reason: null, filter: null });
  // Mixed language and a code block: mixed_language comes first.
  const both = applyFilters(filters, { completion: '<think>我们 我们 ok\n```\nx\n```\n</think> The answer is 1.' });
  assert.equal(both.filter, 'mixed_language');
  assert.equal(
    applyFilters(filters, { completion: '<think>ok\n```\nx\n```\n</think> The answer is 1.' }).filter,
    'code_block',
  );
  const off = buildFilters({
    language_threshold: 0,
    max_paragraph_chars: null,
    drop_code_blocks: false,
    drop_repetition: false,
    require_summary: false,
  });
  assert.deepEqual(off, []);
  assert.throws(() => buildFilters({ drop_code_block: true } as never), /drop_code_block/);
});
