import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import {
  DEFAULT_STRATEGIES,
  extractAnswer,
  lastBoxed,
  looksLikeAnswer,
  mathSpans,
  readAnswer,
  type AnswerStrategy,
} from '../../src/verify/extractAnswer.ts';

describe('lastBoxed', () => {
  it('takes the last box, with nested braces', () => {
    assert.equal(lastBoxed('first \\boxed{1} then \\boxed{\\frac{\\sqrt{3}}{2}}.'), '\\frac{\\sqrt{3}}{2}');
    assert.equal(lastBoxed('$\\boxed{\\{1, 2\\}}$'), '\\{1, 2\\}');
    assert.equal(
      lastBoxed('\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}'),
      '\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}',
    );
  });

  it('reads \\fbox, \\framebox and the unbraced \\boxed 5 form', () => {
    assert.equal(lastBoxed('so \\fbox{12} minutes'), '12');
    assert.equal(lastBoxed('or $\\framebox{204}$ minutes'), '204');
    assert.equal(lastBoxed('hence \\boxed 5.'), '5');
    assert.equal(lastBoxed('hence $\\boxed 5$'), '5');
  });

  it('skips a truncated last box and empty boxes; null when there is none', () => {
    assert.equal(lastBoxed('ok \\boxed{12} then cut off \\boxed{1'), '12');
    assert.equal(lastBoxed('\\boxed{3} and \\boxed{}'), '3');
    assert.equal(lastBoxed('no box here'), null);
    assert.equal(lastBoxed('\\boxedx{3}'), null);
  });
});

describe('extractAnswer', () => {
  it('reports the rule that matched', () => {
    const cases: [string, string, AnswerStrategy][] = [
      ['<think>try \\boxed{3}</think>\n<answer>5</answer>', '5', 'answerTag'],
      ['<answer> The answer is \\boxed{\\frac12} </answer>', '\\frac12', 'answerTag'],
      ['<answer>The final answer is 12</answer>', '12', 'answerTag'],
      ['**Final Answer**\n\\[\n\\boxed{\\dfrac{14}{3}}\n\\]', '\\dfrac{14}{3}', 'boxed'],
      ['She makes 9 * 2 = $18 every day.\n#### 18', '18', 'gsm8k'],
      ['#### 1,234', '1,234', 'gsm8k'],
      ['Therefore, the answer is $\\frac{3}{4}$.', '\\frac{3}{4}', 'answerIs'],
      ['The final answer is 3.5.', '3.5', 'answerIs'],
      ['So the answer is: (C). Done', '(C)', 'answerIs'],
      ['**Answer:** 42', '42', 'answerIs'],
      ['Answer: x = 7\nbecause ...', 'x = 7', 'answerIs'],
      ['So we get 3, then 4, and finally 1,250 apples', '1,250', 'lastNumber'],
      ['The value is -0.75', '-0.75', 'lastNumber'],
      ['Answer $ 9 $', '9', 'latex'],
      ['First $x = 3$, then\n$$y = \\frac{1}{2}$$ done', 'y = \\frac{1}{2}', 'latex'],
      ['So \\(2+2\\) is \\[4\\]', '4', 'latex'],
      ['We solve: \\begin{align*} x &= 2+3 \\\\ &= 5 \\end{align*}', '5', 'latex'],
      ['She pays $18 and $5 later, so 5', '5', 'lastNumber'],
      ['x^2 + 1', 'x^2 + 1', 'expression'],
      ['1,000', '1,000', 'expression'],
      ['5\\text{ meters}', '5\\text{ meters}', 'expression'],
      ['\\begin{pmatrix}1\\\\2\\end{pmatrix}', '\\begin{pmatrix}1\\\\2\\end{pmatrix}', 'expression'],
      ['Evelyn', 'Evelyn', 'expression'],
      ['I think it is 3/4', '3/4', 'lastNumber'],
    ];
    for (const [text, answer, rule] of cases) {
      const e = extractAnswer(text);
      assert.deepEqual(e, { answer, rule }, text);
    }
  });

  it('an <answer> block without a closing tag does not count', () => {
    assert.deepEqual(extractAnswer('<answer>5', { strategies: ['answerTag'] }), {
      answer: null,
      rule: null,
      reason: 'no answer found by answerTag',
    });
  });

  it('returns null with a reason when nothing matches', () => {
    const e = extractAnswer('I do not know.');
    assert.equal(e.answer, null);
    assert.equal(e.rule, null);
    assert.match((e as { reason: string }).reason, /no answer found/);
    assert.equal((extractAnswer('') as { reason: string }).reason, 'empty output');
  });

  it('priority order is configurable', () => {
    const text = 'Work: \\boxed{7}. The answer is 8.\n#### 9';
    assert.equal(extractAnswer(text).answer, '7');
    assert.deepEqual(extractAnswer(text, { strategies: ['answerIs', 'boxed'] }), { answer: '8', rule: 'answerIs' });
    assert.deepEqual(extractAnswer(text, { strategies: ['gsm8k'] }), { answer: '9', rule: 'gsm8k' });
    assert.deepEqual(extractAnswer('just 3 and 4', { strategies: ['boxed'] }).answer, null);
    assert.deepEqual(DEFAULT_STRATEGIES, [
      'answerTag',
      'boxed',
      'gsm8k',
      'answerIs',
      'latex',
      'expression',
      'lastNumber',
    ]);
  });

  it('an unknown strategy is an AhaError', () => {
    assert.throws(() => extractAnswer('x', { strategies: ['boxd' as AnswerStrategy] }), AhaError);
  });

  it('stays linear on long adversarial outputs', () => {
    const text = '<answer>'.repeat(20000) + '\\boxed{'.repeat(20000) + ' the answer is '.repeat(5000);
    const e = extractAnswer(text);
    assert.equal(e.answer, null);
    const spans = '\\('.repeat(20000) + '\\['.repeat(20000) + '\\begin{align}'.repeat(5000) + '$$'.repeat(20000) + ' 7';
    assert.deepEqual(readAnswer(spans), { answer: '7', rule: 'lastNumber' });
  });
});

