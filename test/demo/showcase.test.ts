// The demo's showcase answer after RL: a correct one whenever the evaluation found one, and labelled for what it is.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Task } from '../../src/data/tasks/task.ts';
import { showcaseAnswer } from '../../src/demo/r1ZeroDemo.ts';
import type { Model } from '../../src/engine/model.ts';
import { evaluateTask, type TaskEvalResult } from '../../src/eval/taskEval.ts';
import type { Tokenizer } from '../../src/model/tokenizer.ts';

/** 7 problems "a+b"; the fake model answers problem p's sample s with `answers[p][s]`. */
const problems = Array.from({ length: 7 }, (_, p) => ({ question: `${p}+1`, answer: String(p + 1) }));
const task: Task<{ question: string; answer: string }> = {
  name: 'sum',
  generate: () => problems,
  check: (a, ex) => a.trim() === ex.answer,
  prompt: (ex) => `${ex.question}=`,
};

async function evaluate(answers: (p: number, s: number) => string): Promise<TaskEvalResult> {
  const texts: string[] = [];
  const tokenizer = {
    encode: (text: string) => [problems.findIndex((ex) => task.prompt(ex) === text)],
    decode: (ids: number[]) => texts[ids[0]],
    eosTokenIds: [],
  } as unknown as Tokenizer;
  const model = {
    generate: async (prompts: number[][], o: { seeds: number[] }) =>
      prompts.map(([p], n) => {
        const s = o.seeds[n] - p * 1009; // evaluateTask's seed: p * 1009 + s (seed 0)
        texts.push(`<think>\n${p}+1\n</think> <answer>${answers(p, s)}</answer>`);
        return { tokens: [texts.length - 1] };
      }),
  } as unknown as Model;
  return evaluateTask(model, tokenizer, task, problems, { k: 2, seed: 0 });
}

describe('showcaseAnswer', () => {
  it('shows a correct answer, not the first sample, when the first one is wrong', async () => {
    // Problem 0 wrong, problem 1 right: the old demo printed problem 0's wrong answer as "an answer after RL".
    const r = await evaluate((p) => (p === 1 ? String(p + 1) : '10'));
    assert.equal(r.examples[0].correct, false);
    const shown = showcaseAnswer(r)!;
    assert.equal(shown.label, 'a correct answer after RL');
    assert.equal(shown.text, '1+1=<think>\n1+1\n</think> <answer>2</answer>');
  });

  it('finds a correct sample beyond the first samples of the first 5 problems', async () => {
    // Only problem 6's second sample is right.
    const r = await evaluate((p, s) => (p === 6 && s === 1 ? '7' : '0'));
    assert.equal(r.pass_at_1, 1 / 14);
    assert.equal(r.examples.length, 6);
    const shown = showcaseAnswer(r)!;
    assert.equal(shown.label, 'a correct answer after RL');
    assert.match(shown.text, /^6\+1=.*<answer>7<\/answer>$/s);
  });

  it('says so when no answer is correct, and shows nothing without samples', async () => {
    const r = await evaluate(() => '0');
    const shown = showcaseAnswer(r)!;
    assert.equal(shown.label, 'no correct answer found after RL; a wrong one');
    assert.match(shown.text, /<answer>0<\/answer>/);
    assert.equal(showcaseAnswer({ ...r, examples: [] }), null);
  });
});
