/**
 * A stand-in for `bin/aha.js` with `aha r1` and `aha distill` registered, for the child-process tests while
 * src/cli/registry.ts does not register them yet. Errors are reported as main.ts reports them.
 */
import { Command, CommanderError } from 'commander';
import { AhaError } from '../../src/errors.ts';
import { registerR1 } from '../../src/cli/r1.ts';
import { registerDistill } from '../../src/cli/distill.ts';

const program = new Command().name('aha').exitOverride();
registerR1(program);
registerDistill(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof AhaError) {
    process.stderr.write(`aha: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`aha: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(2);
}
