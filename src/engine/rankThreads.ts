/**
 * Threads of one rank of a data-parallel run (src/parallel/dataParallel.ts), set before the engine loads. Here,
 * not in src/parallel, because the engine's loader calls it.
 */
import { availableParallelism } from 'node:os';

/** The number of ranks mpirun started (1 without mpirun), from Open MPI's environment. */
export function worldSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/**
 * Each rank's share of the cores by default: OMP_NUM_THREADS = cores / ranks on this node, unless set already
 * (AHA_THREADS_PER_RANK overrides). Must run before the engine addon loads (libgomp reads it then).
 */
export function configureRankThreads(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): void {
  if (worldSize(env) <= 1) return;
  const perRank = Number(env.AHA_THREADS_PER_RANK);
  if (Number.isInteger(perRank) && perRank > 0) env.OMP_NUM_THREADS = String(perRank);
  else if (env.OMP_NUM_THREADS === undefined) {
    const local = Number(env.OMPI_COMM_WORLD_LOCAL_SIZE ?? worldSize(env));
    env.OMP_NUM_THREADS = String(Math.max(1, Math.floor(cores / Math.max(1, local))));
  }
}
