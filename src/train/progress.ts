/**
 * Progress of long work as events: trainers and pipelines report them, and whoever drives them decides how to show
 * them (the CLI draws a bar with rate and ETA; a library user logs or ignores them). Nothing below cli/ writes to
 * the terminal itself.
 */

/** One progress report. */
export interface ProgressEvent {
  /** What is progressing, e.g. "grpo", "sft", "eval gsm8k". */
  label: string;
  /** Units done so far (including those of an earlier run that this one resumes). */
  done: number;
  /** Units in all. */
  total: number;
  /** Unit name, e.g. "step". */
  unit: string;
  /** A short status, e.g. "reward 0.61". */
  status?: string;
  /** True on the last event of this piece of work. */
  finished?: boolean;
}

/** A receiver of progress events. */
export type ProgressSink = (e: ProgressEvent) => void;
