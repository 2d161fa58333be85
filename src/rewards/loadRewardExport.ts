/**
 * Imports a user's reward module and takes its reward function: the export itself, or, when options are given,
 * what the export (a factory) returns for them. Shared by the reward worker (src/rewards/isolatedRewardWorker.ts)
 * and the in-process fallback, so both load a module the same way and fail the same way.
 */

/** Why a module gave no reward function; src/rl/rewardRegistry.ts turns it into the recipe's error line. */
export type LoadFailure =
  | { stage: 'import'; message: string }
  | { stage: 'export'; functions: string[] }
  | { stage: 'factory'; message: string }
  | { stage: 'factoryResult' };

/** A module reward as loaded: an untyped function until the caller's contract applies. */
export type LoadedReward = (completion: string, example: unknown, ctx: object) => unknown;

/** The message of a thrown value, for error lines. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/** Imports `url` and returns its reward function, or why there is none (never throws). */
export async function loadRewardExport(
  url: string,
  exportName: string,
  factory: { options: unknown } | undefined,
): Promise<LoadedReward | LoadFailure> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    return { stage: 'import', message: messageOf(e).split('\n')[0] };
  }
  let fn = mod[exportName];
  if (typeof fn !== 'function')
    return { stage: 'export', functions: Object.keys(mod).filter((k) => typeof mod[k] === 'function') };
  if (factory) {
    try {
      fn = (fn as (o: unknown) => unknown)(factory.options);
    } catch (e) {
      return { stage: 'factory', message: messageOf(e) };
    }
    if (typeof fn !== 'function') return { stage: 'factoryResult' };
  }
  return fn as LoadedReward;
}
