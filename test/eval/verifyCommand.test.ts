import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { verifyCommand } from '../../src/cli/verify.ts';
import { AhaError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-verify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sink(): { out: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return {
    out,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l)),
  };
}

describe('verifyCommand (aha verify)', () => {
  it('writes one verdict per input line, in order, and survives malformed lines', async () => {
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ gold: '\\frac{1}{2}', pred: '0.5' }),
        JSON.stringify({ gold: '(3,4]', pred: '(3,4)' }),
        '{"gold": "5", "pred": ',
        '',
        JSON.stringify({ gold: '5' }),
        JSON.stringify([1, 2]),
        JSON.stringify({ gold: 27, pred: '27.0' }),
        JSON.stringify({ gold: '5', pred: { x: 1 } }),
        JSON.stringify({ gold: '5', pred: '\\frac{' }),
      ].join('\n') + '\n',
    );
    const { out, lines } = sink();
    const summary = await verifyCommand({ input, out });
    const rows = lines();
    assert.equal(rows.length, 8);
    assert.deepEqual(rows[0], {
      equal: true,
      gold_parsed: '1/2',
      pred_parsed: '0.5',
      rule: 'expression',
      reason: 'equal rationals',
    });
    assert.equal(rows[1].equal, false);
    assert.equal(rows[1].gold_parsed, '(3, 4]');
    assert.match(String(rows[1].reason), /brackets/);
    assert.equal(rows[2].equal, false);
    assert.match(String(rows[2].reason), /^line 3: invalid JSON/);
    assert.deepEqual(Object.keys(rows[2]), ['equal', 'reason']);
    assert.deepEqual(rows[3], { equal: false, reason: 'line 5: missing field "pred"' });
    assert.match(String(rows[4].reason), /^line 6: expected an object/);
    assert.equal(rows[5].equal, true);
    assert.match(String(rows[6].reason), /^line 8: field "pred" must be a string or number/);
    assert.equal(rows[7].equal, false);
    assert.equal(rows[7].pred_parsed, null);
    assert.match(String(rows[7].reason), /pred: unparseable/);
    assert.deepEqual(summary, { lines: 8, equal: 2, malformed: 4 });
  });

  it('reads whole completions by default; --pred-extraction answer takes pred as it is', async () => {
    const input = join(dir, 'completions.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ gold: '$\\frac{3}{56}$', pred: 'so the answer is $\\boxed{\\frac{3}{56}}$.' }),
        JSON.stringify({ gold: '9', pred: 'Answer $ 9 $' }),
        JSON.stringify({ gold: '9', pred: 'I tried 7, then 8.' }),
      ].join('\n'),
    );
    const a = sink();
    assert.deepEqual(await verifyCommand({ input, out: a.out }), { lines: 3, equal: 2, malformed: 0 });
    assert.deepEqual(
      a.lines().map((r) => [r.equal, r.rule, r.pred_parsed]),
      [
        [true, 'boxed', '3/56'],
        [true, 'latex', '9'],
        [false, 'lastNumber', '8'],
      ],
    );
    const b = sink();
    assert.deepEqual(await verifyCommand({ input, out: b.out, predExtraction: 'answer' }), {
      lines: 3,
      equal: 1,
      malformed: 0,
    });
    assert.deepEqual(
      b.lines().map((r) => r.rule),
      ['boxed', 'whole', 'whole'],
    );
  });

  it('the tolerance option loosens non-integer comparisons only', async () => {
    const input = join(dir, 'tol.jsonl');
    writeFileSync(
      input,
      [JSON.stringify({ gold: '\\pi', pred: '3.1416' }), JSON.stringify({ gold: '100', pred: '101' })].join('\n'),
    );
    const strict = sink();
    await verifyCommand({ input, out: strict.out });
    const loose = sink();
    await verifyCommand({ input, out: loose.out, rtol: 1e-4 });
    assert.deepEqual(
      strict.lines().map((r) => r.equal),
      [false, false],
    );
    assert.deepEqual(
      loose.lines().map((r) => r.equal),
      [true, false],
    );
  });

  it('aha verify writes every verdict, then exits 1 when a line is malformed (0 when none is)', () => {
    const input = join(dir, 'cli.jsonl');
    const good = JSON.stringify({ gold: '2', pred: '2' });
    writeFileSync(input, [good, '{"gold": "5"', JSON.stringify({ gold: '3', pred: '4' })].join('\n') + '\n');
    const run = () => spawnSync(process.execPath, ['bin/aha.js', 'verify', '--input', input], { encoding: 'utf8' });
    const bad = run();
    assert.equal(bad.status, 1, bad.stderr);
    assert.deepEqual(
      bad.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).equal),
      [true, false, false],
    );
    assert.match(bad.stderr, /^aha: verify: 1 of 3 line\(s\) malformed/);
    writeFileSync(input, good + '\n');
    const ok = run();
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stderr, '');
  });

  it('a missing input file is an AhaError naming it', async () => {
    const missing = join(dir, 'nope.jsonl');
    await assert.rejects(
      verifyCommand({ input: missing, out: sink().out }),
      (e: unknown) => e instanceof AhaError && e.message.includes(missing),
    );
    await assert.rejects(verifyCommand({ input: dir, out: sink().out }), AhaError);
  });
});
