import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  answerVerifier,
  finalAnswer,
  mixNonReasoning,
  readGatheredSamples,
  runRejectionSampling,
  sftRecordOf,
  type ReasoningProblem,
  type RejectionSamplingReport,
} from '../../src/r1/rejectionSampling.ts';
import { buildFilters } from '../../src/r1/filters.ts';
import { AhaError } from '../../src/errors.ts';
import { FakeGenerator } from './fakeGenerator.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-rs-'));
after(() => rmSync(root, { recursive: true, force: true }));

const problem = (id: string, answer: string): ReasoningProblem => ({
  id,
  question: `q ${id}`,
  answer,
  prompt: `User: q ${id}. Assistant:`,
});
const problems = [problem('p1', '15'), problem('p2', '6'), problem('p3', '42')];
const good = (reasoning: string, answer: string) => ` <think>\n${reasoning}\n</think>\nThe answer is ${answer}.`;

/** Four scripted samples per problem; what each should become is in the comments. */
const SCRIPT: Record<string, string[]> = {
  p1: [
    good('add 7 and 8', '15'), // kept
    good('add 7   and 8', '15').replace('\n', '\n\n'), // duplicate of the first after whitespace normalisation
    good('seven plus eight', '15'), // kept (second of the cap of 2)
    good('eight plus seven', '15'), // over the cap
  ],
  p2: [
    good('guess', '7'), // incorrect
    ' <think>\nhmm\n</think>\nI am not sure.', // incorrect: no answer
    good('```\nprint(6)\n```', '6'), // code block
    good('先 add 然后 算', '6'), // mixed language: 1 of 4 words in English
  ],
  p3: [
    good('six times seven', '42'), // kept
    good('so the next value is one more than before '.repeat(4), '42'), // repetition
    ' <think>\nsix times seven, the answer is 42', // correct but no </think>: missing summary
    good('wrong way', '41'), // incorrect
  ],
};
const fake = () => new FakeGenerator((id, j) => SCRIPT[id][j], { name: 'ckpt-7 (fake)' });
const sampling = { n: 4, temperature: 0.7, topP: 0.95, maxNewTokens: 64, seed: 3 };
const filters = buildFilters({ language_threshold: 0.9 }, { language: 'en' });
const verify = answerVerifier();

test('finalAnswer reads the summary after </think> only; the verifier compares with mathEqual or a check', async () => {
  assert.equal(finalAnswer(' <think>the answer is 3</think>\nThe answer is 4.'), '4');
  assert.equal(finalAnswer(' <think>x</think> <answer>16</answer>'), '16');
  assert.equal(finalAnswer('no tags, the answer is \\boxed{1/2}'), '1/2');
  assert.equal(finalAnswer('<think>the answer is 3</think> I do not know'), null);
  assert.equal(await verify('<think>x</think> The answer is 0.5.', problem('a', '\\frac{1}{2}')), true);
  assert.equal(
    await answerVerifier({ check: (a) => a === 'yes' })('<think>x</think> <answer>yes</answer>', problem('a', '?')),
    true,
  );
});

