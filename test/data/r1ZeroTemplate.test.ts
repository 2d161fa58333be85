import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  R1_SPECIAL_TOKENS,
  R1_ZERO_TEMPLATE,
  r1ZeroCompletion,
  r1ZeroPrompt,
  r1ZeroShortPrompt,
} from '../../src/data/r1ZeroTemplate.ts';
import { AhaError } from '../../src/errors.ts';

// Copied character for character from the paper (arXiv 2501.12948 v1, Table 1), as quoted in R1-NOTES.md.
const PAPER =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: prompt. Assistant:';

test('the R1-Zero template is the paper string verbatim', () => {
  assert.equal(R1_ZERO_TEMPLATE, PAPER);
  assert.equal(r1ZeroPrompt('prompt'), PAPER);
});

test('r1ZeroPrompt puts the question in place of the placeholder only', () => {
  const q = 'What is $1 + 2$? prompt';
  const p = r1ZeroPrompt(q);
  assert.equal(p, PAPER.slice(0, PAPER.length - 'prompt. Assistant:'.length) + q + '. Assistant:');
  assert.ok(p.startsWith('A conversation between User and Assistant.'));
  assert.ok(p.endsWith(`User: ${q}. Assistant:`));
});

test('the short template is the closing of the paper template', () => {
  assert.equal(r1ZeroShortPrompt('7+8-2'), 'User: 7+8-2. Assistant:');
  assert.ok(PAPER.endsWith(r1ZeroShortPrompt('prompt')));
});

test('r1ZeroCompletion writes the tagged format', () => {
  assert.equal(r1ZeroCompletion('7+8\n=15', '15'), ' <think>\n7+8\n=15\n</think> <answer>15</answer>');
  assert.deepEqual([...R1_SPECIAL_TOKENS], ['<think>', '</think>', '<answer>', '</answer>', '<|endoftext|>']);
});

test('an empty question is an AhaError', () => {
  assert.throws(() => r1ZeroPrompt(''), AhaError);
  assert.throws(() => r1ZeroShortPrompt('  '), AhaError);
});
