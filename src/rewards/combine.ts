import { AhaError } from '../errors.ts';
import type { Example, NamedReward, RewardErrorEvent } from './types.ts';

/** One completion to score. */
export interface ScoreItem<E = Example> {
  completion: string;
  example: E;
  prompt: string;
  completionIds?: number[];
}

/** Options of {@link scoreCompletions}. */
export interface ScoreOptions {
  /** Per-call limit for async rewards, in ms (default 10,000). */
  timeoutMs?: number;
  /** Reward calls in flight at once (default: all); bounds e.g. sandboxes spawned by code rewards. */
  concurrency?: number;
  /** Called as each error happens, for live logging; the events are returned as well. */
  onError?: (e: RewardErrorEvent) => void;
}

/**
 * Scores of a batch: one array per reward (unweighted) with the reason each call noted (null: none, or the call
 * failed), the weighted total, and the failures.
 */
export interface ScoreResult {
  perReward: { name: string; weight: number; scores: number[]; reasons: (string | null)[] }[];
  /** sum over rewards of weight * score, per completion (TRL's rewards_per_func @ reward_weights). */
  total: number[];
  errors: RewardErrorEvent[];
}

class RewardTimeout extends Error {}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * Runs every reward on every completion and combines them with their weights.
 *
 * A reward that throws, rejects, returns a non-finite value, or whose promise does not settle within `timeoutMs`
 * is scored 0 for that completion and reported as {rewardName, exampleIndex, kind, message}; the step goes on.
 * 0 rather than TRL's NaN-skipping (TRL turns a None reward into NaN and drops it from the weighted nansum): here a
 * failure is a bug to see in the error log, not a "reward does not apply" signal, and a 0 keeps totals comparable.
 *
 * The timeout (Promise.race against a timer) stops waiting for the call and aborts its `ctx.signal`. It cannot
 * interrupt a synchronous in-process reward stuck in a loop, which blocks the event loop, timer included: user module
 * rewards therefore run in a worker thread that the abort terminates (src/rewards/isolatedReward.ts), and the code
 * reward runs programs in sandboxed processes. An in-process async reward that ignores the signal keeps running in
 * the background; its late result is ignored.
 */
export async function scoreCompletions<E>(
  rewards: readonly NamedReward<E>[],
  items: readonly ScoreItem<E>[],
  opts: ScoreOptions = {},
): Promise<ScoreResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new AhaError(`rewards: timeoutMs must be > 0, got ${timeoutMs}`);
  const concurrency = opts.concurrency ?? Infinity;
  if (!(concurrency >= 1)) throw new AhaError(`rewards: concurrency must be >= 1, got ${concurrency}`);
  const seen = new Set<string>();
  for (const r of rewards) {
    if (seen.has(r.name)) throw new AhaError(`rewards: two rewards are named '${r.name}'`);
    seen.add(r.name);
    const w = r.weight ?? 1;
    if (!Number.isFinite(w)) throw new AhaError(`rewards: weight of '${r.name}' is not finite (${w})`);
  }

  const perReward = rewards.map((r) => ({
    name: r.name,
    weight: r.weight ?? 1,
    scores: new Array<number>(items.length).fill(0),
    reasons: new Array<string | null>(items.length).fill(null),
  }));
  const errors: RewardErrorEvent[] = [];
  const report = (e: RewardErrorEvent) => {
    errors.push(e);
    opts.onError?.(e);
  };

  const runOne = async (k: number, i: number): Promise<void> => {
    const r = rewards[k];
    const item = items[i];
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Kept only when the call succeeds: a failed or timed-out call's reason (even a late one) is not its score's.
    let reason: string | null = null;
    try {
      const note = (why: string) => void (reason = String(why));
      const abandon = new AbortController();
      const { signal } = abandon;
      const call = Promise.resolve().then(() =>
        r.fn(item.completion, item.example, { prompt: item.prompt, completionIds: item.completionIds, note, signal }),
      );
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = new RewardTimeout(`no result after ${timeoutMs} ms`);
          reject(e);
          // Tells the reward it is abandoned: a module reward's worker is terminated (src/rewards/isolatedReward.ts).
          abandon.abort(e);
        }, timeoutMs);
      });
      const value = await Promise.race([call, timeout]);
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        report({ rewardName: r.name, exampleIndex: i, kind: 'invalid', message: `returned ${String(value)}` });
        return;
      }
      perReward[k].scores[i] = value;
      perReward[k].reasons[i] = reason;
    } catch (e) {
      const kind = e instanceof RewardTimeout ? 'timeout' : 'throw';
      report({ rewardName: r.name, exampleIndex: i, kind, message: messageOf(e) });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  };

  const jobs: [number, number][] = [];
  for (let i = 0; i < items.length; i++) for (let k = 0; k < rewards.length; k++) jobs.push([k, i]);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const [k, i] = jobs[next++];
      await runOne(k, i);
    }
  };
  const workers = Math.min(jobs.length, concurrency);
  await Promise.all(Array.from({ length: workers }, worker));

  // Errors in job order, whatever order they settled in, so logs are reproducible.
  const rewardIndex = new Map(rewards.map((r, k) => [r.name, k]));
  errors.sort(
    (a, b) => a.exampleIndex - b.exampleIndex || rewardIndex.get(a.rewardName)! - rewardIndex.get(b.rewardName)!,
  );

  const total = new Array<number>(items.length).fill(0);
  for (const pr of perReward) for (let i = 0; i < items.length; i++) total[i] += pr.weight * pr.scores[i];
  return { perReward, total, errors };
}
