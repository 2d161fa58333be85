/**
 * Progress on the terminal, drawn from the events of src/train/progress.ts.
 *
 * On a terminal: a live block at the bottom, a bar line (label, bar, done/total, rate, ETA) and below it the step's
 * metrics wrapped to the terminal's width, so that reward, KL, length and the rest stay visible on an 80-column
 * terminal; warnings are printed above the block. Without a terminal (a log file, CI): one plain line per logged
 * step, never two for the same step.
 *
 * The drawing is a pure function of the events, their times and the width ({@link ProgressView}); only
 * {@link progressBars} touches the stream. cli-progress is not used here: it redraws a single line, and the metrics
 * block below the bar spans a number of lines that changes with the width.
 */
import { clearScreenDown, cursorTo, moveCursor } from 'node:readline';
import type { ProgressEvent, ProgressSink, WarningEvent } from '../train/progress.ts';

/** How a {@link ProgressView} shows progress. */
export interface ProgressViewOptions {
  /** A live block redrawn in place (a terminal), else plain lines. */
  tty: boolean;
  /** Plain lines only: a line every `every` units (and for the last); default 1. */
  every?: number;
  /** Plain lines only: at most one line per this many milliseconds (the last unit always gets one); default 0. */
  minIntervalMs?: number;
}

/** What to write after an event: `print` for good (above the live block), then the live block. */
export interface ProgressOutput {
  /** Lines written once, in order. */
  print: string[];
  /** The live block's new lines ([] clears it); undefined leaves it as it is. */
  live?: string[];
}

interface Bar {
  label: string;
  unit: string;
  total: number;
  /** Units done when this bar started (a resumed run's earlier steps are not its own: rate and ETA skip them). */
  base: number;
  startMs: number;
  done: number;
  nowMs: number;
  metrics?: Readonly<Record<string, string>>;
  status?: string;
  printedDone: number;
  printedAt: number;
}

/** Seconds as "42s", "7m50s", "2h05m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Units per second since the bar started, or undefined before the first unit is done. */
function rateOf(b: Bar): number | undefined {
  const secs = (b.nowMs - b.startMs) / 1000;
  const n = b.done - b.base;
  return n > 0 && secs > 0 ? n / secs : undefined;
}

function rateText(b: Bar): string {
  const r = rateOf(b);
  if (r === undefined) return `-- ${b.unit}/s`;
  // Slow work reads better as time per unit (tqdm's s/it).
  return r >= 1 ? `${r.toFixed(1)} ${b.unit}/s` : `${(1 / r).toFixed(1)} s/${b.unit}`;
}

function etaText(b: Bar): string {
  const r = rateOf(b);
  if (b.done >= b.total) return 'ETA 0s';
  return r === undefined ? 'ETA --' : `ETA ${formatDuration((b.total - b.done) / r)}`;
}

/** Cuts a line to `width` columns, marking the cut. */
function fit(line: string, width: number): string {
  if (line.length <= width) return line;
  return width <= 1 ? line.slice(0, Math.max(0, width)) : line.slice(0, width - 1).trimEnd() + '…';
}

/** The bar line, fitted to `width`: the bar shrinks first, then goes, then the rate, then the line is cut. */
function barLine(b: Bar, width: number): string {
  const count = `${b.done}/${b.total} ${b.unit}`;
  const rate = rateText(b);
  const eta = etaText(b);
  const withRate = `${count} | ${rate} | ${eta}`;
  const barRoom = width - b.label.length - withRate.length - 4; // "label [bar] rest": 2 brackets, 2 spaces
  if (barRoom >= 10) {
    const cells = Math.min(40, barRoom);
    const filled = b.total > 0 ? Math.min(cells, Math.round((cells * b.done) / b.total)) : 0;
    return `${b.label} [${'█'.repeat(filled)}${'░'.repeat(cells - filled)}] ${withRate}`;
  }
  for (const rest of [withRate, `${count} | ${eta}`]) {
    const line = `${b.label} ${rest}`;
    if (line.length <= width) return line;
  }
  return fit(`${b.label} ${count} | ${eta}`, width);
}

/** The metrics as "name value" items wrapped into lines of at most `width` columns (an item never splits). */
export function metricLines(items: readonly string[], width: number, indent = '  '): string[] {
  const lines: string[] = [];
  let cur = '';
  const room = Math.max(1, width - indent.length);
  for (const raw of items) {
    const item = fit(raw, room);
    if (cur === '') cur = item;
    else if (cur.length + 3 + item.length <= room) cur += ` · ${item}`;
    else {
      lines.push(indent + cur);
      cur = item;
    }
  }
  if (cur !== '') lines.push(indent + cur);
  return lines.map((l) => fit(l, width));
}

/** Words wrapped into lines of at most `width` columns (a word longer than a line is cut). */
function wrapWords(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const lead = lines.length === 0 ? '' : indent;
    if (cur === '') cur = lead + word;
    else if (cur.length + 1 + word.length <= width) cur += ` ${word}`;
    else {
      lines.push(fit(cur, width));
      cur = indent + word;
    }
  }
  if (cur !== '') lines.push(fit(cur, width));
  return lines;
}

function items(b: Bar): string[] {
  if (b.metrics) return Object.entries(b.metrics).map(([k, v]) => `${k} ${v}`);
  return b.status ? b.status.split(' | ').filter(Boolean) : [];
}

/**
 * Progress drawn as text: feed it events with their time and the width, and it says what to write. One bar at a
 * time: a new bar starts when the label or the total changes (the stages of a pipeline), the old one's last frame
 * staying printed.
 */
export class ProgressView {
  private bar?: Bar;
  private readonly every: number;
  private readonly minIntervalMs: number;

