import { writeSync } from 'node:fs';

/** Writes one line to stdout synchronously (JSONL results must not interleave with progress on stderr). */
export function printLine(s: string): void {
  writeSync(1, s + '\n');
}

/** Writes one line to stderr. */
export function logLine(s: string): void {
  writeSync(2, s + '\n');
}

/** Quotes a word for a POSIX shell when it needs it (for the printed resume commands). */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
