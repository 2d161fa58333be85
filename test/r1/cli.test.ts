/**
 * `aha r1` and `aha distill` as child processes: one-line errors naming the problem, exit 1; a real (tiny) run prints
 * the per-stage table and its JSON line, through bin/aha.js.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildTinyBase } from './tinyBase.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = ['bin/aha.js'];

const dir = mkdtempSync(join(tmpdir(), 'aha-r1-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let base = '';
before(async () => {
  base = await buildTinyBase(join(dir, 'base'), 200);
});

function aha(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('aha r1: a typo in the recipe or an unknown --stage is a one-line error, exit 1', async () => {
  const typo = join(dir, 'typo.yaml');
  writeFileSync(
    typo,
    `base_model: ${base}\ntask: arithmetic\nstages:\n  cold_start_sft: {}\n  reasoning_rl_stage: {}\n`,
  );
  const a = await aha(['r1', '--config', typo, '--out', join(dir, 'never')]);
  assert.equal(a.code, 1);
  assert.equal(
    a.stderr.trim(),
    `aha: ${typo}: stages: unknown stage 'reasoning_rl_stage' (stages: cold_start_sft, reasoning_rl, rejection_sft, all_scenarios_rl)`,
  );
  const ok = join(dir, 'ok.yaml');
  writeFileSync(ok, `base_model: ${base}\ntask: arithmetic\nstages:\n  reasoning_rl: {}\n`);
  const b = await aha(['r1', '--config', ok, '--out', join(dir, 'never'), '--stage', 'sft']);
  assert.equal(b.code, 1);
  assert.match(
    b.stderr.trim(),
    /^aha: --stage sft: unknown stage \(stages: cold_start_sft, reasoning_rl, rejection_sft, all_scenarios_rl\)$/,
  );
  assert.equal(existsSync(join(dir, 'never')), false);
});

test('aha r1 runs a one-stage recipe and prints the per-stage table and a JSON line', async () => {
  const recipe = join(dir, 'rl.yaml');
  writeFileSync(
    recipe,
    [
      `base_model: ${base}`,
      'task: arithmetic',
      'task_options: { min_terms: 2, max_terms: 2, ops: "+" }',
      'task_train_size: 20',
      'max_new_tokens: 20',
      'eval: { problems: 3, samples: 1 }',
      'stages:',
      '  reasoning_rl:',
      '    grpo: { num_generations: 2, max_completion_length: 20 }',
      '    training: { max_steps: 1, prompts_per_step: 2, learning_rate: 1.0e-4 }',
      '',
    ].join('\n'),
  );
  const out = join(dir, 'run');
  const r = await aha(['r1', '--config', recipe, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^r1 pipeline: /);
  assert.match(lines[1], /^ {2}base +pass@1 +\d+\.\d%/);
  assert.match(lines[2], /^ {2}reasoning_rl +pass@1 +\d+\.\d% +format +\d+\.\d% +language .* mean length [\d.]+ tok$/);
  const json = JSON.parse(lines[lines.length - 1]);
  assert.equal(json.stages[0].name, 'reasoning_rl');
  assert.equal(json.stages[0].status, 'done');
  // The same command again is refused; with --resume it finds nothing left to do.
  const again = await aha(['r1', '--config', recipe, '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds an r1 run: pass --resume/);
  const resumed = await aha(['r1', '--config', recipe, '--out', out, '--resume', '--json']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /reasoning_rl .*\(finished earlier\)/);
  const rj = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual([rj.stages[0].status, rj.stages[0].resumed], ['done', true]);
});

test('aha distill: teacher and student errors are one line, exit 1', async () => {
  const data = join(dir, 'q.jsonl');
  writeFileSync(data, '{"question":"1+1","answer":"2"}\n');
  const a = await aha(['distill', '--student', base, '--data', data, '--out', join(dir, 'd')]);
  assert.equal(a.code, 1);
  assert.match(a.stderr.trim(), /^aha: distill: give exactly one teacher/);
  const b = await aha([
    'distill',
    '--teacher',
    base,
    '--student',
    join(dir, 'nope'),
    '--data',
    data,
    '--out',
    join(dir, 'd'),
  ]);
  assert.equal(b.code, 1);
  assert.match(b.stderr.trim(), /^aha: --student .*nope: no config\.json/);
  const c = await aha([
    'distill',
    '--teacher',
    base,
    '--student',
    base,
    '--data',
    data,
    '--out',
    join(dir, 'd'),
    '--samples',
    'x',
  ]);
  assert.equal(c.code, 1);
  assert.match(c.stderr.trim(), /^aha: --samples must be a number/);
  // Errors name the flag typed, and come before --out is made.
  const out = join(dir, 'd2');
  const teacherUrl = (url: string, more: string[] = []) =>
    aha([
      'distill',
      '--teacher-base-url',
      url,
      '--teacher-model',
      'm',
      '--student',
      base,
      '--data',
      data,
      '--out',
      out,
      ...more,
    ]);
  const d = await teacherUrl('ftp://teacher');
  assert.equal(d.code, 1);
  assert.equal(d.stderr.trim(), 'aha: --teacher-base-url ftp://teacher: expected http:// or https://');
  const e = await teacherUrl('http://127.0.0.1:1', ['--prompt', 'Solve it']);
  assert.equal(e.code, 1);
  assert.equal(
    e.stderr.trim(),
    "aha: --prompt 'Solve it': expected r1-zero, r1-zero-short, chat, or a template with {question}",
  );
  assert.equal(existsSync(out), false);
});
