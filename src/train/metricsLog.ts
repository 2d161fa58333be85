/**
 * A run's metrics, one flat record per logged step (TRL's names: loss, learning_rate, reward, kl, ...), written where
 * `report_to` says (transformers' option name):
 *
 *   out/metrics.jsonl                              always: one JSON object per record (the report and resume read it)
 *   out/metrics.csv                                'csv': the same rows, one column per key (header: every key seen)
 *   out/runs/events.out.tfevents.<time>.<host>.<pid>   'tensorboard': scalars as transformers' TensorBoard callback
 *                                                  names them, train/<key> and eval/<key> (eval_loss -> eval/loss)
 *
 * Default: jsonl and tensorboard (an event file is small, and `tensorboard --logdir out/runs` then just works).
 */
import { appendFileSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/fs.ts';
import { METRICS_FILE, StepLog } from './runDir.ts';
import { TensorBoardWriter } from './tensorboard.ts';

export const METRICS_CSV_FILE = 'metrics.csv';
/** The TensorBoard log directory inside a run (transformers' default logging_dir is <output_dir>/runs too). */
export const TENSORBOARD_DIR = 'runs';

/**
 * Removes what a run's metrics were written to: metrics.jsonl, metrics.csv and the event files in runs/ (runs/
 * itself only when that leaves it empty: a user's run directory may hold a runs/ of other things).
 */
export function removeMetricsFiles(out: string): void {
  rmSync(join(out, METRICS_FILE), { force: true });
  rmSync(join(out, METRICS_CSV_FILE), { force: true });
  const tb = join(out, TENSORBOARD_DIR);
  if (!existsSync(tb) || !statSync(tb).isDirectory()) return;
  for (const name of readdirSync(tb))
    if (name.startsWith('events.out.tfevents.')) rmSync(join(tb, name), { force: true });
  if (readdirSync(tb).length === 0) rmSync(tb, { recursive: true, force: true });
}

/** Where metrics can go. metrics.jsonl is always written; 'jsonl' is accepted for transformers-style lists. */
export const REPORT_TO = ['jsonl', 'csv', 'tensorboard'] as const;
export type ReportTo = (typeof REPORT_TO)[number];
export const DEFAULT_REPORT_TO: readonly ReportTo[] = ['jsonl', 'tensorboard'];

/**
 * The `report_to` option: a list (`[jsonl, csv, tensorboard]`), one name, a comma-separated string (the command
 * line's `--report-to csv,tensorboard`), or 'none' / [] for metrics.jsonl alone.
 */
export const reportToSchema = z.preprocess(
  (v) => {
    const list = typeof v === 'string' ? v.split(',') : v;
    return Array.isArray(list)
      ? list.map((x) => (typeof x === 'string' ? x.trim() : x)).filter((x) => x !== '' && x !== 'none')
      : list;
  },
  z.array(z.enum(REPORT_TO)),
);

/** A record's value as a CSV cell (RFC 4180 quoting). */
function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows of records as CSV text: a header with every key in order of first appearance, then one line per record. */
export function toCsv(records: readonly Record<string, unknown>[]): string {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of records)
    for (const k of Object.keys(r))
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
  if (columns.length === 0) return '';
  return [columns, ...records.map((r) => columns.map((c) => r[c]))]
    .map((row, i) => (i === 0 ? (row as string[]).map(csvCell) : row.map(csvCell)).join(','))
    .map((l) => l + '\n')
    .join('');
}

/**
 * The TensorBoard tag of a record key, as transformers' TensorBoardCallback writes it: eval_<x> is eval/<x>,
 * everything else train/<key> (so `rewards/accuracy/mean` is `train/rewards/accuracy/mean`).
 */
export function tensorboardTag(key: string): string {
  return key.startsWith('eval_') ? `eval/${key.slice(5)}` : `train/${key}`;
}

/** A run's metrics writer (see the file comment). */
export class MetricsLog {
  readonly jsonl: StepLog;
  private readonly csvPath: string;
  private readonly tbDir: string;
  private csvColumns: Set<string> | null = null;
  private tb?: TensorBoardWriter;
  private purgeFrom?: number;
  private readonly reportTo: ReadonlySet<ReportTo>;

  constructor(
    readonly out: string,
    reportTo: readonly ReportTo[] = DEFAULT_REPORT_TO,
  ) {
    this.jsonl = new StepLog(join(out, METRICS_FILE));
    this.csvPath = join(out, METRICS_CSV_FILE);
    this.tbDir = join(out, TENSORBOARD_DIR);
    this.reportTo = new Set(reportTo);
  }

  /** A fresh run: empties metrics.jsonl and removes metrics.csv and the event files of an earlier attempt. */
  reset(): void {
    removeMetricsFiles(this.out);
    this.jsonl.reset();
    this.csvColumns = null;
  }

  /**
   * A resumed run at `step`: drops the records past it (logged by a run killed before its next checkpoint, which
   * the resume redoes), rewrites metrics.csv to match, and has the next event file tell TensorBoard to drop them.
   */
  resumeAt(step: number): void {
    this.jsonl.truncateAfter(step);
    this.purgeFrom = step + 1;
    if (this.reportTo.has('csv')) this.rewriteCsv();
  }

  /** Appends one record (it must carry `step`) to every output. */
  append(record: Record<string, unknown>): void {
    this.jsonl.append(record);
    if (this.reportTo.has('csv')) {
      if (this.csvColumns === null || Object.keys(record).some((k) => !this.csvColumns!.has(k))) this.rewriteCsv();
      else appendFileSync(this.csvPath, [...this.csvColumns].map((c) => csvCell(record[c])).join(',') + '\n');
    }
    if (this.reportTo.has('tensorboard')) {
      this.tb ??= new TensorBoardWriter(this.tbDir, { purgeFrom: this.purgeFrom });
      const scalars: Record<string, number> = {};
      for (const [k, v] of Object.entries(record))
        if (k !== 'step' && typeof v === 'number') scalars[tensorboardTag(k)] = v;
      this.tb.addScalars(record.step as number, scalars);
    }
  }

  /** Every record of metrics.jsonl. */
  read(): Record<string, unknown>[] {
    return this.jsonl.read();
  }

  /** metrics.csv from metrics.jsonl, whole: a key not seen before widens the header. */
  private rewriteCsv(): void {
    const records = this.jsonl.read();
    const text = toCsv(records);
    if (text === '') {
      rmSync(this.csvPath, { force: true });
      this.csvColumns = null;
      return;
    }
    writeFileAtomic(this.csvPath, text);
    this.csvColumns = new Set(records.flatMap((r) => Object.keys(r)));
  }
}
