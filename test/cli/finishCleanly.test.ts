// Commands that fail leave nothing of their own behind, and an output folder is written into, not over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../src/util/fs.ts';

const aha = resolve('bin/aha.js');
const root = mkdtempSync(join(tmpdir(), 'aha-clean-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const run = (args: string[]) =>
  spawnSync(process.execPath, [aha, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });

test('aha report --out an existing folder writes report.html into it and leaves no temporary file', () => {
  const runDir = join(root, 'run');
  mkdirSync(runDir);
  writeFileSync(
    join(runDir, 'metrics.jsonl'),
    [1, 2, 3].map((step) => JSON.stringify({ step, loss: 3 - step / 2, learning_rate: 1e-3 })).join('\n') + '\n',
  );
  const out = join(root, 'reports');
  mkdirSync(out);
  const r = run(['report', '--run', runDir, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`report  ${join(out, 'report.html')}`));
  assert.ok(existsSync(join(out, 'report.html')));
  assert.ok(existsSync(join(out, 'charts')));
  assert.deepEqual(
    readdirSync(root).filter((n) => n.includes('.tmp')),
    [],
  );
});

test('writeFileAtomic onto a directory fails and removes its temporary file', () => {
  const dir = join(root, 'target');
  mkdirSync(join(dir, 'inside'), { recursive: true });
  assert.throws(() => writeFileAtomic(join(dir, 'inside'), 'x'), { code: 'EISDIR' });
  assert.deepEqual(readdirSync(dir), ['inside']);
});

test('aha sft with a bad data file leaves no run folder it created; one that existed stays', () => {
  const model = join(root, 'model');
  assert.equal(run(['init-model', '--config', 'tiny', '--out', model]).status, 0);
  const data = join(root, 'bad.jsonl');
  writeFileSync(data, '{"text": "1+1=2"}\n{"text": \n');
  const fresh = join(root, 'runs', 'sft');
  const r = run(['sft', '--model', model, '--data', data, '--out', fresh, '--max-steps', '2']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bad\.jsonl:2/);
  assert.ok(!existsSync(join(root, 'runs')), 'the folders it created are removed');

  const existing = join(root, 'mine');
  mkdirSync(existing);
  const again = run(['sft', '--model', model, '--data', data, '--out', existing, '--max-steps', '2']);
  assert.equal(again.status, 1, again.stderr);
  assert.ok(existsSync(existing), "a folder the user made is not this command's to remove");
});
