// The progress renderer as a pure function of (events, times, width): what a terminal and a log would show.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { formatDuration, metricLines, ProgressView } from '../../src/cli/progress.ts';
import type { ProgressEvent, WarningEvent } from '../../src/train/progress.ts';

/** The metrics a GRPO step reports (as progressMetrics writes them), the widest realistic set. */
const GRPO_METRICS = {
  reward: '1.234 ±0.456',
  acc: '56.3%',
  format: '100.0%',
  len: '145 (max 256)',
  kl: '1.2e-3',
  entropy: '0.812',
  zero_std: '12.5%',
  grad_norm: '0.531',
  lr: '5.0e-5',
};
const ITEMS = Object.entries(GRPO_METRICS).map(([k, v]) => `${k} ${v}`);

const step = (done: number, extra: Partial<ProgressEvent> = {}): ProgressEvent => ({
  label: 'grpo',
  done,
  total: 60,
  unit: 'step',
  ...(done > 0 ? { metrics: GRPO_METRICS } : {}),
  ...extra,
});

/** Feeds events [event, seconds] to a view and collects what it writes. */
function run(view: ProgressView, events: [ProgressEvent | WarningEvent, number][], width: number) {
  const printed: string[] = [];
  const frames: string[][] = [];
  for (const [e, t] of events) {
    const out = view.handle(e, t * 1000, width);
    printed.push(...out.print);
    if (out.live !== undefined) frames.push(out.live);
  }
  return { printed, frames };
}

describe('ProgressView on a terminal', () => {
  it('fits every line to the width and keeps every metric whole, from 20 to 200 columns', () => {
    for (let width = 20; width <= 200; width++) {
      const { frames, printed } = run(
        new ProgressView({ tty: true }),
        [
          [step(0), 0],
          [step(1), 12],
          [step(2), 25],
        ],
        width,
      );
      for (const line of [...frames.flat(), ...printed]) assert.ok(line.length <= width, `${width}: "${line}"`);
      const last = frames[frames.length - 1];
      // Items are never split across lines: each appears whole on one line once it fits at all.
      if (width >= 2 + Math.max(...ITEMS.map((s) => s.length)))
        for (const item of ITEMS)
          assert.ok(
            last.some((l) => l.includes(item)),
            `${width} columns: "${item}" missing from\n${last.join('\n')}`,
          );
    }
  });

  it('on 80 columns: a bar line with count, rate and ETA, then the metrics wrapped below it', () => {
    const { frames } = run(
      new ProgressView({ tty: true }),
      [
        [step(0), 0],
        [step(2), 20],
      ],
      80,
    );
    const [bar, ...rest] = frames[1];
    assert.match(bar, /^grpo \[█+░+\] 2\/60 step \| 10\.0 s\/step \| ETA 9m40s$/);
    assert.equal(bar.length, 80);
    assert.ok(rest.length >= 2, 'the metrics wrap onto more than one line at 80 columns');
    assert.ok(rest.every((l) => l.startsWith('  ')));
    assert.equal(rest.join(' · ').replace(/\s+/g, ' ').trim(), ITEMS.join(' · '));
  });

  it('the first frame says ETA -- (no rate yet), never NaN or Infinity', () => {
    const { frames } = run(new ProgressView({ tty: true }), [[step(0), 0]], 80);
    assert.match(frames[0][0], /0\/60 step \| -- step\/s \| ETA --$/);
    assert.ok(!/NaN|Infinity|NFs/.test(frames[0].join('\n')));
  });

  it("rate and ETA count only this run's steps (a resumed run starts at step 40)", () => {
    const { frames } = run(
      new ProgressView({ tty: true }),
      [
        [step(40), 0],
        [step(44), 2],
      ],
      100,
    );
    assert.match(frames[1][0], /44\/60 step \| 2\.0 step\/s \| ETA 8s$/);
  });

  it('prints a warning above the live block and draws the block again below it', () => {
    const view = new ProgressView({ tty: true });
    run(view, [[step(1), 5]], 80);
    const out = view.handle(
      { kind: 'warning', label: 'grpo', message: 'step 1: no learning signal: all 8 groups have zero reward variance' },
      6000,
      40,
    );
    assert.equal(out.print[0], 'grpo: warning: step 1: no learning');
    assert.ok(out.print.every((l) => l.length <= 40));
    assert.equal(
      out.print.join(' ').replace(/\s+/g, ' '),
      'grpo: warning: step 1: no learning signal: all 8 groups have zero reward variance',
    );
    assert.match(out.live![0], /^grpo /);
  });

  it('leaves the last frame printed when a bar finishes or the next stage starts', () => {
    const view = new ProgressView({ tty: true });
    const { printed, frames } = run(
      view,
      [
        [step(59), 0],
        [step(60), 10],
        [{ label: 'sft', done: 0, total: 5, unit: 'steps' }, 11],
        [{ label: 'sft', done: 5, total: 5, unit: 'steps', finished: true }, 20],
      ],
      80,
    );
    assert.match(printed[0], /^grpo .* 60\/60 step \| 10\.0 s\/step \| ETA 0s$/);
    assert.ok(printed.some((l) => /^sft .* 5\/5 steps/.test(l)));
    assert.deepEqual(frames[frames.length - 1], [], 'the live block is cleared at the end');
  });
});

