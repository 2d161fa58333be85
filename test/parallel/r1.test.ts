// `aha r1` and `aha distill` under mpirun: 2 ranks split the sampling (rejection sampling, cold-start samples, the
// teacher's traces, the evaluations) and train data-parallel, and end with one process's files: the same sampled and
// selected data byte for byte, the same evaluations, weights within 1e-6.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { arithmeticTask } from '../../src/data/tasks/arithmetic.ts';
import { Rng } from '../../src/data/rng.ts';
import { buildTinyBase, EASY_TASK, EASY_TASK_OPTIONS, freshTinyModel } from '../r1/tinyBase.ts';
import { ahaArgs, launch, maxDiff, mpiEnv, skipReason as skip, weights } from './mpiRun.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-mpi-r1-'));
after(() => rmSync(root, { recursive: true, force: true }));
let base = '';
before(async () => {
  if (!skip) base = await buildTinyBase(join(root, 'base'), 200);
});

/** `aha ARGS` in one process (ranks 1) or under mpirun. */
function aha(ranks: number, args: string[]) {
  const [cmd, argv] = launch(ranks, ahaArgs(args));
  const r = spawnSync(cmd, argv, { cwd: root, env: { ...process.env, ...mpiEnv }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, output: r.stderr + r.stdout };
}

/** A file of a run directory, its own directory's name replaced (provenance names the run's paths). */
function text(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').split(dir).join('<run>');
}

/** A JSON file of a run, without its wall-clock fields. */
function json(dir: string, file: string): unknown {
  return JSON.parse(text(dir, file), (k, v) => (k === 'created' || k === 'seconds' ? undefined : v));
}

test('`mpirun -np 2 aha r1` ends with the samples, data, evaluations and weights of one process', { skip }, () => {
  const sft = { learning_rate: 1e-3, max_steps: 3, per_device_train_batch_size: 4, save_steps: 2, logging_steps: 1 };
  const recipe = join(root, 'r1.json');
  writeFileSync(
    recipe,
    JSON.stringify({
      base_model: base,
      task: 'arithmetic',
      task_options: EASY_TASK_OPTIONS,
      task_train_size: 40,
      max_new_tokens: 24,
      // 6 problems x 2 samples, 12 prompts x 2: an odd number of prompts per rank's round would do as well.
      eval: { problems: 6, samples: 2 },
      stages: {
        cold_start_sft: { prompts: 12, samples_per_prompt: 2, temperature: 0.6, sft },
        reasoning_rl: {
          grpo: { num_generations: 2, max_completion_length: 24, beta: 0 },
          training: { learning_rate: 1e-3, max_steps: 3, prompts_per_step: 2, save_steps: 2, sample_log_steps: 0 },
        },
        rejection_sft: { prompts: 13, samples_per_prompt: 2, max_per_prompt: 2, temperature: 0.6, sft },
      },
    }),
  );
  const one = join(root, 'r1-one'),
    two = join(root, 'r1-two');
  const a = aha(1, ['r1', '--config', recipe, '--out', one]);
  assert.equal(a.status, 0, a.output);
  const b = aha(2, ['r1', '--config', recipe, '--out', two]);
  assert.equal(b.status, 0, b.output);
  // Rank 0 alone printed the table and wrote the bookkeeping: one invocation line, one manifest.
  assert.equal(b.stdout.split('\n').filter((l) => l.startsWith('r1 pipeline:')).length, 1, b.stdout);
  assert.equal(readFileSync(join(two, 'invocations.jsonl'), 'utf8').trim().split('\n').length, 1);
  assert.deepEqual(json(two, 'pipeline.json'), json(one, 'pipeline.json'));
  for (const stage of ['cold_start_sft', 'rejection_sft']) {
    // Sampled by two ranks, each its share of the prompts, with one process's seeds: byte for byte the same.
    assert.equal(text(two, `${stage}/samples.jsonl`), text(one, `${stage}/samples.jsonl`), `${stage} samples`);
    assert.equal(text(two, `${stage}/data.jsonl`), text(one, `${stage}/data.jsonl`), `${stage} data`);
  }
  assert.deepEqual(json(two, 'cold_start_sft/data_report.json'), json(one, 'cold_start_sft/data_report.json'));
  assert.deepEqual(json(two, 'rejection_sft/report.json'), json(one, 'rejection_sft/report.json'));
  const kept = (json(one, 'rejection_sft/report.json') as { counts: { kept: number; incorrect: number } }).counts;
  assert.ok(kept.kept > 0 && kept.incorrect > 0, JSON.stringify(kept));
  assert.deepEqual(json(two, 'base_eval.json'), json(one, 'base_eval.json'));
  for (const stage of ['cold_start_sft', 'reasoning_rl', 'rejection_sft']) {
    assert.deepEqual(json(two, `${stage}/eval.json`), json(one, `${stage}/eval.json`), `${stage} evaluation`);
    const marker = (d: string) => {
      const m = json(d, `${stage}/stage_done.json`) as Record<string, unknown>;
      return { ...m, finished_at: undefined, started_at: undefined };
    };
    assert.deepEqual(marker(two), marker(one));
  }
  // Weights: the summation order of the gradients differs (see grpo.test.ts), hence 1e-6, not bit-exactness.
  for (const ckpt of ['cold_start_sft/sft/final', 'reasoning_rl/grpo/final', 'rejection_sft/sft/final']) {
    const d = maxDiff(weights(join(one, ckpt)), weights(join(two, ckpt)));
    assert.ok(d <= 1e-6, `${ckpt}: weights differ by ${d}`);
  }
  assert.ok(maxDiff(weights(join(one, 'reasoning_rl/grpo/final')), weights(base)) > 1e-4, 'the pipeline trained');
});

test('`mpirun -np 2 aha distill` ends with the traces, data, evaluations and student of one process', { skip }, () => {
  const task = arithmeticTask(EASY_TASK);
  const data = join(root, 'questions.jsonl');
  const rng = new Rng(11);
  writeFileSync(
    data,
    task
      .pretrainExamples(rng, 23)
      .map((ex) => JSON.stringify({ question: ex.question, answer: ex.answer }))
      .join('\n') + '\n',
  );
  const student = freshTinyModel(join(root, 'student'), 2);
  const args = (out: string) => [
    'distill',
    '--teacher',
    base,
    '--student',
    student,
    '--data',
    data,
    '--eval-problems',
    '5',
    '--prompt',
    'User: {question}. Assistant:',
    '--samples',
    '3',
    '--max-new-tokens',
    '24',
    '--max-steps',
    '3',
    '--out',
    out,
  ];
  const one = join(root, 'distill-one'),
    two = join(root, 'distill-two');
  const a = aha(1, args(one));
  assert.equal(a.status, 0, a.output);
  const b = aha(2, args(two));
  assert.equal(b.status, 0, b.output);
  assert.equal(text(two, 'teacher/samples.jsonl'), text(one, 'teacher/samples.jsonl'));
  assert.equal(text(two, 'teacher/data.jsonl'), text(one, 'teacher/data.jsonl'));
  assert.deepEqual(json(two, 'teacher/report.json'), json(one, 'teacher/report.json'));
  for (const f of ['eval_teacher.json', 'eval_student_before.json', 'eval_student_after.json'])
    assert.deepEqual(json(two, f), json(one, f), f);
  const report = json(one, 'report.json') as { status: string; data: { kept: number; incorrect: number } };
  assert.equal(report.status, 'complete');
  assert.ok(report.data.kept > 0 && report.data.incorrect > 0, JSON.stringify(report.data));
  assert.deepEqual(json(two, 'report.json'), report);
  assert.ok(existsSync(join(two, 'sft', 'final')));
  const d = maxDiff(weights(join(one, 'sft', 'final')), weights(join(two, 'sft', 'final')));
  assert.ok(d <= 1e-6, `the students differ by ${d}`);
  assert.ok(maxDiff(weights(join(one, 'sft', 'final')), weights(student)) > 1e-4, 'the student trained');
});

test(
  'SIGINT to `mpirun -np 2 aha r1` inside reasoning RL stops both ranks; --resume ends as an uninterrupted run',
  { skip },
  async () => {
    const recipe = join(root, 'r1-stop.json');
    writeFileSync(
      recipe,
      JSON.stringify({
        base_model: base,
        task: 'arithmetic',
        task_options: EASY_TASK_OPTIONS,
        task_train_size: 40,
        max_new_tokens: 24,
        eval: { problems: 4, samples: 1, evaluate_base: false },
        stages: {
          reasoning_rl: {
            grpo: { num_generations: 2, max_completion_length: 24, beta: 0 },
            training: { learning_rate: 1e-3, max_steps: 12, prompts_per_step: 2, save_steps: 4, sample_log_steps: 0 },
          },
        },
      }),
    );
    const out = join(root, 'r1-stopped'),
      ref = join(root, 'r1-unstopped');
    // Open MPI's Ctrl-C: SIGCONT now, SIGTERM in 4 s, SIGKILL 4 s later (src/train/interrupt.ts).
    const env = { ...process.env, ...mpiEnv, OMPI_MCA_odls_base_sigkill_timeout: '4' };
    const stopped = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(...launch(2, ahaArgs(['r1', '--config', recipe, '--out', out])), { cwd: root, env });
      let stderr = '';
      child.stdout.resume();
      child.stderr.on('data', (d: Buffer) => {
        const had = /reasoning_rl: step 3:/.test(stderr);
        stderr += d.toString();
        if (!had && /reasoning_rl: step 3:/.test(stderr)) child.kill('SIGINT');
      });
      child.on('close', (code) => done({ code, stderr }));
    });
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /resume with: aha r1 --config \S+ --out \S+ --resume/);
    assert.doesNotMatch(stopped.stderr, /aborting the job|MPI_ABORT/);
    const steps = readFileSync(join(out, 'reasoning_rl', 'grpo', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n').length;
    assert.ok(steps >= 3 && steps < 12, `stopped after step ${steps}`);
    assert.ok(!existsSync(join(out, 'reasoning_rl', 'stage_done.json')));
    const resumed = aha(2, ['r1', '--config', recipe, '--out', out, '--resume']);
    assert.equal(resumed.status, 0, resumed.output);
    const whole = aha(2, ['r1', '--config', recipe, '--out', ref]);
    assert.equal(whole.status, 0, whole.output);
    const d = maxDiff(weights(join(out, 'reasoning_rl/grpo/final')), weights(join(ref, 'reasoning_rl/grpo/final')));
    assert.ok(d <= 1e-6, `resumed weights differ by ${d}`);
    assert.deepEqual(json(out, 'reasoning_rl/eval.json'), json(ref, 'reasoning_rl/eval.json'));
  },
);
