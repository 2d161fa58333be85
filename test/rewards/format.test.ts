import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReward, hasValidFormat, extractTaggedAnswer } from '../../src/rewards/format.ts';

const ctx = { prompt: 'A conversation between User and Assistant. ... User: 1+1? Assistant:' };

test('strict: the R1-Zero template output', () => {
  const strict = formatReward({ mode: 'strict' });
  const yes = [
    '<think> 1 plus 1 is 2 </think> <answer> 2 </answer>',
    ' <think>\nreasoning\n</think>\n\n<answer>\n2\n</answer>\n',
  ];
  const no = [
    '<think> r </think> <answer> 2 </answer> extra', // text after the answer
    'So: <think> r </think> <answer> 2 </answer>', // text before the think block
    '<think> r </think> between <answer> 2 </answer>', // text between the blocks
    '<think> r </think>', // no answer block
    '<answer> 2 </answer>', // no think block
    '<think> r <think> again </think> <answer> 2 </answer>', // a second <think>
    '<think> r </think> <answer> 1 </answer><answer> 2 </answer>', // two answer blocks
    '<think>   </think> <answer> 2 </answer>', // empty reasoning
    '<think> r </think> <answer>  </answer>', // empty answer
    '<think> r </think> <answer> 2', // truncated
    ' r </think> <answer> 2 </answer>', // opening tag missing (template without prefill)
  ];
  for (const c of yes) assert.equal(strict(c, {}, ctx), 1, c);
  for (const c of no) assert.equal(strict(c, {}, ctx), 0, c);
});

test('strict with prefilledThink: the prompt already opened <think>', () => {
  const o = { mode: 'strict' as const, prefilledThink: true };
  assert.equal(hasValidFormat('reasoning\n</think>\n<answer>2</answer>', o), true);
  assert.equal(hasValidFormat('<think>reasoning</think><answer>2</answer>', o), false); // <think> twice
  assert.equal(hasValidFormat('reasoning <answer>2</answer>', o), false);
});

test("think: the paper's / TRL's <think>...</think> then the answer", () => {
  const think = formatReward({ mode: 'think' });
  assert.equal(think('<think>\nlet me see\n</think>\nThe answer is \\boxed{2}.', {}, ctx), 1);
  assert.equal(think('<think>r</think>', {}, ctx), 1); // TRL accepts an empty answer
  assert.equal(think('\n<think>r</think> 2', {}, ctx), 1); // leading whitespace allowed
  assert.equal(think('The answer <think>r</think> 2', {}, ctx), 0); // must open with <think>
  assert.equal(think('<think>r <think>s</think> 2', {}, ctx), 0); // a second <think>
  assert.equal(think('<think>never closed', {}, ctx), 0);
  assert.equal(hasValidFormat('<think>r</think>  ', { mode: 'think', requireAnswer: true }), false);
  assert.equal(hasValidFormat('<think>r</think> 2', { mode: 'think', requireAnswer: true }), true);
  assert.equal(hasValidFormat('r</think> 2', { mode: 'think', prefilledThink: true }), true);
  assert.equal(hasValidFormat('r 2', { mode: 'think', prefilledThink: true }), false);
});

test('extractTaggedAnswer: the last complete <answer> block, trimmed', () => {
  assert.equal(extractTaggedAnswer('<think>x</think><answer> 42 </answer>'), '42');
  assert.equal(extractTaggedAnswer('<answer>1</answer> wait, no <answer>\n2\n</answer>'), '2');
  assert.equal(extractTaggedAnswer('<answer>1</answer> <answer>2'), '1'); // last block is not closed
  assert.equal(extractTaggedAnswer('<answer>a <answer>b</answer>'), 'b');
  assert.equal(extractTaggedAnswer('no tags'), null);
  assert.equal(extractTaggedAnswer('2</answer>'), null);
  assert.equal(extractTaggedAnswer('<answer></answer>'), '');
});