describe('ProgressView without a terminal', () => {
  it('prints exactly one line per step with its metrics, none for the start or a repeated finish', () => {
    const events: [ProgressEvent, number][] = [[step(0), 0]];
    for (let s = 1; s <= 60; s++) events.push([step(s), 10 * s]);
    events.push([{ label: 'grpo', done: 60, total: 60, unit: 'step', finished: true }, 601]);
    const { printed, frames } = run(new ProgressView({ tty: false }), events, 80);
    assert.equal(printed.length, 60);
    assert.deepEqual(frames, []);
    assert.deepEqual(
      printed.map((l) => /^grpo (\d+)\/60 step \| /.exec(l)?.[1]),
      Array.from({ length: 60 }, (_, i) => String(i + 1)),
    );
    for (const item of ITEMS) assert.ok(printed[0].includes(item), item);
    assert.match(printed[0], /\| 10\.0 s\/step \| ETA 9m50s$/);
  });

  it('honours logging every N steps, and still logs the step an interrupted run stopped at', () => {
    const events: [ProgressEvent, number][] = [[step(0), 0]];
    for (let s = 1; s <= 7; s++) events.push([step(s), s]);
    // Interrupted at step 7: the trainer's final event carries no metrics; the line keeps step 7's.
    events.push([{ label: 'grpo', done: 7, total: 60, unit: 'step', finished: true }, 8]);
    const { printed } = run(new ProgressView({ tty: false, every: 3 }), events, 80);
    assert.deepEqual(
      printed.map((l) => /^grpo (\d+)\/60/.exec(l)?.[1]),
      ['3', '6', '7'],
    );
    assert.ok(printed[2].includes('reward 1.234 ±0.456'));
  });

  it('prints a warning as one plain line', () => {
    const { printed } = run(
      new ProgressView({ tty: false }),
      [[{ kind: 'warning', label: 'grpo', message: 'no learning signal' }, 0]],
      20,
    );
    assert.deepEqual(printed, ['grpo: warning: no learning signal']);
  });

  it('throttles to one line per interval when asked (an evaluation), the last always', () => {
    const view = new ProgressView({ tty: false, minIntervalMs: 10_000 });
    const events: [ProgressEvent, number][] = [];
    for (let d = 0; d <= 50; d++) events.push([{ label: 'eval', done: d, total: 50, unit: 'problems' }, d]);
    const { printed } = run(view, events, 80);
    assert.deepEqual(
      printed.map((l) => /^eval (\d+)\/50/.exec(l)?.[1]),
      ['10', '20', '30', '40', '50'],
    );
  });
});

describe('helpers', () => {
  it('metricLines wraps between items and cuts an item wider than the line', () => {
    assert.deepEqual(metricLines(['a 1', 'b 2', 'c 3'], 12), ['  a 1 · b 2', '  c 3']);
    assert.deepEqual(metricLines(['reward 0.123456789'], 10), ['  reward…']);
  });
  it('formatDuration', () => {
    assert.deepEqual([0, 42.4, 60, 599, 3600, 7500].map(formatDuration), [
      '0s',
      '42s',
      '1m00s',
      '9m59s',
      '1h00m',
      '2h05m',
    ]);
  });
});
