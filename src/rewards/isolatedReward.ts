/**
 * A user's module reward (`./rewards.ts#myReward` in a recipe) run in a worker thread, so that a call the trainer
 * gives up on is stopped for good: when the caller's signal aborts (scoreCompletions' timeout), the worker is
 * terminated, which ends a synchronous loop, a timer or a socket the call left, and the next call starts a fresh
 * worker. Built-in rewards stay in the trainer's process; they are ours and bounded.
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { loadRewardExport, messageOf, type LoadedReward, type LoadFailure } from './loadRewardExport.ts';
import type { WorkerCall, WorkerInit, WorkerReply } from './isolatedRewardWorker.ts';
import type { Example, RewardContext, RewardFn } from './types.ts';
import { ensureTypeScriptImports } from '../util/typescriptImports.ts';

/** The module has no usable reward function; `failure` says why (rewardRegistry words it for the recipe). */
export class RewardLoadError extends Error {
  constructor(readonly failure: LoadFailure) {
    super(`cannot load the reward: ${failure.stage}`);
  }
}

/** What {@link isolatedReward} runs. */
export interface IsolatedRewardOptions {
  /** Absolute path of the module. */
  file: string;
  exportName: string;
  /** Given: the export is a factory, called once (in each worker) with these options. */
  factory?: { options: unknown };
  /** The reward's name, for warnings. */
  name: string;
  /** Where the one-line warnings go (a call whose example cannot be copied to the worker runs in-process). */
  warn?: (line: string) => void;
}

/** The reward function, and the hook that stops its worker (the trainer calls it when training ends). */
export interface IsolatedReward {
  fn: RewardFn<Example>;
  dispose: () => Promise<void>;
}

