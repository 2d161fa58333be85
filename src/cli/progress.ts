import { SingleBar, Presets } from 'cli-progress';
import type { ProgressSink } from '../train/progress.ts';

/** A progress bar on stderr with rate and ETA; silent when stderr is not a terminal (logs stay clean). */
export class Progress {
  private bar?: SingleBar;
  private readonly tty = process.stderr.isTTY === true;
  private lastLog = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
  ) {
    if (this.tty) {
      this.bar = new SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {status}`,
          hideCursor: true,
          etaBuffer: 20,
        },
        Presets.shades_classic,
      );
      this.bar.start(total, 0, { rate: '0.0', status: '' });
    }
  }

  private start = Date.now();

  update(value: number, status = ''): void {
    const secs = (Date.now() - this.start) / 1000;
    const rate = secs > 0 ? (value / secs).toFixed(1) : '0.0';
    if (this.bar) this.bar.update(value, { rate, status });
    else if (Date.now() - this.lastLog > 10000 || value === this.total) {
      // Non-interactive runs get a line at most every 10 s.
      this.lastLog = Date.now();
      const eta = value > 0 ? ((this.total - value) * secs) / value : 0;
      process.stderr.write(
        `${this.label}: ${value}/${this.total} ${this.unit} (${rate} ${this.unit}/s, ETA ${eta.toFixed(0)} s) ${status}\n`,
      );
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}

/**
 * Draws progress events as bars: a new bar whenever the label or total changes (the stages of a pipeline), its rate
 * and ETA counted from the first event it sees (a resumed run's earlier steps are not its own).
 */
export function progressBars(): ProgressSink {
  let bar: Progress | undefined;
  let key = '';
  let base = 0;
  return (e) => {
    const k = `${e.label}\0${e.total}`;
    if (!bar || k !== key) {
      bar?.stop();
      key = k;
      base = e.done;
      bar = new Progress(e.label, e.total - base, e.unit);
    }
    bar.update(e.done - base, e.status ?? '');
    if (e.finished) {
      bar.stop();
      bar = undefined;
    }
  };
}
