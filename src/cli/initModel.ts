import type { Command } from 'commander';
import { initModel, MODEL_PRESETS } from '../model/initModel.ts';
import { printLine } from './output.ts';
import { parseInteger } from './parse.ts';

export function registerInitModel(program: Command): void {
  program
    .command('init-model')
    .description('write a freshly initialised model (Hugging Face layout) with a tokenizer')
    .requiredOption(
      '--config <preset|file>',
      `a preset (${Object.keys(MODEL_PRESETS).join(', ')}) or a config.json (its vocab_size, when given, must be at ` +
        "least the tokenizer's; default: the tokenizer's)",
    )
    .option(
      '--tokenizer <chars|dir>',
      '"chars" for a character-level tokenizer, or a directory with tokenizer.json',
      'chars',
    )
    .option('--alphabet <chars>', 'characters of the char tokenizer (default: printable ASCII and newline)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--seed <s>', 'initialisation seed', '0')
    .option('--overwrite', 'replace the contents of a non-empty --out directory')
    .option(
      '--reward-model',
      'write a sequence-classification checkpoint (a reward model: *ForSequenceClassification, num_labels 1, ' +
        'score.weight, no lm_head) for the reward_model reward',
    )
    .action(
      (o: {
        config: string;
        tokenizer: string;
        alphabet?: string;
        out: string;
        seed: string;
        overwrite?: boolean;
        rewardModel?: boolean;
      }) => {
        const { model, tokenizer } = initModel({
          config: o.config,
          tokenizer: o.tokenizer,
          alphabet: o.alphabet,
          out: o.out,
          seed: parseInteger(o.seed, '--seed', { min: 0 }),
          overwrite: o.overwrite === true,
          rewardModel: o.rewardModel === true,
        });
        const rows = model.config.vocabSize;
        printLine(
          `wrote ${o.out}: ${(model.numParams / 1e6).toFixed(2)}M parameters, vocabulary ${tokenizer.vocabSize}` +
            (rows > tokenizer.vocabSize ? ` (embedding padded to vocab_size ${rows})` : ''),
        );
      },
    );
}
