import type { Command } from 'commander';
import { verifyCommand } from './verify.ts';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check predicted math answers against references: {"gold":...,"pred":...} per line')
    .requiredOption('--input <file>', 'JSONL file')
    .action(async (o: { input: string }) => {
      await verifyCommand({ input: o.input });
    });
}
