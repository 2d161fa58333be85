import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { AhaError } from '../errors.ts';
import { registerCommands } from './registry.ts';

/** The version in package.json, read at run time (the same file whether aha runs from src/ or from dist/). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const program = new Command();
program
  .name('aha')
  .version(packageVersion(), '-V, --version', 'print the version')
  .description(
    'Train language models to reason with reinforcement learning from verifiable rewards (DeepSeek-R1 style).',
  )
  .showHelpAfterError()
  .exitOverride();

// Only the command that runs is imported (src/cli/registry.ts): the others cost up to a second each to load.
await registerCommands(program, process.argv.slice(2));

/** What a file-system error code means, for errors that are the user's or the machine's, not aha's. */
const FS_ERRORS: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
};

function fail(e: unknown): never {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof AhaError) {
    process.stderr.write(`aha: ${e.message}\n`);
    process.exit(1);
  }
  const fsErr = e as NodeJS.ErrnoException;
  if (fsErr?.code && FS_ERRORS[fsErr.code]) {
    // A temporary file's name says less than the file it stood for.
    const path = (fsErr.path ?? '').replace(/\/\.([^/]+)\.tmp-\d+-\d+$/, '/$1');
    process.stderr.write(
      `aha: ${path ? `${path}: ` : ''}${FS_ERRORS[fsErr.code]} (${fsErr.code}${fsErr.syscall ? ` in ${fsErr.syscall}` : ''})\n`,
    );
    process.exit(1);
  }
  const err = e as Error;
  process.stderr.write(`aha: internal error: ${err?.message ?? String(e)}\n`);
  if (process.env.AHA_DEBUG) process.stderr.write(`${err?.stack}\n`);
  else process.stderr.write('aha: (set AHA_DEBUG=1 for the stack trace; please report it)\n');
  process.exit(2);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  fail(e);
}
// Done: a reward that left a timer, a socket or a call still running must not keep the process alive past the end
// of its work (output is written synchronously, so nothing is lost).
process.exit(process.exitCode ?? 0);
