import type { Command } from 'commander';

/** Commands added by later stages (sft, grpo, eval, demo, r1, distill) register here. */
export async function registerExtraCommands(_program: Command): Promise<void> {}
