/**
 * Progress of long work as events: trainers and pipelines report them, and whoever drives them decides how to show
 * them (the CLI draws a bar with rate and ETA and the metrics below it, or one line per step in a log; a library
 * user logs or ignores them; tests capture them). Nothing below cli/ writes to the terminal itself.
 */

/** One progress report. */
export interface ProgressEvent {
  kind?: 'progress';
  /** What is progressing, e.g. "grpo", "sft", "eval gsm8k". */
  label: string;
  /** Units done so far (including those of an earlier run that this one resumes). */
  done: number;
  /** Units in all. */
  total: number;
  /** Unit name, e.g. "step". */
  unit: string;
  /** A short status, e.g. "reward 0.61" (shown when there are no `metrics`). */
  status?: string;
  /**
   * The metrics of the unit just done, by short name, as display text in display order, e.g.
   * `{reward: '0.613 ±0.41', acc: '50.0%', len: '45'}`; the CLI wraps them to the terminal's width.
   */
  metrics?: Readonly<Record<string, string>>;
  /** True on the last event of this piece of work. */
  finished?: boolean;
}

/** Something the person running the work should know now (no learning signal, a likely misconfiguration). */
export interface WarningEvent {
  kind: 'warning';
  /** Who warns, e.g. "grpo". */
  label: string;
  /** One line, without the label. */
  message: string;
}

/** A receiver of progress events and warnings. */
export type ProgressSink = (e: ProgressEvent | WarningEvent) => void;
