// Module rewards run in a worker thread: a call that times out is stopped for good, and the next call gets a
// fresh worker; results equal those of the same reward run in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isolatedReward, RewardLoadError } from '../../src/rewards/isolatedReward.ts';
import { scoreCompletions, type ScoreItem } from '../../src/rewards/combine.ts';
import type { Example, RewardFn } from '../../src/rewards/types.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-isolated-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const ticks = join(root, 'ticks.txt');
// TypeScript beside no package.json, as a recipe's rewards.ts usually is.
const file = join(root, 'rewards.ts');
writeFileSync(
  file,
  [
    "import { appendFileSync } from 'node:fs';",
    "import { createServer } from 'node:net';",
    "/** Deterministic, with a reason: the count of vowels over the length, plus the answer's length. */",
    'export const vowels = (c: string, ex: { answer: string }, ctx: { note?: (r: string) => void }): number => {',
    '  const n = (c.match(/[aeiou]/g) ?? []).length;',
    "  ctx.note?.(n > 2 ? 'many' : 'few');",
    '  return n / (1 + c.length) + String(ex.answer).length;',
    '};',
    '/** Loops for ever on completions containing "loop": blocks its thread, timers included. */',
    "export const spin = (c: string): number => { if (c.includes('loop')) for (;;) {} return c.length; };",
    `export const tick = (): Promise<number> => new Promise(() => { setInterval(() => appendFileSync(${JSON.stringify(ticks)}, 'x'), 5); });`,
    'export const throws = (c: string): number => { throw new Error(`bad completion: ${c}`); };',
    'export function scaled(o: { k: number }) { return (c: string) => o.k * c.length; }',
    '/** Leaves a 60 s timer and an open server socket behind. */',
    'export const sticky = (c: string): number => { setTimeout(() => {}, 60_000); createServer().listen(0); return c.length; };',
  ].join('\n') + '\n',
);

const item = (completion: string, answer = '42'): ScoreItem<Example> => ({
  completion,
  example: { answer },
  prompt: 'p',
});

test('a synchronous infinite loop times out, is scored 0, and later calls run on a fresh worker', async () => {
  const r = await isolatedReward({ file, exportName: 'spin', name: 'spin' });
  try {
    const first = await scoreCompletions([{ name: 'spin', fn: r.fn }], [item('ab'), item('a loop'), item('abcd')], {
      timeoutMs: 400,
    });
    assert.equal(first.perReward[0].scores[1], 0);
    assert.deepEqual(
      first.errors.filter((e) => e.exampleIndex === 1).map((e) => e.kind),
      ['timeout'],
    );
    // 'ab' ran before the loop began; 'abcd' was queued behind it on the same worker, and was stopped with it.
    assert.equal(first.perReward[0].scores[0], 2);
    for (const e of first.errors.filter((e) => e.exampleIndex === 2)) assert.match(e.message, /timed out|no result/);
    const again = await scoreCompletions([{ name: 'spin', fn: r.fn }], [item('abc'), item('hello')], {
      timeoutMs: 5000,
    });
    assert.deepEqual(again.errors, []);
    assert.deepEqual(again.perReward[0].scores, [3, 5]);
  } finally {
    await r.dispose();
  }
});

test('a timed-out call leaves nothing running: its timers stop with its worker', async () => {
  const r = await isolatedReward({ file, exportName: 'tick', name: 'tick' });
  const res = await scoreCompletions([{ name: 'tick', fn: r.fn }], [item('x')], { timeoutMs: 200 });
  assert.equal(res.errors[0].kind, 'timeout');
  await sleep(100);
  const size = statSync(ticks).size;
  assert.ok(size > 0, 'the interval ran before the timeout');
  await sleep(200);
  assert.equal(statSync(ticks).size, size, 'the interval kept running after the timeout');
  await r.dispose();
});

