// Resuming an evaluation after a write torn in the middle of a problem: the unfinished problem's rows are dropped
// before it runs again, so the generations file holds each (problem, sample) once.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { Benchmark } from '../../src/eval/benchmarks.ts';
import { readCompleted, runEval } from '../../src/eval/evalRun.ts';
import type { GenerateOptions, Generation, Generator } from '../../src/eval/generators.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-eval-resume-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Answers every prompt "Q:<a>+<b>" with the right sum, boxed; records which problems it was asked for. */
class Adder implements Generator {
  readonly description = 'adder';
  asked: string[] = [];
  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    const out: Generation[][] = [];
    for (let i = 0; i < prompts.length; i++) {
      this.asked.push(prompts[i]);
      const [a, b] = prompts[i].slice(2).split('+').map(Number);
      const gens = Array.from({ length: opts.n }, () => ({
        text: `\\boxed{${a + b}}`,
        tokens: 3,
        finishReason: 'stop',
      }));
      out.push(gens);
      await opts.onPrompt?.(i, gens);
    }
    return out;
  }
}

const bench: Benchmark = {
  name: 'sums',
  path: 'memory',
  examples: ['1+2', '2+2', '3+4'].map((q, i) => ({ id: `p${i}`, question: q, answer: '', meta: {}, source: 't' })),
};
for (const e of bench.examples)
  e.answer = String(
    e.question
      .split('+')
      .map(Number)
      .reduce((a, b) => a + b),
  );
const opts = {
  benchmark: bench,
  samples: 3,
  temperature: 1,
  topP: 1,
  maxNewTokens: 8,
  prompt: (q: string) => `Q:${q}`,
};
const ids = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l) as { problem_id: string; sample: number };
      return `${r.problem_id}/${r.sample}`;
    });

it('a generations file cut mid-problem: that problem is dropped and run again, never written twice', async () => {
  const file = join(tmp, 'out.jsonl');
  await runEval({ ...opts, generator: new Adder(), settings: {}, out: file });
  const full = readFileSync(file, 'utf8');
  const lines = full.trim().split('\n');
  assert.equal(lines.length, 9);
  // Torn inside the last problem's one write: two whole rows of it, then half of the third.
  const last = (JSON.parse(lines[8]) as { problem_id: string }).problem_id;
  writeFileSync(file, lines.slice(0, 8).join('\n') + '\n' + lines[8].slice(0, 30));

  const gen = new Adder();
  let resumed: [number, boolean, number] | undefined;
  const s = await runEval({
    ...opts,
    generator: gen,
    settings: {},
    out: file,
    onResume: (n, repaired, dropped) => (resumed = [n, repaired, dropped]),
  });
  assert.deepEqual(resumed, [2, true, 2]);
  assert.equal(gen.asked.length, 1, 'only the unfinished problem runs again');
  assert.equal(gen.asked[0], `Q:${bench.examples.find((e) => e.id === last)!.question}`);
  assert.deepEqual([s.problems, s.pass_at_1, s.resumed_problems, s.generated_problems], [3, 1, 2, 1]);
  const rows = ids(file);
  assert.equal(rows.length, 9);
  assert.equal(new Set(rows).size, 9, `duplicate rows: ${rows.join(' ')}`);
  assert.deepEqual([...rows].sort(), ['p0/0', 'p0/1', 'p0/2', 'p1/0', 'p1/1', 'p1/2', 'p2/0', 'p2/1', 'p2/2']);
});

it('readCompleted drops rows of an incomplete problem anywhere in the file and keeps the rest as written', () => {
  const file = join(tmp, 'mid.jsonl');
  const row = (p: string, sample: number) =>
    JSON.stringify({
      problem_id: p,
      sample,
      prompt: 'q',
      completion: 'c',
      extracted: null,
      rule: null,
      equal: false,
      tokens: 1,
      finish_reason: 'stop',
    });
  // p1 has only sample 0 (a run killed in its write, then p2 finished by another attempt).
  writeFileSync(file, [row('p0', 0), row('p0', 1), row('p1', 0), row('p2', 0), row('p2', 1)].join('\n') + '\n');
  const r = readCompleted(file, 2);
  assert.deepEqual([...r.completed.keys()], ['p0', 'p2']);
  assert.deepEqual([r.lines, r.repaired, r.dropped], [4, false, 1]);
  assert.deepEqual(ids(file), ['p0/0', 'p0/1', 'p2/0', 'p2/1']);
  // A file with nothing to drop is left exactly as it is.
  const before = readFileSync(file, 'utf8');
  assert.equal(readCompleted(file, 2).dropped, 0);
  assert.equal(readFileSync(file, 'utf8'), before);
});
