import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { INTERRUPTED_EXIT_CODE, onInterrupt } from '../../src/train/interrupt.ts';

const child = join(import.meta.dirname, 'fixtures', 'interruptChild.ts');

/** Runs the fixture, sends `signals` (one per READY/FIRST line seen), returns its output and exit code. */
function run(
  signals: NodeJS.Signals[],
  env: Record<string, string> = {},
): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, ...env } });
    let out = '';
    let sent = 0;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const ready = out.includes('READY') && sent === 0;
      const again = out.includes('FIRST') && sent === 1;
      if ((ready || again) && sent < signals.length) p.kill(signals[sent++]);
    });
    p.on('exit', (code) => resolve({ out, code }));
  });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig}: the work stops at the end of its step, exits 130, and the listeners are removed`, async () => {
    const r = await run([sig]);
    assert.equal(r.code, INTERRUPTED_EXIT_CODE, r.out);
    assert.match(r.out, new RegExp(`FIRST ${sig}\\nSTOPPED \\d+ interrupted by ${sig}`));
    assert.match(r.out, /LISTENERS 0 0/);
    assert.doesNotMatch(r.out, /DONE|SECOND/);
  });
}

test('a second signal ends a step that does not stop, with 130', async () => {
  const r = await run(['SIGINT', 'SIGTERM'], { HANG: '1' });
  assert.equal(r.code, INTERRUPTED_EXIT_CODE, r.out);
  assert.match(r.out, /FIRST SIGINT\nSECOND SIGTERM/);
  assert.doesNotMatch(r.out, /STOPPED|DONE/);
});

test('in process: abort on the first signal, exit hook on the second, nothing left installed after dispose', () => {
  const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
  const exits: number[] = [];
  const said: string[] = [];
  const i = onInterrupt({
    onFirst: (s) => said.push(`first ${s}`),
    onSecond: (s) => said.push(`second ${s}`),
    exit: (c) => exits.push(c),
  });
  assert.equal(i.interrupted, false);
  process.emit('SIGTERM', 'SIGTERM');
  assert.equal(i.interrupted, true);
  assert.equal(i.signal.aborted, true);
  assert.deepEqual(exits, []);
  process.emit('SIGINT', 'SIGINT');
  assert.deepEqual(exits, [130]);
  assert.deepEqual(said, ['first SIGTERM', 'second SIGINT']);
  i.dispose();
  assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], before);
});

test("under mpirun: SIGCONT (Open MPI's Ctrl-C) is the first signal, its SIGTERM belongs to it, a later one quits", () => {
  const saved = process.env.OMPI_COMM_WORLD_SIZE;
  process.env.OMPI_COMM_WORLD_SIZE = '2';
  const exits: number[] = [];
  const said: string[] = [];
  const i = onInterrupt({ onFirst: (s) => said.push(`first ${s}`), exit: (c) => exits.push(c) });
  try {
    assert.equal(process.listenerCount('SIGCONT') > 0, true);
    process.emit('SIGCONT', 'SIGCONT');
    assert.equal(i.signal.aborted, true);
    process.emit('SIGCONT', 'SIGCONT');
    process.emit('SIGTERM', 'SIGTERM');
    assert.deepEqual(exits, [], 'mpirun sends SIGTERM after SIGCONT for the same Ctrl-C');
    process.emit('SIGTERM', 'SIGTERM');
    assert.deepEqual(exits, [130]);
    assert.deepEqual(said, ['first SIGCONT']);
  } finally {
    i.dispose();
    if (saved === undefined) delete process.env.OMPI_COMM_WORLD_SIZE;
    else process.env.OMPI_COMM_WORLD_SIZE = saved;
  }
  assert.equal(process.listenerCount('SIGCONT'), 0);
});
