import type { Command } from 'commander';
import { AhaError } from '../errors.ts';
import { verifyCommand } from './verify.ts';

function positive(name: string): (v: string) => number {
  return (v) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new AhaError(`${name}: expected a positive number, got '${v}'`);
    return x;
  };
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check predicted math answers against references: {"gold":...,"pred":...} per line')
    .requiredOption('--input <file>', 'JSONL file (- for stdin)')
    .option(
      '--pred-extraction <mode>',
      "how pred is read: 'completion' (find the answer in a whole model output) or 'answer' (a bare answer)",
      'completion',
    )
    .option('--rtol <x>', 'relative tolerance for non-integer numbers (default 1e-6)', positive('--rtol'))
    .option('--timeout-ms <ms>', 'time budget of one comparison (default 2000)', positive('--timeout-ms'))
    .action(async (o: { input: string; predExtraction: string; rtol?: number; timeoutMs?: number }) => {
      if (o.predExtraction !== 'completion' && o.predExtraction !== 'answer')
        throw new AhaError(`--pred-extraction: expected 'completion' or 'answer', got '${o.predExtraction}'`);
      const s = await verifyCommand({
        input: o.input,
        predExtraction: o.predExtraction,
        rtol: o.rtol,
        timeoutMs: o.timeoutMs,
      });
      // Every line has its verdict; a bad line still fails the command, so a script cannot miss it.
      if (s.malformed > 0) {
        process.stderr.write(
          `aha: verify: ${s.malformed} of ${s.lines} line(s) malformed (their verdicts give the reason)\n`,
        );
        process.exitCode = 1;
      }
    });
}