  constructor(private readonly o: ProgressViewOptions) {
    this.every = Math.max(1, Math.floor(o.every ?? 1));
    this.minIntervalMs = o.minIntervalMs ?? 0;
  }

  /** The live block now (bar line, then metrics lines); [] without a bar or without a terminal. */
  frame(width: number): string[] {
    const b = this.bar;
    if (!b || !this.o.tty) return [];
    return [barLine(b, width), ...metricLines(items(b), width)];
  }

  /** What to write for `e`, received at `nowMs`, on a terminal `width` columns wide. */
  handle(e: ProgressEvent | WarningEvent, nowMs: number, width: number): ProgressOutput {
    if (e.kind === 'warning') {
      const text = `${e.label}: warning: ${e.message}`;
      if (!this.o.tty) return { print: [text] };
      return { print: wrapWords(text, width, '  '), live: this.frame(width) };
    }
    const print: string[] = [];
    let b = this.bar;
    if (!b || b.label !== e.label || b.total !== e.total) {
      if (b && this.o.tty) print.push(...this.frame(width));
      b = this.bar = {
        label: e.label,
        unit: e.unit,
        total: e.total,
        base: e.done,
        startMs: nowMs,
        done: e.done,
        nowMs,
        printedDone: e.done,
        printedAt: nowMs,
      };
    }
    if (e.done !== b.done) {
      b.metrics = undefined;
      b.status = undefined;
    }
    b.done = e.done;
    b.nowMs = nowMs;
    if (e.metrics !== undefined) b.metrics = e.metrics;
    if (e.status !== undefined) b.status = e.status;

    if (this.o.tty) {
      if (!e.finished) return { print, live: this.frame(width) };
      print.push(...this.frame(width));
      this.bar = undefined;
      return { print, live: [] };
    }
    const last = e.done >= b.total || e.finished === true;
    if (b.done > b.printedDone && (last || (b.done % this.every === 0 && nowMs - b.printedAt >= this.minIntervalMs))) {
      print.push(this.plainLine(b));
      b.printedDone = b.done;
      b.printedAt = nowMs;
    }
    if (e.finished) this.bar = undefined;
    return { print };
  }

  /** The line of one step in a log: "grpo 12/60 step | reward 0.613 | acc 50.0% | 9.8 s/step | ETA 7m50s". */
  private plainLine(b: Bar): string {
    return [`${b.label} ${b.done}/${b.total} ${b.unit}`, ...items(b), rateText(b), etaText(b)].join(' | ');
  }
}

/** Writes a {@link ProgressView} to a stream, redrawing the live block in place on a terminal. */
class StreamProgress {
  private drawn: string[] = [];
  private readonly view: ProgressView;
  private readonly tty: boolean;
  // The width is read again at every draw; a resize while a block is shown redraws it at once.
  private readonly onResize = () => this.write({ print: [], live: this.view.frame(this.width()) }, true);

  constructor(
    private readonly stream: NodeJS.WriteStream,
    o: Omit<ProgressViewOptions, 'tty'>,
  ) {
    this.tty = stream.isTTY === true;
    this.view = new ProgressView({ ...o, tty: this.tty });
  }

  /** Columns to draw in: one less than the terminal's, so no line ever lands in the auto-wrapping last column. */
  private width(): number {
    const cols = this.stream.columns || process.stdout.columns || 80;
    return Math.max(20, cols - 1);
  }

  handle(e: ProgressEvent | WarningEvent): void {
    this.write(this.view.handle(e, Date.now(), this.width()));
  }

  private write(out: ProgressOutput, resized = false): void {
    if (!this.tty) {
      if (out.print.length > 0) this.stream.write(out.print.map((l) => l + '\n').join(''));
      return;
    }
    if (out.live === undefined && out.print.length === 0) return;
    // Back to the top of the live block and clear it; after a resize the terminal may have wrapped its lines.
    const cols = this.stream.columns || 80;
    const rows = this.drawn.reduce((n, l) => n + (resized ? Math.max(1, Math.ceil(l.length / cols)) : 1), 0);
    if (rows > 0) {
      cursorTo(this.stream, 0);
      moveCursor(this.stream, 0, -rows);
      clearScreenDown(this.stream);
    }
    const live = out.live ?? this.drawn;
    this.stream.write([...out.print, ...live].map((l) => l + '\n').join(''));
    if (live.length > 0 && this.drawn.length === 0) this.stream.on('resize', this.onResize);
    if (live.length === 0 && this.drawn.length > 0) this.stream.off('resize', this.onResize);
    this.drawn = live;
  }
}

/**
 * A progress sink for the CLI, on stderr: a live bar with the metrics on a terminal, else one line per `every`
 * units (and the last). See {@link ProgressView}.
 */
export function progressBars(o: { every?: number; minIntervalMs?: number } = {}): ProgressSink {
  const p = new StreamProgress(process.stderr, o);
  return (e) => p.handle(e);
}

/**
 * One progress bar for work the CLI drives itself (an evaluation): `update` with units done since it started.
 * Without a terminal, a line at most every 10 s, and one at the end.
 */
export class Progress {
  private readonly sink: ProgressSink;
  private value = 0;
  private stopped = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
  ) {
    this.sink = progressBars({ minIntervalMs: 10_000 });
    this.sink({ label, done: 0, total, unit });
  }

  update(value: number, status = ''): void {
    if (this.stopped) return;
    this.value = value;
    this.sink({ label: this.label, done: value, total: this.total, unit: this.unit, status });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sink({ label: this.label, done: this.value, total: this.total, unit: this.unit, finished: true });
  }
}
