import { writeSync } from 'node:fs';

/** Under mpirun, rank 0 speaks for the job (errors still come from the rank that has them). */
function otherRank(): boolean {
  return Number(process.env.OMPI_COMM_WORLD_RANK ?? 0) > 0;
}

/** Writes one line to stdout synchronously (JSONL results must not interleave with progress on stderr). */
export function printLine(s: string): void {
  if (otherRank()) return;
  writeSync(1, s + '\n');
}

/** Writes one line to stderr. */
export function logLine(s: string): void {
  if (otherRank()) return;
  writeSync(2, s + '\n');
}

/** Quotes a word for a POSIX shell when it needs it (for the printed resume commands). */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
