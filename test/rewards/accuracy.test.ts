import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { accuracyReward, DEFAULT_ACCURACY_STRATEGIES } from '../../src/rewards/accuracy.ts';
import { accuracyReward as registered } from '../../src/rl/rewardRegistry.ts';

const ctx = { prompt: '' };

describe('accuracyReward (src/rewards/accuracy.ts)', () => {
  it('is the reward the registry builds by name', () => {
    assert.equal(registered, accuracyReward);
    assert.deepEqual(DEFAULT_ACCURACY_STRATEGIES, ['answerTag', 'boxed']);
  });

  it('reads real model output: the reference and the answer go through the same reader', async () => {
    const r = accuracyReward();
    const cases: [string, string, number][] = [
      ['so the answer is $\\boxed{\\frac{3}{56}}$.', '$\\frac{3}{56}$', 1],
      ['so the answer is $\\boxed{\\frac{3}{65}}$.', '$\\frac{3}{56}$', 0],
      ['<think>try \\boxed{7}</think><answer>$9$</answer>', '\\boxed{9}', 1],
      ['<think>try \\boxed{7}</think><answer>$9$</answer>', '7', 0],
      ['<answer>1000,99</answer>', '1000.99', 1],
      ['<answer>x \\geq 5</answer>', '[5, \\infty)', 1],
      ['<answer>x > 5</answer>', '[5, \\infty)', 0],
      ['<answer>k = \\dfrac{1}{3}</answer>', '1/3', 1],
      ['<answer>\\left( 1, 4.5 \\right)</answer>', '(1, \\frac{9}{2})', 1],
      ['<answer>5\\text{ meters}</answer>', '5', 1],
    ];
    for (const [completion, answer, want] of cases)
      assert.equal(await r(completion, { answer }, ctx), want, `${completion} vs ${answer}`);
  });

  it('default rules need a tag or a box; other rules are opt-in', async () => {
    assert.equal(await accuracyReward()('the answer is 4', { answer: '4' }, ctx), 0);
    assert.equal(await accuracyReward({ strategies: ['answerIs'] })('the answer is 4', { answer: '4' }, ctx), 1);
    assert.equal(await accuracyReward({ strategies: ['latex'] })('Answer $ 9 $', { answer: 9 }, ctx), 1);
  });

  it('a task check decides on the extracted answer; no reference answer is an error', async () => {
    const seen: string[] = [];
    const r = accuracyReward({ check: (a) => (seen.push(a), a === 'ok') });
    assert.equal(await r('<answer> ok </answer>', {}, ctx), 1);
    assert.deepEqual(seen, ['ok']);
    await assert.rejects(
      Promise.resolve(accuracyReward()('<answer>4</answer>', { question: 'q' }, ctx)),
      /no reference/,
    );
  });

  it('a pathological answer scores 0 within its time budget instead of hanging', async () => {
    const r = accuracyReward({ timeoutMs: 200 });
    const huge = `<answer>${'(x+'.repeat(300)}1${')'.repeat(300)}</answer>`;
    assert.equal(await r(huge, { answer: 'x' }, ctx), 0);
    const tower = '<answer>2^{2^{2^{2^{2^{2^{2^{2^{2}}}}}}}}</answer>';
    assert.equal(await r(tower, { answer: '2' }, ctx), 0);
  });
});
