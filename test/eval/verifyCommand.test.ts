import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
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
    assert.deepEqual(rows[0], { equal: true, gold_parsed: '1/2', pred_parsed: '0.5', reason: 'equal rationals' });
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

  it('a missing input file is an AhaError naming it', async () => {
    const missing = join(dir, 'nope.jsonl');
    await assert.rejects(
      verifyCommand({ input: missing, out: sink().out }),
      (e: unknown) => e instanceof AhaError && e.message.includes(missing),
    );
    await assert.rejects(verifyCommand({ input: dir, out: sink().out }), AhaError);
  });
});
