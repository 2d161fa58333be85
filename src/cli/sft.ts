import { Option, type Command } from 'commander';
import {
  optionFlag,
  parseCliValue,
  resolveSftOptions,
  SFT_DEFAULTS,
  SFT_OPTION_KINDS,
  sftOptionsSchema,
  type SftOptionKey,
} from '../sft/sftConfig.ts';
import { FIELD_DOCS } from '../config/recipeFieldDocs.ts';
import { describeSchema } from '../config/schemaFields.ts';
import { sftTrain } from '../sft/trainer.ts';
import { collectSet, withSetContext } from '../config/overrides.ts';
import { sftConfigLayer } from '../config/recipeLoad.ts';
import { recipeHelpText } from '../config/recipeReference.ts';
import { INTERRUPTED_EXIT_CODE, withInterrupt } from '../train/interrupt.ts';
import { logLine, printLine, shellQuote } from './output.ts';
import { progressBars } from './progress.ts';

/** Registers `aha sft`: supervised fine-tuning with checkpoints, resume and graceful interruption. */
export function registerSft(program: Command): void {
  const cmd = program
    .command('sft')
    .description('supervised fine-tuning (or pre-training on {"text"} lines) with checkpoints and exact resume')
    .option(
      '--config <file>',
      'YAML/JSON file of options (keys as below with underscores; paths relative to it); flags override it',
    )
    .option(
      '--set <key=value>',
      'set an option as a --config file would (repeatable): --set learning_rate=1e-4',
      collectSet,
    )
    .option('--resume [checkpoint]', 'continue from the newest checkpoint in --out (or from the given checkpoint dir)');
  const keys = Object.keys(SFT_OPTION_KINDS) as SftOptionKey[];
  for (const key of keys) {
    if (key === 'resume_from_checkpoint') continue;
    const f = SFT_OPTION_KINDS[key];
    const value = f.kind === 'bool' ? ' [bool]' : ` <${f.value ?? (f.kind === 'enum' ? 'type' : 'n')}>`;
    const def = (SFT_DEFAULTS as Record<string, unknown>)[key];
    const help =
      def === undefined || def === null || def === false ? helpLine(key) : `${helpLine(key)} (default: ${def})`;
    cmd.addOption(new Option(`${optionFlag(key)}${value}`, help));
    // transformers' spelling (--learning_rate) works too.
    if (key.includes('_')) cmd.addOption(new Option(`--${key}${value}`).hideHelp());
  }
  cmd.addOption(new Option('--resume_from_checkpoint [checkpoint]').hideHelp());
  cmd.addHelpText('after', () => recipeHelpText('sft'));

  cmd.action(async (raw: Record<string, string | boolean | undefined>) => {
    const cli: Record<string, unknown> = {};
    for (const key of keys) {
      const camel = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      const v = raw[camel] ?? raw[key];
      if (v !== undefined) cli[key] = parseCliValue(key, v);
    }
    if (raw.resume !== undefined) cli.resume_from_checkpoint = parseCliValue('resume_from_checkpoint', raw.resume);
    const layer = sftConfigLayer(raw.config as string | undefined, (raw.set as unknown as string[] | undefined) ?? []);
    const opts = withSetContext(layer.sets, () =>
      resolveSftOptions({ cli, config: layer.config, configName: layer.configName }),
    );

    await withInterrupt(
      {
        onFirst: (sig) =>
          logLine(`aha sft: ${sig}: finishing the current step, then saving a checkpoint (${sig} again to abort)`),
        onSecond: (sig) => logLine(`aha sft: ${sig} again: stopping without a checkpoint`),
      },
      async (interrupt) => {
        const r = await sftTrain(opts, {
          log: (m) => logLine(`aha sft: ${m}`),
          progress: progressBars({ every: opts.logging_steps }),
          shouldStop: () => interrupt.interrupted,
        });
        if (r.status === 'interrupted') {
          logLine(`aha sft: stopped at step ${r.globalStep}/${r.totalSteps}; checkpoint ${r.checkpoint}`);
          logLine(
            `aha sft: resume with: aha sft --out ${shellQuote(opts.out)} --resume   (or the same command with --resume)`,
          );
          printLine(
            JSON.stringify({
              status: r.status,
              step: r.globalStep,
              total_steps: r.totalSteps,
              checkpoint: r.checkpoint,
            }),
          );
          process.exit(INTERRUPTED_EXIT_CODE);
        }
        printLine(
          JSON.stringify({
            status: r.status,
            step: r.globalStep,
            total_steps: r.totalSteps,
            loss: r.lastLoss,
            eval_loss: r.evalLoss,
            final: r.finalDir,
          }),
        );
      },
    );
  });
}

/**
 * An option's description in the recipe reference (FIELD_DOCS.sft) as a --help line: plain text, lower-case start
 * (unless the first word is a name such as LoRA or AdamW), no final period; an enum's values added when it does not
 * name them all.
 */
function helpLine(key: SftOptionKey): string {
  let text = FIELD_DOCS.sft[key].doc.replace(/`/g, '').replace(/\.$/, '');
  if (/^[A-Z][^A-Z\s:]*[\s:]/.test(text)) text = text[0].toLowerCase() + text.slice(1);
  const values = describeSchema(sftOptionsSchema.shape[key]).values;
  if (values && !values.every((v) => text.includes(String(v)))) text += `: ${values.join(', ')}`;
  return text;
}