describe('mathSpans and looksLikeAnswer', () => {
  it('finds every kind of math span in order; an escaped \\$ is no delimiter', () => {
    assert.deepEqual(mathSpans('a $x$ b $$y$$ c \\(z\\) d \\[w\\] e \\$5 f'), ['x', 'y', 'z', 'w']);
    assert.deepEqual(mathSpans('\\begin{equation} a = 1 \\end{equation}'), [' a = 1 ']);
    assert.deepEqual(mathSpans('an unclosed $ sign'), []);
  });

  it('tells a bare answer from prose', () => {
    for (const s of ['x^2+1', '\\frac{1}{2}', '5 cm', '(C)', 'Evelyn', '\\text{north east}', '1 \\text{ or } 2'])
      assert.equal(looksLikeAnswer(s), true, s);
    for (const s of ['The value is 5', 'it is 3/4', '18 and', 'so we get 5', ''])
      assert.equal(looksLikeAnswer(s), false, s);
  });
});

describe('readAnswer', () => {
  it('reads a bare answer whole, unwrapping only explicit markers', () => {
    assert.deepEqual(readAnswer('1,000', { mode: 'answer' }), { answer: '1,000', rule: 'whole' });
    assert.deepEqual(readAnswer('$9$', { mode: 'answer' }), { answer: '$9$', rule: 'whole' });
    assert.deepEqual(readAnswer('\\boxed{9}', { mode: 'answer' }), { answer: '9', rule: 'boxed' });
    assert.deepEqual(readAnswer('The sum is 3 and 4', { mode: 'answer' }), {
      answer: 'The sum is 3 and 4',
      rule: 'whole',
    });
    assert.equal(readAnswer('  ', { mode: 'answer' }).answer, null);
  });

  it('reads a completion with the default priority order', () => {
    assert.deepEqual(readAnswer('so the answer is $\\boxed{\\frac{3}{56}}$.'), {
      answer: '\\frac{3}{56}',
      rule: 'boxed',
    });
    assert.deepEqual(readAnswer('The sum is 3 and 4'), { answer: '4', rule: 'lastNumber' });
  });
});
