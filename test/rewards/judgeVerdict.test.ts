import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { judgementText, parseScore, parseVerdict } from '../../src/rewards/judgeVerdict.ts';
import { JUDGE_TEMPLATES, renderJudgePrompt, resolveJudgeTemplate } from '../../src/rewards/judgeTemplates.ts';
import { AhaError } from '../../src/errors.ts';

/** [reply, verdict (1 correct, 0 incorrect), shape] */
const VERDICTS: [string, number, string][] = [
  ['Verdict: correct', 1, 'label'],
  ['Verdict: incorrect', 0, 'label'],
  ['verdict:CORRECT.', 1, 'label'],
  ['The final answer 1/2 equals 0.5.\n\nVerdict: correct\n\nThe response shows its work.', 1, 'label'],
  ['Reference answer: 5\nResponse answer: 6\n\nVerdict: incorrect', 0, 'label'],
  ['Verdict: correct\n\nNote: there is no doubt.', 1, 'label'],
  ['The reasoning has a wrong step, but\nVerdict: correct', 1, 'label'],
  ['Verdict: Not equivalent', 0, 'label'],
  ['Verdict: not correct', 0, 'label'],
  ['Verdict: the response is incorrect', 0, 'label'],
  ['Judgement: EQUIVALENT', 1, 'label'],
  ['Final judgment - wrong', 0, 'label'],
  ['The answer is correct.', 1, 'label'],
  ['Answer: No', 0, 'label'],
  ['Equivalent: yes', 1, 'label'],
  ['Grade: A', 1, 'label'],
  ['Verdict: B', 0, 'label'],
  ['Verdict: (A)', 1, 'label'],
  ['[[A]]', 1, 'brackets'],
  ['[[B]]', 0, 'brackets'],
  ['My final verdict is [[C]].', 0, 'brackets'],
  ['Both answers are 12. [[Yes]]', 1, 'brackets'],
  ['Final Verdict: [[B]]', 0, 'brackets'],
  ['\\boxed{\\text{Yes}}', 1, 'boxed'],
  ['\\boxed{incorrect}', 0, 'boxed'],
  ['**Yes**', 1, 'bold'],
  ['**No**, the answer differs.', 0, 'bold'],
  ['Explanation: the response says 7.\nVerdict: **incorrect**', 0, 'bold'],
  ['Comparing 3/4 with 0.75: __Correct__', 1, 'bold'],
  ['{"verdict": "correct"}', 1, 'json'],
  ['{"is_correct": false}', 0, 'json'],
  ['{"equivalent": 1, "reason": "same"}', 1, 'json'],
  ['```json\n{"verdict": "incorrect", "explanation": "5 != 6"}\n```', 0, 'json'],
  ['Here is my judgement:\n{"judgement": "A"}', 1, 'json'],
  ['Yes', 1, 'first_word'],
  ['No.', 0, 'first_word'],
  ['Correct.', 1, 'first_word'],
  ['correct', 1, 'first_word'],
  ['Incorrect — the response says 5.', 0, 'first_word'],
  ['Yes, both are 1/2.', 1, 'first_word'],
  ['The response computes 2+2 and gets 4, as the reference does.\nCorrect', 1, 'first_word'],
  // A reasoning judge: only the text after </think> counts.
  ['<think>is 0.5 = 1/2? no wait, yes</think>\nVerdict: correct', 1, 'label'],
  ['<think>Verdict: correct? Let me check again.</think>\n\nVerdict: incorrect', 0, 'label'],
  // The last explicit verdict wins: judges conclude last.
  ['Verdict: incorrect... on reflection the forms agree.\nVerdict: correct', 1, 'label'],
];

const UNREADABLE: [string, RegExp][] = [
  ['', /empty/],
  ['   \n ', /empty/],
  ['<think>never ends', /unclosed <think>/],
  ['I cannot tell.', /no verdict/],
  ['A response is given', /no verdict/],
  ['There is no doubt it matches', /no verdict/],
  ['Rating: [[8]]', /no verdict/],
  ['Verdict: maybe', /no verdict/],
];

describe('parseVerdict', () => {
  for (const [reply, verdict, shape] of VERDICTS) {
    it(`${JSON.stringify(reply)} -> ${verdict ? 'correct' : 'incorrect'} (${shape})`, () => {
      const r = parseVerdict(reply);
      assert.deepEqual(r, { ok: true, score: verdict, value: verdict, shape });
    });
  }
  for (const [reply, why] of UNREADABLE) {
    it(`${JSON.stringify(reply)} is unreadable`, () => {
      const r = parseVerdict(reply);
      assert.equal(r.ok, false);
      assert.match((r as { why: string }).why, why);
    });
  }
});