// The worker starts from a CommonJS script that registers tsx's loaders (workers do not inherit hooks registered
// through tsx's API, as bin/aha.js does), then imports the ES module entry, so the user's module is imported from
// an ES module as in the main thread (imported from CommonJS, a .ts file beside no package.json loses its names).
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  (await import(workerData.tsxEsm)).register();
  (await import(workerData.tsxCjs)).register();
  await import(workerData.entry);
})().catch((e) => {
  const message = String((e && e.message) || e).split('\\n')[0];
  parentPort.postMessage({ type: 'loadFailed', failure: { stage: 'import', message } });
});
`;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  note?: (reason: string) => void;
  /** Removes the abort listener. */
  done: () => void;
}

/** One worker and the calls in flight on it. */
interface Generation {
  worker: Worker;
  ready: Promise<void>;
  pending: Map<number, Pending>;
  dead: boolean;
}

/**
 * Starts a worker that loads the reward, waiting until it is loaded: a module that fails to load throws
 * {@link RewardLoadError} here, before any call. Calls may be concurrent (one worker, calls keyed by id); when the
 * signal of one aborts, the worker is terminated and every call in flight on it rejects. Workers never keep the
 * process alive while idle.
 */
export async function isolatedReward(o: IsolatedRewardOptions): Promise<IsolatedReward> {
  const url = pathToFileURL(o.file).href;
  const warn = o.warn ?? ((line: string) => void process.stderr.write(line + '\n'));
  let inProcess: Promise<LoadedReward> | undefined;
  const loadInProcess = () =>
    (inProcess ??= ensureTypeScriptImports()
      .then(() => loadRewardExport(url, o.exportName, o.factory))
      .then((f) => {
        if (typeof f !== 'function') throw new RewardLoadError(f);
        return f;
      }));
  const runInProcess = async (completion: string, example: Example, ctx: RewardContext) =>
    (await loadInProcess())(completion, example, ctx) as number | Promise<number>;

  try {
    structuredClone(o.factory);
  } catch (e) {
    warn(`reward '${o.name}': its options cannot be copied to a worker (${messageOf(e)}); it runs in-process`);
    await loadInProcess();
    return { fn: runInProcess, dispose: async () => {} };
  }

  const init: WorkerInit & Record<string, unknown> = {
    url,
    exportName: o.exportName,
    factory: o.factory,
    tsxEsm: import.meta.resolve('tsx/esm/api'),
    tsxCjs: import.meta.resolve('tsx/cjs/api'),
    // The worker's module beside this one: .ts from src/, .js from the compiled dist/.
    entry: new URL(`./isolatedRewardWorker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href,
  };
  let current: Generation | null = null;
  let nextId = 1;
  let warnedClone = false;

  const kill = async (gen: Generation, why: string): Promise<void> => {
    if (gen.dead) return;
    gen.dead = true;
    if (current === gen) current = null;
    for (const p of gen.pending.values()) {
      p.done();
      p.reject(new Error(why));
    }
    gen.pending.clear();
    await gen.worker.terminate();
  };

  const start = (): Generation => {
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: init });
    const gen: Generation = { worker, ready: undefined as never, pending: new Map(), dead: false };
    gen.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') return resolve();
        if (m.type === 'loadFailed') {
          reject(new RewardLoadError(m.failure));
          return void kill(gen, `cannot load the reward: ${m.failure.stage}`);
        }
        const p = gen.pending.get(m.id);
        if (!p) return;
        gen.pending.delete(m.id);
        p.done();
        if (gen.pending.size === 0) worker.unref();
        if (m.type === 'error') return p.reject(new Error(m.message));
        if (m.reason !== null) p.note?.(m.reason);
        p.resolve(m.value);
      });
      // An exception the reward left uncaught (in a timer, say) ends the worker and every call on it.
      worker.on('error', (e) => {
        reject(e);
        void kill(gen, `the reward's worker failed: ${messageOf(e).split('\n')[0]}`);
      });
      worker.on('exit', (code) => {
        reject(new Error(`the reward's worker exited with code ${code} while loading`));
        void kill(gen, `the reward's worker exited with code ${code}`);
      });
    });
    // Held while loading or while calls are in flight (someone awaits them); idle, it never keeps the process alive.
    // (The rejection is handled by whoever awaits `ready`; a generation nobody calls must not raise an unhandled one.)
    gen.ready.then(
      () => gen.pending.size === 0 && worker.unref(),
      () => {},
    );
    return gen;
  };

  const call = async (completion: string, example: Example, ctx: RewardContext): Promise<unknown> => {
    for (;;) {
      if (ctx.signal?.aborted) throw new Error('abandoned before it started');
      const gen: Generation = (current ??= start());
      try {
        await gen.ready;
      } catch (e) {
        if (e instanceof RewardLoadError) {
          const f = e.failure;
          const why =
            f.stage === 'import' || f.stage === 'factory'
              ? f.message
              : f.stage === 'export'
                ? `no function export '${o.exportName}'`
                : 'the factory returned no function';
          throw new Error(`a fresh worker cannot load the reward: ${why}`, { cause: e });
        }
        throw e;
      }
      // The caller gave up while the worker loaded: posting now would run a call nobody can stop.
      if (ctx.signal?.aborted) throw new Error('abandoned before it started');
      // Terminated while this call waited for it (another call timed out): go to the fresh one.
      if (gen.dead) continue;
      const id = nextId++;
      const msg: WorkerCall = {
        id,
        completion,
        example,
        ctx: { prompt: ctx.prompt, completionIds: ctx.completionIds },
      };
      try {
        gen.worker.postMessage(msg);
      } catch (e) {
        if (!warnedClone) {
          warnedClone = true;
          warn(
            `reward '${o.name}': an example cannot be copied to its worker (${messageOf(e)}); such calls run in-process`,
          );
        }
        return runInProcess(completion, example, ctx);
      }
      return new Promise<unknown>((resolve, reject) => {
        const signal = ctx.signal;
        const onAbort = () => {
          if (!gen.pending.has(id)) return;
          gen.pending.delete(id);
          reject(new Error('abandoned; its worker was stopped'));
          void kill(gen, `abandoned: the reward's worker was stopped when another call on it timed out`);
          // Loading takes a few hundred ms (tsx, the module): started now, not within the next call's time limit.
          current ??= start();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        gen.pending.set(id, {
          resolve,
          reject,
          note: ctx.note,
          done: () => signal?.removeEventListener('abort', onAbort),
        });
        gen.worker.ref();
      });
    }
  };

  const first = start();
  current = first;
  await first.ready;
  return {
    fn: (completion, example, ctx) => call(completion, example, ctx) as Promise<number>,
    dispose: async () => {
      if (current) await kill(current, 'the reward was disposed');
    },
  };
}
