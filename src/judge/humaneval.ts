/** HumanEval (openai/human-eval), shipped in data/benchmarks/humaneval: its rows and their submissions. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testsOfExample } from './exampleTests.ts';
import type { Submission } from './types.ts';

/** One HumanEval problem. */
export interface HumanEvalRow {
  task_id: string;
  prompt: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

/** The shipped test set's path. */
export const HUMANEVAL_PATH = fileURLToPath(new URL('../../data/benchmarks/humaneval/test.jsonl', import.meta.url));

/** The 164 problems. */
export function loadHumanEval(path = HUMANEVAL_PATH): HumanEvalRow[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as HumanEvalRow);
}

/** HumanEval's protocol: `prompt + completion`, then the row's `check(entry_point)`. */
export function humanEvalSubmission(row: HumanEvalRow, completion = row.canonical_solution): Submission {
  return {
    language: 'python',
    program: row.prompt + completion,
    tests: testsOfExample(row as unknown as Record<string, unknown>),
  };
}
