/**
 * `aha sft` as a child process: killed with SIGKILL after its first checkpoint, or interrupted with SIGINT (which
 * finishes the step, checkpoints and exits 130), then resumed with --resume: the final loss and weights equal
 * those of an uninterrupted run with the same seed. Runs bin/aha.js.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { resolveSftOptions } from '../../src/sft/sftConfig.ts';
import { sftTrain } from '../../src/sft/trainer.ts';
import { makeSmallModel, maxDiff, writeArithmeticCorpus } from './helpers.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = ['bin/aha.js'];

const dir = mkdtempSync(join(tmpdir(), 'aha-sft-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = makeSmallModel(dir, { seed: 2 });
const data = join(dir, 'train.jsonl');
writeArithmeticCorpus(data, 150, 21);
const flags = {
  model: base.dir,
  data,
  max_steps: 100,
  per_device_train_batch_size: 4,
  learning_rate: 2e-3,
  lr_scheduler_type: 'cosine',
  warmup_steps: 5,
  eval_fraction: 0.1,
  eval_steps: 50,
  logging_steps: 5,
  save_steps: 5,
  save_total_limit: 3,
  seed: 3,
};
const argv = (out: string) => [
  'sft',
  ...Object.entries({ ...flags, out }).flatMap(([k, v]) => [`--${k.replace(/_/g, '-')}`, String(v)]),
];

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `aha <args>`; `onLine` sees each stderr line and may signal the child. */
function runAha(args: string[], onLine?: (line: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    let signalled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.stdout.on('data', (b) => (stdout += String(b)));
    child.stderr.on('data', (b) => {
      stderr += String(b);
      pending += String(b);
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines)
        onLine?.(l, (s) => {
          if (!signalled) child.kill(s);
          signalled = true;
        });
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!) as Record<string, unknown>;
let reference: { loss: number; params: Float32Array };

before(async () => {
  const out = join(dir, 'reference');
  const r = await sftTrain(resolveSftOptions({ cli: { ...flags, out } }));
  reference = { loss: r.lastLoss!, params: Float32Array.from(loadPretrained(join(out, 'final')).model.params) };
});

function assertMatchesReference(out: string, finalJson: Record<string, unknown>): void {
  assert.equal(finalJson.status, 'completed');
  assert.equal(finalJson.step, flags.max_steps);
  assert.ok(
    Math.abs((finalJson.loss as number) - reference.loss) <= 1e-6,
    `final loss ${finalJson.loss} vs uninterrupted ${reference.loss}`,
  );
  const d = maxDiff(loadPretrained(join(out, 'final')).model.params, reference.params);
  assert.ok(d.diff <= 1e-6, `final weights differ by ${d.diff}`);
}

test('SIGKILL after the first checkpoint, then --resume: same final loss as the uninterrupted run', async () => {
  const out = join(dir, 'killed');
  const killed = await runAha(argv(out), (line, kill) => {
    if (/saved .*checkpoint-5$/.test(line)) kill('SIGKILL');
  });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.ok(existsSync(join(out, 'checkpoint-5')));
  assert.ok(!existsSync(join(out, 'final')));
  const resumed = await runAha([...argv(out), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming from .*checkpoint-\d+ at step \d+\/100/);
  assertMatchesReference(out, lastJson(resumed.stdout));
});

test('SIGINT: finishes the step, checkpoints, prints how to resume, exits 130; `--out DIR --resume` completes it', async () => {
  const out = join(dir, 'interrupted');
  const stopped = await runAha(argv(out), (line, kill) => {
    if (/saved .*checkpoint-5$/.test(line)) kill('SIGINT');
  });
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(
    stopped.stderr,
    new RegExp(`resume with: aha sft --out ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} --resume`),
  );
  const at = lastJson(stopped.stdout);
  assert.equal(at.status, 'interrupted');
  assert.ok((at.step as number) >= 5 && (at.step as number) < flags.max_steps);
  assert.equal(at.checkpoint, join(out, `checkpoint-${at.step}`));
  assert.ok(existsSync(at.checkpoint as string));
  // The run directory's config.json supplies every other option.
  const resumed = await runAha(['sft', '--out', out, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assertMatchesReference(out, lastJson(resumed.stdout));
});

test('a bad config file: exit 1 with a one-line message naming the file and field', async () => {
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, `model: ${base.dir}\ndata: ${data}\nout: ${join(dir, 'bad')}\nlearning_rate: fast\n`);
  const r = await runAha(['sft', '--config', cfg]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `aha: ${cfg}: learning_rate: must be a number (got "fast")\n`);
});
