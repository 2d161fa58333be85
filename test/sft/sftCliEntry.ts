/**
 * A stand-in for `bin/aha.js` with only `aha sft` registered, for the child-process tests while src/cli/main.ts
 * does not register the command yet. Errors are reported as main.ts reports them.
 */
import { Command, CommanderError } from 'commander';
import { AhaError } from '../../src/errors.ts';
import { registerSft } from '../../src/cli/sft.ts';

const program = new Command().name('aha').exitOverride();
registerSft(program);
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