test('a throwing reward reports its message; a factory gets its options', async () => {
  const t = await isolatedReward({ file, exportName: 'throws', name: 'throws' });
  const s = await isolatedReward({ file, exportName: 'scaled', factory: { options: { k: 3 } }, name: 'scaled' });
  try {
    const res = await scoreCompletions(
      [
        { name: 'throws', fn: t.fn },
        { name: 'scaled', fn: s.fn },
      ],
      [item('abc')],
    );
    assert.deepEqual(res.errors, [
      { rewardName: 'throws', exampleIndex: 0, kind: 'throw', message: 'bad completion: abc' },
    ]);
    assert.deepEqual(res.perReward[1].scores, [9]);
  } finally {
    await Promise.all([t.dispose(), s.dispose()]);
  }
});

test('worker results equal in-process results on a few hundred calls (scores and reasons)', async () => {
  const inProcess = (await import(pathToFileURL(file).href)) as { vowels: RewardFn<Example> };
  const r = await isolatedReward({ file, exportName: 'vowels', name: 'vowels' });
  try {
    const words = ['aha', 'wait', 'think', 'ouija', 'rhythm', 'queueing', '', 'so the answer is 4'];
    const items = Array.from({ length: 400 }, (_, i) =>
      item(`${words[i % words.length]} ${i}`.repeat(1 + (i % 3)), String(i % 17)),
    );
    const viaWorker = await scoreCompletions([{ name: 'v', fn: r.fn }], items);
    const direct = await scoreCompletions([{ name: 'v', fn: inProcess.vowels }], items);
    assert.deepEqual(viaWorker.errors, []);
    assert.deepEqual(viaWorker.perReward, direct.perReward);
    assert.ok(viaWorker.perReward[0].reasons.includes('many') && viaWorker.perReward[0].reasons.includes('few'));
  } finally {
    await r.dispose();
  }
});

test('an example that cannot be copied to the worker is scored in-process, with one warning', async () => {
  const warnings: string[] = [];
  const r = await isolatedReward({ file, exportName: 'vowels', name: 'vowels', warn: (l) => warnings.push(l) });
  try {
    const odd = { answer: '12', check: () => true } as Example;
    const res = await scoreCompletions(
      [{ name: 'vowels', fn: r.fn }],
      [0, 1].map(() => ({ completion: 'aeiou', example: odd, prompt: '' })),
    );
    assert.deepEqual(res.errors, []);
    assert.deepEqual(res.perReward[0].scores, [5 / 6 + 2, 5 / 6 + 2]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^reward 'vowels': an example cannot be copied to its worker .*in-process$/);
  } finally {
    await r.dispose();
  }
});

test('a module that fails to load fails before any call, saying why', async () => {
  await assert.rejects(
    isolatedReward({ file, exportName: 'nothing', name: 'x' }),
    (e: unknown) =>
      e instanceof RewardLoadError && e.failure.stage === 'export' && e.failure.functions.includes('spin'),
  );
  const broken = join(root, 'broken.ts');
  writeFileSync(broken, 'export const f = (: number => 1;\n');
  await assert.rejects(
    isolatedReward({ file: broken, exportName: 'f', name: 'x' }),
    (e: unknown) => e instanceof RewardLoadError && e.failure.stage === 'import',
  );
});

test('with tsx registered through its API (as bin/aha.js does), a reward that leaves a timer and a socket does not keep the process alive', () => {
  const script = join(root, 'api.mjs');
  const here = pathToFileURL(resolve('.') + '/').href;
  writeFileSync(
    script,
    [
      `import { register } from ${JSON.stringify(new URL('node_modules/tsx/dist/esm/api/index.mjs', here).href)};`,
      'register();',
      `const { isolatedReward } = await import(${JSON.stringify(new URL('src/rewards/isolatedReward.ts', here).href)});`,
      `const r = await isolatedReward({ file: ${JSON.stringify(file)}, exportName: 'sticky', name: 'sticky' });`,
      "console.log(await r.fn('abcde', {}, { prompt: '' }));",
      // No dispose, no process.exit: the idle worker must not hold the process.
    ].join('\n') + '\n',
  );
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'the process was still alive after 30 s');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '5');
});
