import { writeSync } from 'node:fs';

/** Writes one line to stdout synchronously (JSONL results must not interleave with progress on stderr). */
export function printLine(s: string): void {
  writeSync(1, s + '\n');
}

/** Writes one line to stderr. */
export function logLine(s: string): void {
  writeSync(2, s + '\n');
}
