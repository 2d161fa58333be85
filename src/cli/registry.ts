import type { Command } from 'commander';

/** One subcommand: what `aha --help` lists, and the module that defines it, imported only when it runs. */
export interface CommandEntry {
  name: string;
  /** The same words as the command's own `.description(...)` (test/cli/lazyCommands.test.ts holds them equal). */
  description: string;
  /** Imports the command's module and returns its `registerX(program)`. */
  load: () => Promise<(program: Command) => void>;
}

/**
 * Every `aha` subcommand, in the order `aha --help` lists them. Importing a command's module pulls in its whole
 * tree (the report's charting library, the trainers, the engine), which costs up to a second each, so only the
 * command being run (or asked for help) is imported.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'logprobs',
    description: 'per-token log-probs of each input sequence (positions 1..n-1)',
    load: async () => (await import('./logprobs.ts')).registerLogprobs,
  },
  {
    name: 'generate',
    description: 'sample continuations of each prompt with a KV cache',
    load: async () => (await import('./generate.ts')).registerGenerate,
  },
  {
    name: 'bench',
    description: 'time a training step (forward, backward, clip, AdamW) and batched sampling on random tokens',
    load: async () => (await import('./bench.ts')).registerBench,
  },
  {
    name: 'init-model',
    description: 'write a freshly initialised model (Hugging Face layout) with a tokenizer',
    load: async () => (await import('./initModel.ts')).registerInitModel,
  },
  {
    name: 'verify',
    description: 'check predicted math answers against references: {"gold":...,"pred":...} per line',
    load: async () => (await import('./registerVerify.ts')).registerVerify,
  },
  {
    name: 'demo',
    description: 'the R1-Zero story on a laptop CPU: GRPO with rule rewards makes a small base model reason',
    load: async () => (await import('./demo.ts')).registerDemo,
  },
  {
    name: 'report',
    description:
      'write a self-contained HTML training report (charts over steps, before/after eval, sampled completions) for a run directory, or serve it live while the run writes',
    load: async () => (await import('./report.ts')).registerReport,
  },
  {
    name: 'grpo',
    description: 'train with GRPO (R1-Zero style RL from verifiable rewards) as a recipe file says',
    load: async () => (await import('./grpo.ts')).registerGrpo,
  },
  {
    name: 'sft',
    description: 'supervised fine-tuning (or pre-training on {"text"} lines) with checkpoints and exact resume',
    load: async () => (await import('./sft.ts')).registerSft,
  },
  {
    name: 'eval',
    description:
      "evaluate on a math or code benchmark with DeepSeek-R1's protocol: pass@1 over k samples, pass@k, cons@k (math)",
    load: async () => (await import('./eval.ts')).registerEval,
  },
  {
    name: 'r1',
    description: "DeepSeek-R1's pipeline: cold-start SFT, reasoning RL, rejection sampling + SFT, all-scenario RL",
    load: async () => (await import('./r1.ts')).registerR1,
  },
  {
    name: 'distill',
    description:
      'distil a reasoning teacher into a student: verified, filtered teacher traces, then SFT of the student',
    load: async () => (await import('./distill.ts')).registerDistill,
  },
  {
    name: 'judge',
    description: 'run programs against test cases in the sandbox: {"language","program","tests"} per line',
    load: async () => (await import('./judge.ts')).registerJudge,
  },
  {
    name: 'recipe',
    description: 'print the recipe reference (every field: type, default, meaning, TRL name) of grpo, r1 or sft',
    load: async () => (await import('./recipe.ts')).registerRecipe,
  },
  {
    name: 'merge',
    description: 'merge a LoRA adapter into its base model: a plain Hugging Face checkpoint (W + alpha/r B A)',
    load: async () => (await import('./merge.ts')).registerMerge,
  },
  {
    name: 'export',
    description:
      'write a model (or a LoRA adapter merged into its base) as one GGUF file for llama.cpp, Ollama, LM Studio',
    load: async () => (await import('./export.ts')).registerExport,
  },
];

/**
 * The subcommand an argument list (without node and the script) runs or asks help for: `grpo` in
 * `aha grpo --config x` and in `aha help grpo`. The root command takes no option with a value, so the first
 * operand is the command.
 */
export function invokedCommand(args: readonly string[]): string | undefined {
  const operands = args.filter((a) => !a.startsWith('-'));
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/**
 * Registers every subcommand on `program`: the one `args` names in full (its module imported), the others as
 * a name and a description for `aha --help`. A placeholder's action never runs, since a command that runs is
 * the one `args` names.
 */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const wanted = invokedCommand(args);
  for (const entry of COMMANDS) {
    if (entry.name === wanted) (await entry.load())(program);
    else
      program
        .command(entry.name)
        .description(entry.description)
        .action(() => {
          throw new Error(`command '${entry.name}' ran without its module loaded`);
        });
  }
  // Placeholders have no options; list every command as a full one does ("name [options]").
  program.configureHelp({
    subcommandTerm: (cmd) => (cmd.name() === 'help' ? 'help [command]' : `${cmd.name()} [options]`),
  });
}
