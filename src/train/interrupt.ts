/**
 * Ctrl-C and SIGTERM for long runs, one policy for every command: the first signal asks the work to stop at a safe
 * point (a trainer finishes its step and writes a checkpoint), a second one quits at once. Exit code 130 either way,
 * as shells report an interrupted command.
 */

import { worldSize } from '../engine/rankThreads.ts';

/** Exit code of an interrupted run (128 + SIGINT). */
export const INTERRUPTED_EXIT_CODE = 130;

export interface InterruptOptions {
  /** Said when the first signal arrives, e.g. "finishing the current step, then saving a checkpoint". */
  onFirst?: (signal: NodeJS.Signals) => void;
  /** Said before a second signal ends the process. */
  onSecond?: (signal: NodeJS.Signals) => void;
  /** How the process ends on a second signal (tests replace it). */
  exit?: (code: number) => void;
}

/** A handle on the installed listeners. */
export interface Interrupt {
  /** Aborted by the first SIGINT or SIGTERM; its reason names the signal. */
  readonly signal: AbortSignal;
  /** Whether a signal has arrived. */
  readonly interrupted: boolean;
  /** Removes the listeners (always call it, in a finally). */
  dispose(): void;
}

/**
 * Installs SIGINT and SIGTERM listeners until `dispose()`. Under mpirun also SIGCONT: Open MPI (4.x) does not
 * forward SIGINT; on Ctrl-C it sends every rank SIGCONT, then SIGTERM `odls_base_sigkill_timeout` seconds later
 * (default 1), then SIGKILL as long again. The SIGCONT is the only early notice, so it asks the ranks to stop (they
 * agree on the step: src/parallel/dataParallel.ts), and the SIGTERM that follows belongs to the same Ctrl-C: the
 * ranks have until the SIGKILL to finish the step and write the checkpoint. (Resuming a job suspended with Ctrl-Z
 * also sends SIGCONT: such a run stops at a checkpoint too, and --resume continues it.)
 */
export function onInterrupt(o: InterruptOptions = {}): Interrupt {
  const controller = new AbortController();
  const exit = o.exit ?? ((code: number) => process.exit(code));
  const mpirun = worldSize() > 1;
  let first: NodeJS.Signals | undefined;
  let termFollowed = false;
  const handler = (sig: NodeJS.Signals) => {
    if (mpirun && controller.signal.aborted) {
      if (sig === 'SIGCONT') return;
      if (sig === 'SIGTERM' && first === 'SIGCONT' && !termFollowed) return void (termFollowed = true);
    }
    if (controller.signal.aborted) {
      o.onSecond?.(sig);
      exit(INTERRUPTED_EXIT_CODE);
      return;
    }
    first = sig;
    o.onFirst?.(sig);
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  if (mpirun) process.on('SIGCONT', handler);
  return {
    signal: controller.signal,
    get interrupted() {
      return controller.signal.aborted;
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      if (mpirun) process.off('SIGCONT', handler);
    },
  };
}

/** Runs `work` with interrupt handling installed, and removes it afterwards whatever happens. */
export async function withInterrupt<T>(o: InterruptOptions, work: (i: Interrupt) => Promise<T>): Promise<T> {
  const i = onInterrupt(o);
  try {
    return await work(i);
  } finally {
    i.dispose();
  }
}
