/** Runs `aha` (bin/aha.js) as a child process from the repository root, as a user would. */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `--set` arguments from a map of paths to values (values written as YAML flow: JSON is valid YAML). */
export function sets(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`]);
}

export interface AhaRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `aha <args>` in the repository root; resolves when it exits. */
export function aha(args: string[]): Promise<AhaRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/aha.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
