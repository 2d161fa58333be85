import { Command, CommanderError } from 'commander';
import { AhaError } from '../errors.ts';
import { registerLogprobs } from './logprobs.ts';
import { registerGenerate } from './generate.ts';
import { registerBench } from './bench.ts';
import { registerInitModel } from './initModel.ts';
import { registerVerify } from './registerVerify.ts';
import { registerExtraCommands } from './registry.ts';

const program = new Command();
program
  .name('aha')
  .description(
    'Train language models to reason with reinforcement learning from verifiable rewards (DeepSeek-R1 style).',
  )
  .showHelpAfterError()
  .exitOverride();

registerLogprobs(program);
registerGenerate(program);
registerBench(program);
registerInitModel(program);
registerVerify(program);
await registerExtraCommands(program);

function fail(e: unknown): never {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof AhaError) {
    process.stderr.write(`aha: ${e.message}\n`);
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
