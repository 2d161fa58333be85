import { chmodSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A directory for a test's run directories, enterable by the sandbox's uid; empty again once every run ended. */
export function workRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aha-judge-test-'));
  chmodSync(dir, 0o711);
  return dir;
}

/** Pids of live processes whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Pids of live processes whose real uid is in [lo, hi]. Zombies do not count: bwrap's monitor can exit before it
 * reaps the sandbox's init, whose zombie then waits for the system's init to reap it.
 */
export function processesOfUids(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if (/^State:\s+Z/m.test(status)) continue;
      if (m && Number(m[1]) >= lo && Number(m[1]) <= hi) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}