/** [reply, rating on 1..10, shape]; the score is (rating - 1) / 9. */
const SCORES: [string, number, string][] = [
  ['Score: 7/10', 7, 'label'],
  ['Rating: [[8]]', 8, 'label'],
  ['Rating: 8', 8, 'label'],
  ['Rating [[3]]', 3, 'label'],
  ['score = 7', 7, 'label'],
  ['Overall score: 7.5', 7.5, 'label'],
  ['**Score:** 7', 7, 'label'],
  ['**Score**: 6/10', 6, 'label'],
  ['My rating is 9 out of 10.', 9, 'label'],
  ['The response is helpful and accurate.\n\nRating: [[8]]\n\n(10/10 would need sources.)', 8, 'label'],
  ['It would score 10 with more detail. Score: 6', 6, 'label'],
  ['The answer 3/4 is right. Rating: 9', 9, 'label'],
  ['<think>a 3? maybe 4</think> Rating: [[4]]', 4, 'label'],
  ['Rating: [[1]]', 1, 'label'],
  ['Rating: [[10]]', 10, 'label'],
  ['[[8]]', 8, 'brackets'],
  ['Final: [[6/10]]', 6, 'brackets'],
  ['**8/10**', 8, 'fraction'],
  ['8/10', 8, 'fraction'],
  ['I would give this 7 out of 10.', 7, 'fraction'],
  ['{"score": 7}', 7, 'json'],
  ['{"rating": "9/10"}', 9, 'json'],
  ['```json\n{"explanation": "clear", "score": 5}\n```', 5, 'json'],
  ['7', 7, 'bare'],
  ['**7**', 7, 'bare'],
  ['[5]', 5, 'bare'],
];

describe('parseScore', () => {
  for (const [reply, rating, shape] of SCORES) {
    it(`${JSON.stringify(reply)} -> ${rating} (${shape})`, () => {
      assert.deepEqual(parseScore(reply), { ok: true, score: (rating - 1) / 9, value: rating, shape });
    });
  }
  it('maps other scales linearly; a total other than the scale maximum is unreadable', () => {
    assert.deepEqual(parseScore('Score: 4/5', [1, 5]), { ok: true, score: 0.75, value: 4, shape: 'label' });
    assert.deepEqual(parseScore('Score: 0', [0, 100]), { ok: true, score: 0, value: 0, shape: 'label' });
    const r = parseScore('Score: 4/5');
    assert.equal(r.ok, false);
    assert.match((r as { why: string }).why, /out of 5, not out of 10/);
  });
  for (const [reply, why] of [
    ['Score: 11', /11 is outside 1\.\.10/],
    ['Score: 0', /0 is outside 1\.\.10/],
    ['Rating: [[-2]]', /-2 is outside/],
    ['no idea', /no rating/],
    ['The response is fine.', /no rating/],
    ['', /empty/],
    ['<think>rating 7', /unclosed/],
  ] as [string, RegExp][]) {
    it(`${JSON.stringify(reply)} is unreadable`, () => {
      const r = parseScore(reply);
      assert.equal(r.ok, false);
      assert.match((r as { why: string }).why, why);
    });
  }
});

describe('judge templates', () => {
  it('the text after the reasoning block is the judgement', () => {
    assert.equal(judgementText('<think>a</think>\n b '), 'b');
    assert.equal(judgementText(' plain '), 'plain');
    assert.equal(judgementText('<think>open'), null);
  });

  it('fills placeholders in one pass; a missing reference is an error only when the template uses it', () => {
    const t = 'Q={question} R={reference} A={response} {other} {"score": 1}';
    assert.equal(
      renderJudgePrompt(t, { question: 'q {response}', reference: '5', response: 'says {reference}' }),
      'Q=q {response} R=5 A=says {reference} {other} {"score": 1}',
    );
    assert.throws(() => renderJudgePrompt(t, { question: 'q', response: 'r' }), /no reference answer/);
    assert.equal(renderJudgePrompt('{question}: {response}', { question: 'q', response: 'r' }), 'q: r');
  });

  it('built-ins: equivalence (verdict, uses the reference), rating (score, no reference)', () => {
    const eq = resolveJudgeTemplate('equivalence', undefined, 'w');
    assert.deepEqual([eq.parse, eq.usesReference, eq.text], ['verdict', true, JUDGE_TEMPLATES.equivalence.text]);
    const rating = resolveJudgeTemplate('rating', undefined, 'w');
    assert.deepEqual([rating.parse, rating.usesReference], ['score', false]);
    for (const t of [JUDGE_TEMPLATES.equivalence.text, JUDGE_TEMPLATES.rating.text]) {
      assert.ok(t.includes('{question}') && t.includes('{response}'));
    }
    // The replies the built-ins ask for read back.
    assert.equal(parseVerdict('Verdict: correct').ok, true);
    assert.deepEqual(parseScore('Rating: [[5]]'), { ok: true, score: 4 / 9, value: 5, shape: 'label' });
  });

  it('an inline template needs {response} and a parse mode', () => {
    const inline = resolveJudgeTemplate('Is {response} right for {question}?', 'verdict', 'rewards[0].options');
    assert.deepEqual([inline.name, inline.parse, inline.usesReference], ['inline', 'verdict', false]);
    assert.throws(
      () => resolveJudgeTemplate('equivalnce', undefined, 'rewards[0].options'),
      (e: Error) =>
        e instanceof AhaError &&
        /^rewards\[0\]\.options\.template: 'equivalnce' is neither a built-in template \(equivalence, rating\)/.test(
          e.message,
        ),
    );
    assert.throws(
      () => resolveJudgeTemplate('Rate {response}', undefined, 'o'),
      (e: Error) => e.message === "o.parse: an inline template needs 'parse: verdict' or 'parse: score'",
    );
  });
});
