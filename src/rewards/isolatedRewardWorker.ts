/**
 * The worker side of src/rewards/isolatedReward.ts: loads the user's reward (loadRewardExport), then scores each
 * call posted to it and posts back the value or the error, with the reason the reward noted. Runs in a worker
 * thread whose bootstrap registered tsx, so it imports TypeScript modules as the main thread does.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadRewardExport, messageOf, type LoadFailure } from './loadRewardExport.ts';

/** What the main thread gives the worker (workerData). */
export interface WorkerInit {
  url: string;
  exportName: string;
  /** Present when the export is a factory to call once with these options. */
  factory?: { options: unknown };
}

/** Messages from the worker. */
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'loadFailed'; failure: LoadFailure }
  | { type: 'result'; id: number; value: unknown; reason: string | null }
  | { type: 'error'; id: number; message: string };

/** A call posted to the worker: the completion, its example, and the context without its functions. */
export interface WorkerCall {
  id: number;
  completion: string;
  example: unknown;
  ctx: { prompt: string; completionIds?: number[] };
}

const port = parentPort!;
const init = workerData as WorkerInit;
const fn = await loadRewardExport(init.url, init.exportName, init.factory);
if (typeof fn !== 'function') {
  port.postMessage({ type: 'loadFailed', failure: fn } satisfies WorkerReply);
} else {
  port.on('message', (call: WorkerCall) => {
    let reason: string | null = null;
    const note = (why: string) => void (reason = String(why));
    Promise.resolve()
      .then(() => fn(call.completion, call.example, { ...call.ctx, note }))
      .then(
        (v) => {
          // A number goes back as is; anything else as its text, which scoreCompletions prints ('returned ...').
          const value = typeof v === 'number' || v === undefined || v === null ? v : String(v);
          port.postMessage({ type: 'result', id: call.id, value, reason } satisfies WorkerReply);
        },
        (e: unknown) => port.postMessage({ type: 'error', id: call.id, message: messageOf(e) } satisfies WorkerReply),
      );
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
