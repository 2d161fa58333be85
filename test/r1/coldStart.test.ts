import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  buildColdStartData,
  extractReasoning,
  renderReadable,
  renderSummary,
  rewriteReadable,
} from '../../src/r1/coldStart.ts';
import { buildFilters } from '../../src/r1/filters.ts';
import { answerVerifier, type ReasoningProblem } from '../../src/r1/rejectionSampling.ts';
import type { Generation } from '../../src/eval/generators.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-cs-'));
after(() => rmSync(root, { recursive: true, force: true }));

const PROMPT = 'User: 7+8-9. Assistant:';
const r1Zero = ' <think>\n7+8-9\n=15-9\n=6\n</think> <answer>6</answer>';

test('the reasoning of R1-Zero, prefilled, untagged and messy outputs', () => {
  assert.equal(extractReasoning(r1Zero), '7+8-9\n=15-9\n=6');
  assert.equal(extractReasoning('7+8-9\n=6\n</think> <answer>6</answer>'), '7+8-9\n=6');
  assert.equal(extractReasoning('7+8-9\n=15-9\n=6 <answer>6</answer>'), '7+8-9\n=15-9\n=6');
  assert.equal(extractReasoning('<think>a   \n\n\n\nb <answer>x</answer>\n</think>'), 'a\n\nb x');
  assert.equal(extractReasoning(' <think> </think> <answer>6</answer>'), '');
});

test("rewriting into the model's own readable format: <think> reasoning </think> then the summary", () => {
  assert.deepEqual(rewriteReadable(r1Zero, { prompt: PROMPT }), {
    completion: ' <think>\n7+8-9\n=15-9\n=6\n</think>\nThe answer is 6.',
  });
  // A prompt that opened the block (R1's chat template) gets the rest only; other prompts no leading space.
  assert.equal(renderReadable('<|Assistant|><think>\n', 'r', 's'), 'r\n</think>\ns');
  assert.equal(renderReadable('Question: q\n', 'r', 's'), '<think>\nr\n</think>\ns');
  // {final_line}: the reasoning's last line.
  assert.equal(
    renderSummary('{final_line}\nSo the answer is \\boxed{{answer}}.', '6', '7+8-9\n=15-9\n=6'),
    '=6\nSo the answer is \\boxed{6}.',
  );
  assert.deepEqual(
    rewriteReadable(' <think>\n7+8-9\n=6\nso the answer is 6.\n</think> <answer>6</answer>', { prompt: PROMPT }),
    { completion: ' <think>\n7+8-9\n=6\n</think>\nThe answer is 6.' },
  );
  // Only a line that restates the verified answer goes; a lone line stays.
  assert.deepEqual(
    rewriteReadable(' <think>\nthe answer is 5, or 6\n=6\n</think> <answer>6</answer>', { prompt: PROMPT }),
    { completion: ' <think>\nthe answer is 5, or 6\n=6\n</think>\nThe answer is 6.' },
  );
  assert.deepEqual(rewriteReadable(' <think>the answer is 6</think> <answer>6</answer>', { prompt: PROMPT }), {
    completion: ' <think>\nthe answer is 6\n</think>\nThe answer is 6.',
  });
  assert.deepEqual(rewriteReadable(' <think></think> <answer>6</answer>', { prompt: PROMPT }), {
    drop: 'no_reasoning',
  });
  assert.deepEqual(rewriteReadable(' <think>x</think> no idea', { prompt: PROMPT }), { drop: 'no_answer' });
});

test('cold-start data: correct samples rewritten, unreadable and unverifiable ones dropped and counted, JSONL with provenance', async () => {
  const problems: ReasoningProblem[] = [
    { id: 'a', question: '7+8-9', answer: '6', prompt: PROMPT },
    { id: 'b', question: '2+2', answer: '4', prompt: 'User: 2+2. Assistant:' },
  ];
  const g = (text: string): Generation => ({ text, tokens: text.length, finishReason: 'stop' });
  const samples = new Map<string, Generation[]>([
    [
      'a',
      [
        g(r1Zero), // kept
        g(' <think>\n7+8-9\n=15-9\n=7\n</think> <answer>7</answer>'), // incorrect
        g(` <think>\n${'=6 and again '.repeat(6)}\n</think> <answer>6</answer>`), // repetition (after the rewrite)
        g(' <think>7+8-9 =  6</think><answer>6</answer>'), // correct, kept only if the cap allowed
      ],
    ],
    [
      'b',
      [
        g(' <think></think> <answer>4</answer>'), // correct, but no reasoning to keep
        g('2+2\n=4\nthe answer is 4'), // untagged, correct: rewritten into the format
      ],
    ],
  ]);
  const out = join(root, 'cold.jsonl');
  const reportPath = join(root, 'cold_report.json');
  const r = await buildColdStartData({
    problems,
    samples,
    verify: answerVerifier(),
    filters: buildFilters({}, { language: 'en' }),
    maxPerPrompt: 1,
    source: 'samples of runs/r1zero/final',
    out,
    reportPath,
  });
  assert.equal(r.records.length, 2);
  assert.deepEqual(r.counts, {
    samples: 6,
    incorrect: 1,
    duplicates: 0,
    over_cap: 1,
    kept: 2,
    dropped: {
      mixed_language: 0,
      long_paragraph: 0,
      code_block: 0,
      repetition: 1,
      missing_summary: 0,
      no_reasoning: 1,
    },
  });
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], {
    prompt: PROMPT,
    completion: ' <think>\n7+8-9\n=15-9\n=6\n</think>\nThe answer is 6.',
    problem_id: 'a',
    sample: 0,
    source: 'samples of runs/r1zero/final',
    format: 'cold_start',
  });
  // The untagged sample's last line only restated the answer: the summary replaces it.
  assert.equal(lines[1].completion, ' <think>\n2+2\n=4\n</think>\nThe answer is 4.');
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  assert.deepEqual(report.counts, r.counts);
  assert.deepEqual(report.prompt_ids, ['a', 'b']);

  // A summary the answer rules cannot read makes every rewrite unverifiable: dropped, counted.
  const bad = await buildColdStartData({
    problems,
    samples,
    verify: answerVerifier(),
    filters: [],
    maxPerPrompt: 1,
    source: 's',
    summaryTemplate: 'Result: {answer}',
  });
  assert.equal(bad.records.length, 0);
  assert.equal(bad.counts.dropped.rewrite_unverifiable, 4);
  await assert.rejects(
    buildColdStartData({
      problems,
      samples,
      verify: answerVerifier(),
      filters: [],
      maxPerPrompt: 1,
      source: 's',
      summaryTemplate: 'no slot',
    }),
    AhaError,
  );
});
