// The command ends when its work does, and the machine's or the user's file-system problems are one line, exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const aha = resolve('bin/aha.js');
const root = mkdtempSync(join(tmpdir(), 'aha-exit-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const run = (args: string[], cwd = root) => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [aha, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { ...r, seconds: (Date.now() - t0) / 1000 };
};
const model = join(root, 'model');
run(['init-model', '--config', 'tiny', '--out', model, '--seed', '3']);

test('aha grpo exits when it is done, though rewards left a 60 s timer and a socket, never resolve, or loop', () => {
  const dir = join(root, 'sticky');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'train.jsonl'),
    ['1+1', '2+3', '4+4', '5+1'].map((q) => JSON.stringify({ question: q, answer: '2' })).join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'rewards.ts'),
    [
      "import { createServer } from 'node:net';",
      '// Leaves a timer and a listening socket behind on every call, as a careless reward does.',
      'export const sticky = (c: string) => { setTimeout(() => {}, 60_000); createServer().listen(0); return c.length % 2; };',
      '// Never settles: the trainer times it out, scores 0 and goes on.',
      'export const hang = () => new Promise<number>(() => { setInterval(() => {}, 1000); });',
      '// Blocks its thread: only terminating the worker it runs in stops it.',
      'export const spin = (): number => { for (;;) {} };',
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'r.yaml'),
    [
      `model: ${model}`,
      'dataset: { path: train.jsonl }',
      'prompt: "{question} "',
      'rewards: [{ name: "./rewards.ts#sticky" }, { name: "./rewards.ts#hang" }, { name: "./rewards.ts#spin" }]',
      'reward_timeout_ms: 300',
      'grpo: { num_generations: 2, max_completion_length: 6 }',
      'training: { max_steps: 2, prompts_per_step: 2, save_steps: 0 }',
      'output_dir: run',
    ].join('\n') + '\n',
  );
  const r = run(['grpo', '--config', 'r.yaml'], dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /done, 2 steps/);
  // The error line names where the recipe file declares the reward.
  assert.match(r.stderr, /reward 'hang' \(r\.yaml: rewards\[1\]\) timed out/);
  assert.match(r.stderr, /reward 'spin' \(r\.yaml: rewards\[2\]\) timed out/);
  // Far below the 60 s the timer would hold the process (loading, two steps and the save take a few seconds).
  assert.ok(r.seconds < 45, `took ${r.seconds} s`);
});

test('output-directory problems are one line naming the path, exit 1, not an internal error', () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  for (const [out, pattern] of [
    [join(file, 'm'), /a-file\/m: a part of the path is a file, not a directory \(ENOTDIR/],
    [file, /a-file: exists and is not a directory/],
  ] as const) {
    const r = run(['init-model', '--config', 'tiny', '--out', out]);
    assert.equal(r.status, 1, `${out}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
});

test('init-model refuses a non-empty directory unless --overwrite, which leaves no old file behind', () => {
  const out = join(root, 'refuse');
  assert.equal(run(['init-model', '--config', 'tiny', '--out', out]).status, 0);
  writeFileSync(join(out, 'optimizer.safetensors'), 'stale');
  writeFileSync(join(out, 'trainer_state.json'), '{}');
  const again = run(['init-model', '--config', 'tiny', '--out', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /refuse: not empty .*pass --overwrite to replace what is there/);
  const over = run(['init-model', '--config', 'tiny', '--out', out, '--overwrite', '--seed', '5']);
  assert.equal(over.status, 0, over.stderr);
  const files = readdirSync(out);
  assert.ok(!files.includes('optimizer.safetensors') && !files.includes('trainer_state.json'), files.join(', '));
  assert.ok(files.includes('model.safetensors') && files.includes('config.json'));
});
