// Ctrl-C under mpirun: Open MPI sends the ranks SIGCONT, then SIGTERM and SIGKILL odls_base_sigkill_timeout
// seconds apart (src/train/interrupt.ts), and returns once that sequence is over; the ranks stop on the SIGCONT,
// agree on the step to stop at, rank 0 writes the checkpoint, and --resume ends with the model of an uninterrupted
// run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { latestGrpoCheckpoint } from '../../src/rl/grpoTrainer.ts';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { ahaArgs, assertSameMetrics, launch, maxDiff, metrics, mpiEnv, skipReason as skip, weights } from './mpiRun.ts';

const KILL_TIMEOUT = 4;
const root = mkdtempSync(join(tmpdir(), 'aha-mpi-interrupt-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** `mpirun -np 2 aha grpo ARGS` in `root`; `onStderr` sees the output so far and may send mpirun a signal. */
function grpo(args: string[], onStderr?: (s: string, signal: () => void) => void) {
  return new Promise<{ code: number | null; stderr: string; signalled: number; ended: number }>((done) => {
    const child = spawn(
      ...launch(2, ahaArgs(['grpo', ...args])),
      // Ctrl-C: SIGCONT now, SIGTERM in 4 s, SIGKILL 4 s later. The ranks stop on the SIGCONT (asserted below).
      { cwd: root, env: { ...process.env, ...mpiEnv, OMPI_MCA_odls_base_sigkill_timeout: String(KILL_TIMEOUT) } },
    );
    let stderr = '',
      signalled = 0;
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, () => {
        signalled = Date.now();
        child.kill('SIGINT');
      });
    });
    child.on('close', (code) => done({ code, stderr, signalled, ended: Date.now() }));
  });
}

test(
  'SIGINT to mpirun stops both ranks at one step with a checkpoint; --resume ends as an uninterrupted run',
  { skip },
  async () => {
    const model = tinyCharModel(root, { alphabet: '0123456789 abc', seed: 4 }).dir;
    writeFileSync(
      join(root, 'train.jsonl'),
      Array.from({ length: 8 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: '7' })).join('\n') + '\n',
    );
    writeFileSync(
      join(root, 'rewards.ts'),
      'export const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === "7").length / c.length);\n',
    );
    const recipe = (steps: number) => {
      const path = join(root, `r${steps}.yaml`);
      writeFileSync(
        path,
        [
          `model: ${model}`,
          'dataset: { path: train.jsonl }',
          'prompt: "{question} "',
          'rewards: [{ name: "./rewards.ts#sevens" }]',
          'grpo: { num_generations: 4, max_completion_length: 12, scale_rewards: batch }',
          `training: { learning_rate: 5.0e-4, max_steps: ${steps}, prompts_per_step: 2, save_steps: 0, seed: 2 }`,
        ].join('\n') + '\n',
      );
      return path;
    };
    const out = join(root, 'run');
    let sent = false;
    // Without a terminal, rank 0 prints one progress line per step: 'grpo 1/1000 step | reward ...'.
    const a = await grpo(['--config', recipe(1000), '--out', out], (s, signal) => {
      if (!sent && /^grpo 1\/1000 step \|/m.test(s)) {
        sent = true;
        signal();
      }
    });
    assert.ok(sent, a.stderr);
    assert.notEqual(a.code, 0);
    const seconds = (a.ended - a.signalled) / 1000;
    assert.ok(seconds < 2 * KILL_TIMEOUT + 5, `mpirun took ${seconds} s to return`);
    assert.match(a.stderr, /aha grpo: checkpoint at step \d+/);
    assert.doesNotMatch(a.stderr, /aborting the job|MPI_ABORT/);
    const ck = latestGrpoCheckpoint(out)!;
    const step = ck.state.global_step;
    assert.ok(step >= 1 && step < 1000, `checkpoint at step ${step}`);
    assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length, step);
    // Written before mpirun's SIGTERM: the ranks stopped on its SIGCONT, at the end of the step they were in.
    const written = (statSync(join(ck.dir, 'trainer_state.json')).mtimeMs - a.signalled) / 1000;
    assert.ok(written < KILL_TIMEOUT, `the checkpoint was written ${written} s after SIGINT`);

    const b = await grpo(['--config', recipe(step + 2), '--out', out, '--resume']);
    assert.equal(b.code, 0, b.stderr);
    const ref = join(root, 'ref');
    const c = await grpo(['--config', recipe(step + 2), '--out', ref]);
    assert.equal(c.code, 0, c.stderr);
    const d = maxDiff(weights(join(out, 'final')), weights(join(ref, 'final')));
    assert.ok(d <= 1e-6, `resumed weights differ by ${d}`);
    assertSameMetrics(metrics(out), metrics(ref));
  },
);
