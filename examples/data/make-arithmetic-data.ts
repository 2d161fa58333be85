/**
 * Writes the example data sets from the synthetic arithmetic task of `aha demo` (src/data/tasks/arithmetic.ts):
 *
 * - arithmetic-train.jsonl: questions with reference answers, {"question": "7+8+6-9+4", "answer": "16"}, from the
 *   task's training split (the demo's evaluation problems are never among them);
 * - arithmetic-sft.jsonl: worked solutions in the R1-Zero format, {"prompt": "User: 7+8. Assistant:",
 *   "completion": " <think>\n7+8\n=15\n</think> <answer>15</answer>"}, some with a self-check, for `aha sft`.
 *
 * Run from the repository root: node --import tsx examples/data/make-arithmetic-data.ts
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arithmeticTask } from '../../src/data/tasks/arithmetic.ts';
import { Rng } from '../../src/data/rng.ts';
import { r1ZeroCompletion } from '../../src/data/r1ZeroTemplate.ts';

const here = dirname(fileURLToPath(import.meta.url));
const task = arithmeticTask();

const train = task.generate(new Rng(2025), 2000, 'train');
writeFileSync(
  join(here, 'arithmetic-train.jsonl'),
  train.map((ex) => JSON.stringify({ question: ex.question, answer: ex.answer })).join('\n') + '\n',
);

const rng = new Rng(2026);
const sft = task.generate(rng, 400, 'train').map((ex, i) => {
  const s = task.solve(ex, rng, { slip: 'none', verify: i % 4 === 0 });
  return JSON.stringify({ prompt: task.prompt(ex), completion: r1ZeroCompletion(s.reasoning, s.answer) });
});
writeFileSync(join(here, 'arithmetic-sft.jsonl'), sft.join('\n') + '\n');
console.log(`wrote ${train.length} questions and ${sft.length} worked solutions to ${here}`);
