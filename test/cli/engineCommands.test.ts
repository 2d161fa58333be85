import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPretrained } from '../../src/model/pretrained.ts';

const aha = (args: string[]) => spawnSync(process.execPath, ['bin/aha.js', ...args], { encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'aha-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'm');

test('init-model, logprobs and generate work end to end and agree with the library', async () => {
  assert.equal(aha(['init-model', '--config', 'tiny', '--out', model, '--seed', '2']).status, 0);
  const input = join(dir, 'in.jsonl');
  writeFileSync(input, '{"text":"12+30=42"}\n{"ids":[7,8,9,10]}\n');
  const lp = aha(['logprobs', '--model', model, '--input', input]);
  assert.equal(lp.status, 0, lp.stderr);
  const lines = lp.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const p = loadPretrained(model);
  const ids = [p.tokenizer!.encode('12+30=42'), [7, 8, 9, 10]];
  const ref = await p.model.forward(ids);
  assert.equal(lines.length, 2);
  lines.forEach((l, i) => {
    assert.equal(l.logprobs.length, ids[i].length - 1);
    l.logprobs.forEach((x: number, t: number) => assert.ok(Math.abs(x - ref.logprobs[i][t]) < 1e-6));
  });
  const g1 = aha([
    'generate',
    '--model',
    model,
    '--input',
    input,
    '--max-new-tokens',
    '6',
    '--temperature',
    '0.8',
    '--top-p',
    '0.9',
    '--seed',
    '5',
  ]);
  const g2 = aha([
    'generate',
    '--model',
    model,
    '--input',
    input,
    '--max-new-tokens',
    '6',
    '--temperature',
    '0.8',
    '--top-p',
    '0.9',
    '--seed',
    '5',
  ]);
  assert.equal(g1.status, 0, g1.stderr);
  assert.equal(g1.stdout, g2.stdout);
  const out = g1.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  for (const o of out) {
    assert.ok(o.ids.length >= 1 && o.ids.length <= 6);
    assert.equal(o.logprobs.length, o.ids.length);
    assert.ok(['stop', 'length'].includes(o.finish_reason));
    assert.equal(typeof o.text, 'string');
  }
});

test('bad input: one line naming the problem, exit code 1, no stack trace', () => {
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"ids":[1,2,3]}\n{"ids":[1,2\n');
  for (const [args, pattern] of [
    [['logprobs', '--model', model, '--input', bad], /bad\.jsonl:2: malformed JSON/],
    [['logprobs', '--model', join(dir, 'nope'), '--input', bad], /model directory not found/],
    [['generate', '--model', model, '--input', bad, '--top-p', '2'], /--top-p must be <= 1/],
    [['logprobs', '--model', model, '--input', bad, '--batch', '-1'], /--batch must be >= 1/],
  ] as const) {
    const r = aha([...args]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^aha: /);
    assert.match(lines[0], pattern);
  }
  const far = join(dir, 'far.jsonl');
  writeFileSync(far, '{"ids":[1,2,100000]}\n');
  const r = aha(['logprobs', '--model', model, '--input', far]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^aha: token id 100000 .* out of range/);
});

test('bench --json ends with one JSON line holding the throughput figures', () => {
  const r = aha([
    'bench',
    '--model',
    model,
    '--batch',
    '2',
    '--seq',
    '32',
    '--gen-batch',
    '2',
    '--prompt-len',
    '4',
    '--new-tokens',
    '4',
    '--steps',
    '1',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(last.train_tokens_per_s > 0 && last.generate_tokens_per_s > 0 && last.sgemm_gflops > 0);
  assert.ok(
    last.fma_peak_gflops > 0 && Math.abs(last.train_fraction_of_peak - last.train_gflops / last.sgemm_gflops) < 1e-9,
  );
});

test('bench --gradient-checkpointing --gen-batch 0 times training only and reports its peak memory', () => {
  const r = aha(
    ['bench', '--model', model, '--batch', '2', '--seq', '16', '--gen-batch', '0', '--steps', '1'].concat([
      '--gradient-checkpointing',
      '--json',
    ]),
  );
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^sampling/m);
  assert.match(r.stdout, /gradient checkpointing/);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(last.gradient_checkpointing, true);
  assert.equal(last.generate_tokens_per_s, 0);
  assert.ok(last.train_tokens_per_s > 0 && last.train_peak_rss_mb > 0 && last.train_peak_rss_mb <= last.peak_rss_mb);
});

test('bench --group samples GRPO-shaped batches (several completions per prompt); a bad value is a one-line error', () => {
  const r = aha([
    'bench',
    '--model',
    model,
    '--batch',
    '1',
    '--seq',
    '8',
    '--gen-batch',
    '6',
    '--group',
    '3',
    '--prompt-len',
    '4',
    '--new-tokens',
    '3',
    '--steps',
    '1',
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 completions per prompt/);
  const bad = aha(['bench', '--model', model, '--group', '0']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.trim(), /^aha: --group must be >= 1 \(got 0\)$/);
});

test('aha generate at the edges: tiny temperatures are greedy, huge limits are bounded, bad values are one line', () => {
  const input = join(dir, 'edge.jsonl');
  writeFileSync(input, '{"ids":[7,8,9]}\n{"ids":[3]}\n');
  const greedy = aha(['generate', '--model', model, '--input', input, '--greedy', '--max-new-tokens', '5']);
  assert.equal(greedy.status, 0, greedy.stderr);
  for (const extra of [
    ['--temperature', '1e-39', '--top-p', '0.9'],
    ['--temperature', '1e-39'],
    ['--temperature', '1e-39', '--top-k', '99999999999'],
  ]) {
    const r = aha(['generate', '--model', model, '--input', input, '--max-new-tokens', '5', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).ids),
      greedy.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).ids),
      extra.join(' '),
    );
  }
  const long = aha(['generate', '--model', model, '--input', input, '--greedy', '--max-new-tokens', '2147483647']);
  assert.equal(long.status, 0, long.stderr);
  for (const [args, pattern] of [
    [['--top-p', '0'], /--top-p must be > 0/],
    [['--seed', '-1'], /--seed must be >= 0/],
    [['--max-new-tokens', '-5'], /--max-new-tokens must be >= 1/],
    [['--top-k', '1e300'], /--top-k must be below 2\^53/],
  ] as const) {
    const r = aha(['generate', '--model', model, '--input', input, ...args]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

test('aha --version prints package.json version and exits 0', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = aha([flag]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  }
});
