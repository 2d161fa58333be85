import { SingleBar, Presets } from 'cli-progress';

/** A progress bar on stderr with rate and ETA; silent when stderr is not a terminal (logs stay clean). */
export class Progress {
  private bar?: SingleBar;
  private readonly tty = process.stderr.isTTY === true;
  private lastLog = 0;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'it') {
    if (this.tty) {
      this.bar = new SingleBar(
        { format: `${label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {status}`, hideCursor: true, etaBuffer: 20 },
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
      process.stderr.write(`${this.label}: ${value}/${this.total} ${this.unit} (${rate} ${this.unit}/s, ETA ${eta.toFixed(0)} s) ${status}\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
