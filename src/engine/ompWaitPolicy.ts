/**
 * How idle OpenMP threads wait. libgomp's default spins about 300,000 times (some milliseconds) before sleeping;
 * between the engine's many short parallel regions (one per decode step and layer), spinning threads hold every
 * core, and on a shared CPU they starve the thread that has the work: sampling was seen to stall until
 * OMP_WAIT_POLICY=PASSIVE. So the engine defaults to passive waiting with a short spin (a wake-up right after a
 * region still finds a thread awake). libgomp reads these variables once, when the library loads, so this must run
 * before the native addon is loaded.
 *
 * AHA_OMP_WAIT_POLICY overrides: `passive` (the default), `active` (OMP_WAIT_POLICY=ACTIVE: spin, for a dedicated
 * machine) or `keep` (the environment as it is: libgomp's own default when nothing is set). Without it, an
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT the user set is left alone.
 */

/** Spins before a passive thread sleeps (libgomp estimates about 100,000 a millisecond: about 0.1 ms). */
export const PASSIVE_SPIN_COUNT = '10000';

/** What {@link configureOmpWaitPolicy} did. */
export type OmpWaitChoice = 'passive' | 'active' | 'kept';

/** Sets OMP_WAIT_POLICY (and GOMP_SPINCOUNT) for this process before the engine loads. */
export function configureOmpWaitPolicy(env: NodeJS.ProcessEnv = process.env): OmpWaitChoice {
  const asked = env.AHA_OMP_WAIT_POLICY?.trim().toLowerCase();
  if (asked === 'keep') return 'kept';
  if (asked === 'active') {
    env.OMP_WAIT_POLICY = 'ACTIVE';
    delete env.GOMP_SPINCOUNT;
    return 'active';
  }
  if (asked === 'passive') {
    env.OMP_WAIT_POLICY = 'PASSIVE';
    env.GOMP_SPINCOUNT = PASSIVE_SPIN_COUNT;
    return 'passive';
  }
  // An unknown value is not worth failing a run for: the default applies (the engine has no logger this early).
  if (env.OMP_WAIT_POLICY !== undefined || env.GOMP_SPINCOUNT !== undefined) return 'kept';
  env.OMP_WAIT_POLICY = 'PASSIVE';
  env.GOMP_SPINCOUNT = PASSIVE_SPIN_COUNT;
  return 'passive';
}