test('rejection sampling keeps correct, readable, distinct samples up to the cap, mixes non-reasoning data, reports every drop', async () => {
  const out = join(root, 'rs1');
  const pool = Array.from({ length: 5 }, (_, i) => ({ prompt: `chat ${i}`, completion: `reply ${i}` }));
  const gen = fake();
  const r = await runRejectionSampling({
    generator: gen,
    checkpoint: 'runs/x/reasoning_rl/grpo/final',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    nonReasoning: { records: pool, ratio: 0.5 },
    outDir: out,
  });
  assert.deepEqual(r.counts, {
    samples: 12,
    incorrect: 3,
    duplicates: 1,
    over_cap: 1,
    kept: 3,
    dropped: { mixed_language: 1, long_paragraph: 0, code_block: 1, repetition: 1, missing_summary: 1 },
    prompts_with_data: 2,
    non_reasoning: 3,
    non_reasoning_wanted: 3,
    records: 6,
  });
  assert.equal(
    r.counts.samples,
    r.counts.incorrect +
      r.counts.duplicates +
      r.counts.over_cap +
      r.counts.kept +
      Object.values(r.counts.dropped).reduce((a, b) => a + b, 0),
  );
  assert.deepEqual(r.per_prompt_kept, { p1: 2, p2: 0, p3: 1 });
  assert.deepEqual(r.prompt_ids, ['p1', 'p2', 'p3']);
  assert.equal(r.checkpoint, 'runs/x/reasoning_rl/grpo/final');
  assert.equal(r.generator, 'ckpt-7 (fake)');
  assert.equal(r.status, 'complete');
  assert.deepEqual(r.settings.filters, [
    'mixed_language',
    'long_paragraph',
    'code_block',
    'repetition',
    'missing_summary',
  ]);

  const lines = readFileSync(join(out, 'data.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 6);
  assert.deepEqual(
    lines.slice(0, 3).map((l) => [l.problem_id, l.sample, l.source, l.checkpoint]),
    [
      ['p1', 0, 'rejection_sampling', 'runs/x/reasoning_rl/grpo/final'],
      ['p1', 2, 'rejection_sampling', 'runs/x/reasoning_rl/grpo/final'],
      ['p3', 0, 'rejection_sampling', 'runs/x/reasoning_rl/grpo/final'],
    ],
  );
  assert.equal(lines[0].prompt, 'User: q p1. Assistant:');
  assert.equal(lines[0].completion, SCRIPT.p1[0]);
  assert.ok(lines.slice(3).every((l) => l.source === 'non_reasoning' && /^chat \d$/.test(l.prompt)));
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RejectionSamplingReport;
  assert.deepEqual(report.counts, r.counts);
  // Every sample was logged as it came.
  assert.equal(readFileSync(join(out, 'samples.jsonl'), 'utf8').trim().split('\n').length, 12);

  // A rerun samples nothing new and writes the same data.
  const again = fake();
  const r2 = await runRejectionSampling({
    generator: again,
    checkpoint: r.checkpoint,
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    nonReasoning: { records: pool, ratio: 0.5 },
    outDir: out,
  });
  assert.equal(again.calls.length, 0);
  assert.deepEqual(r2.counts, r.counts);
});

test('the cap and the mix ratio', async () => {
  const r = await runRejectionSampling({
    generator: fake(),
    checkpoint: 'c',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 1,
    outDir: join(root, 'rs2'),
  });
  assert.equal(r.counts.kept, 2);
  assert.equal(r.counts.over_cap, 2);
  assert.equal(r.counts.non_reasoning, 0);
  // ratio r of the whole: r / (1 - r) non-reasoning lines per reasoning line, all of the pool when it is too small.
  const reasoning = Array.from({ length: 6 }, (_, i) => ({ prompt: `p${i}`, completion: 'c' }));
  const pool = Array.from({ length: 10 }, (_, i) => ({ text: `t${i}` }));
  const m = mixNonReasoning(reasoning, pool, 0.25, 0);
  assert.deepEqual([m.used, m.wanted, m.records.length], [2, 2, 8]);
  const big = mixNonReasoning(reasoning, pool, 0.75, 0);
  assert.deepEqual([big.used, big.wanted], [10, 18]);
  assert.deepEqual(mixNonReasoning(reasoning, pool, 0.25, 0).records, m.records, 'seeded');
  assert.throws(() => mixNonReasoning(reasoning, pool, 1, 0), AhaError);
});

test('fewer non-reasoning lines than the ratio wants: a warning, in the log and in report.json', async () => {
  const out = join(root, 'rs-short');
  const lines: string[] = [];
  const pool = [{ prompt: 'chat', completion: 'reply' }];
  const r = await runRejectionSampling({
    generator: fake(),
    checkpoint: 'c',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    nonReasoning: { path: 'chat.jsonl', records: pool, ratio: 0.5 },
    outDir: out,
    log: (l) => void lines.push(l),
  });
  // 3 reasoning lines at a share of 0.5 want 3 non-reasoning lines; the pool has 1: 1 of 4 lines, 0.25.
  assert.deepEqual([r.counts.kept, r.counts.non_reasoning, r.counts.non_reasoning_wanted], [3, 1, 3]);
  const warning =
    'non-reasoning lines: 3 wanted for a share of 0.5 next to 3 reasoning lines, but chat.jsonl has 1: all used, a share of 0.25';
  assert.deepEqual(r.warnings, [warning]);
  assert.ok(lines.includes(`warning: ${warning}`), lines.join('\n'));
  assert.deepEqual((JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RejectionSamplingReport).warnings, [
    warning,
  ]);
  // Enough lines: no warning.
  const enough = await runRejectionSampling({
    generator: fake(),
    checkpoint: 'c',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    nonReasoning: { records: [...pool, ...pool, ...pool], ratio: 0.5 },
    outDir: join(root, 'rs-enough'),
  });
  assert.deepEqual(enough.warnings, []);
});

test('a generator that fails keeps the samples gathered; a rerun samples only the missing prompts', async () => {
  const out = join(root, 'rs3');
  const failing = new FakeGenerator((id, j) => SCRIPT[id][j], { failAfter: 2 });
  await assert.rejects(
    runRejectionSampling({
      generator: failing,
      checkpoint: 'c',
      problems,
      verify,
      filters,
      sampling,
      maxPerPrompt: 2,
      outDir: out,
    }),
    (e: unknown) =>
      e instanceof AhaError &&
      /sampling failed after 2 of 3 prompts \(8 samples kept/.test(e.message) &&
      /server down at p3/.test(e.message),
  );
  const partial = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RejectionSamplingReport;
  assert.equal(partial.status, 'partial');
  assert.match(partial.generation_error!, /server down at p3/);
  assert.equal(existsSync(join(out, 'data.jsonl')), false);
  // A kill mid-write leaves a torn line: it is dropped on reading.
  appendFileSync(join(out, 'samples.jsonl'), '{"problem_id":"p3","sam');
  assert.deepEqual([...readGatheredSamples(join(out, 'samples.jsonl'), 4).keys()], ['p1', 'p2']);

  const rest = fake();
  const r = await runRejectionSampling({
    generator: rest,
    checkpoint: 'c',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    outDir: out,
  });
  assert.deepEqual(rest.calls, [['p3']]);
  assert.equal(r.status, 'complete');
  assert.equal(r.counts.kept, 3);

  // allowPartial: the data of what was gathered, with the error reported.
  const out2 = join(root, 'rs4');
  const r2 = await runRejectionSampling({
    generator: new FakeGenerator((id, j) => SCRIPT[id][j], { failAfter: 1 }),
    checkpoint: 'c',
    problems,
    verify,
    filters,
    sampling,
    maxPerPrompt: 2,
    outDir: out2,
    allowPartial: true,
  });
  assert.equal(r2.status, 'partial');
  assert.equal(r2.counts.kept, 2);
  assert.equal(readFileSync(join(out2, 'data.jsonl'), 'utf8').trim().split('\n').length, 2);
});

test('SFT records of chat prompts are conversational', () => {
  const p: ReasoningProblem = { ...problem('c1', '1'), sftPrompt: [{ role: 'user', content: 'q' }] };
  const rec = sftRecordOf({ problem: p, sample: 2, completion: 'x', tokens: 1 }, { source: 's' });
  assert.deepEqual(rec, {
    prompt: [{ role: 'user', content: 'q' }],
    completion: [{ role: 'assistant', content: 'x' }],
    problem_id: 'c1',
    sample: 2,
    source: 's',
  });
});
