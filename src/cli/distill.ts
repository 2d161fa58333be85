/**
 * `aha distill --teacher DIR | --teacher-base-url URL --teacher-model NAME --student DIR --data FILE --out DIR`:
 * R1-style distillation (src/r1/distill.ts). Rerunning the same command continues an interrupted run.
 */
import { parseConfig } from '../config/configError.ts';
import { datasetSpecSchema } from '../data/datasetSpec.ts';
import { INTERRUPTED_EXIT_CODE, onInterrupt } from '../train/interrupt.ts';
import { progressBars } from './progress.ts';
import type { Command } from 'commander';
import { AhaError } from '../errors.ts';
import { runDistill, type DistillOptions, type DistillReport } from '../r1/distill.ts';
import { formatStageEval } from '../r1/stageEval.ts';
import { readConfigFile } from '../sft/sftConfig.ts';
import { logLine, printLine } from './output.ts';
import { parseInteger, parseNumber } from './parse.ts';
import { agreedSignal } from '../parallel/dataParallel.ts';

interface DistillCli {
  teacher?: string;
  teacherBaseUrl?: string;
  teacherModel?: string;
  teacherEndpoint: string;
  teacherApiKeyEnv: string;
  teacherConcurrency: string;
  teacherRetries: string;
  teacherTimeout: string;
  teacherPrompt?: string;
  student: string;
  data: string;
  questionField: string;
  answerField: string;
  answerExtraction: string;
  evalData?: string;
  evalProblems?: string;
  out: string;
  samples: string;
  maxPerPrompt?: string;
  temperature: string;
  topP: string;
  maxNewTokens: string;
  prompt: string;
  language: string;
  sftConfig?: string;
  learningRate?: string;
  epochs?: string;
  maxSteps?: string;
  evalSamples: string;
  evalTeacher: boolean;
  allowPartial?: boolean;
  fresh?: boolean;
  seed: string;
  json?: boolean;
}

/** The human-readable summary of a distillation. */
export function formatDistillReport(r: DistillReport): string[] {
  const lines = [`distill: ${r.teacher} -> ${r.student}`];
  if (r.data)
    lines.push(
      `  traces: ${r.data.kept} kept of ${r.data.samples} (incorrect ${r.data.incorrect}, dropped ${JSON.stringify(r.data.dropped)}, duplicates ${r.data.duplicates}, over cap ${r.data.over_cap})`,
    );
  for (const [name, e] of [
    ['teacher', r.evals.teacher],
    ['student before', r.evals.student_before],
    ['student after', r.evals.student_after],
  ] as const) {
    if (e) lines.push('  ' + formatStageEval(name, e));
  }
  if (r.teacher_error) lines.push(`  teacher error: ${r.teacher_error}`);
  if (r.teacher_eval_error) lines.push(`  teacher evaluation error: ${r.teacher_eval_error}`);
  if (r.distilled) lines.push(`  distilled student: ${r.distilled}`);
  return lines;
}

/** Registers `aha distill`. */
export function registerDistill(program: Command): void {
  program
    .command('distill')
    .description(
      'distil a reasoning teacher into a student: verified, filtered teacher traces, then SFT of the student',
    )
    .option('--teacher <dir>', 'local teacher model directory')
    .option('--teacher-base-url <url>', 'OpenAI-compatible teacher server (vLLM, SGLang, ...) instead of --teacher')
    .option('--teacher-model <name>', 'the model the teacher server serves')
    .option('--teacher-endpoint <kind>', 'chat or completions', 'chat')
    .option('--teacher-api-key-env <var>', 'environment variable holding the API key', 'OPENAI_API_KEY')
    .option('--teacher-concurrency <n>', 'requests in flight', '8')
    .option('--teacher-retries <n>', 'retries per request on 429/5xx/timeouts', '5')
    .option('--teacher-timeout <s>', 'seconds per request attempt', '1800')
    .option(
      '--teacher-prompt <template>',
      "teacher prompt with {question} (default: chat server: question + R1's math instruction; else --prompt)",
    )
    .requiredOption('--student <dir>', 'student model directory (with tokenizer)')
    .requiredOption('--data <file>', 'prompts with reference answers (JSONL, Parquet, HF datasets dir)')
    .option('--question-field <name>', 'question field', 'question')
    .option('--answer-field <name>', 'reference answer field', 'answer')
    .option('--answer-extraction <kind>', 'none, gsm8k or boxed', 'none')
    .option('--eval-data <file>', 'held-out problems (default: --eval-problems held out of --data)')
    .option('--eval-problems <n>', 'problems held out of --data for evaluation')
    .requiredOption('--out <dir>', 'run directory')
    .option('--samples <k>', 'teacher traces per prompt', '4')
    .option('--max-per-prompt <n>', 'kept traces per prompt at most (default k)')
    .option('--temperature <t>', 'teacher sampling temperature', '0.6')
    .option('--top-p <p>', 'teacher top-p', '0.95')
    .option('--max-new-tokens <n>', 'longest trace', '1024')
    .option('--prompt <spec>', 'student prompt: r1-zero, r1-zero-short, chat, or a template with {question}', 'r1-zero')
    .option('--language <lang>', 'target language of the chain of thought', 'en')
    .option('--sft-config <file>', 'YAML/JSON of aha sft options for the student')
    .option('--learning-rate <lr>', 'student learning rate')
    .option('--epochs <n>', 'student epochs')
    .option('--max-steps <n>', 'student optimizer steps (overrides epochs)')
    .option('--eval-samples <k>', 'samples per held-out problem', '2')
    .option('--no-eval-teacher', 'do not evaluate the teacher')
    .option('--allow-partial', 'when the teacher fails for good, go on with the traces gathered')
    .option('--seed <s>', 'seed', '0')
    .option('--fresh', 'discard earlier outputs in --out (traces, evaluations, SFT) instead of continuing')
    .option('--json', 'end with one JSON line of the report')
    .action(async (o: DistillCli) => {
      const sft: Record<string, unknown> = o.sftConfig ? readConfigFile(o.sftConfig) : {};
      if (o.learningRate !== undefined) sft.learning_rate = parseNumber(o.learningRate, '--learning-rate', { min: 0 });
      if (o.epochs !== undefined) sft.num_train_epochs = parseNumber(o.epochs, '--epochs', { min: 0 });
      if (o.maxSteps !== undefined) sft.max_steps = parseInteger(o.maxSteps, '--max-steps', { min: 1 });
      if (o.teacherEndpoint !== 'chat' && o.teacherEndpoint !== 'completions')
        throw new AhaError(`--teacher-endpoint: expected chat or completions (got ${o.teacherEndpoint})`);
      // The recipes' dataset schema, so the CLI accepts what a recipe's dataset section accepts.
      const dataSpec = (path: string) => {
        const d = parseConfig(
          datasetSpecSchema,
          { path, question_field: o.questionField, answer_field: o.answerField, answer_extraction: o.answerExtraction },
          'distill data',
        );
        return {
          path: d.path,
          questionField: d.question_field,
          answerField: d.answer_field ?? undefined,
          answerExtraction: d.answer_extraction,
        };
      };
      const interrupt = onInterrupt({
        onFirst: (sig) => logLine(`\naha distill: ${sig}: saving what is done (${sig} again to quit now)`),
      });
      const opts: DistillOptions = {
        out: o.out,
        student: o.student,
        teacher: o.teacher,
        teacherBaseUrl: o.teacherBaseUrl,
        teacherModel: o.teacherModel,
        teacherEndpoint: o.teacherEndpoint as 'chat' | 'completions',
        teacherApiKey: process.env[o.teacherApiKeyEnv],
        teacherConcurrency: parseInteger(o.teacherConcurrency, '--teacher-concurrency', { min: 1 }),
        teacherMaxRetries: parseInteger(o.teacherRetries, '--teacher-retries', { min: 0 }),
        teacherTimeoutMs: parseNumber(o.teacherTimeout, '--teacher-timeout', { min: 0.001 }) * 1000,
        teacherPrompt: o.teacherPrompt,
        data: dataSpec(o.data),
        evalData: o.evalData ? dataSpec(o.evalData) : undefined,
        evalProblems:
          o.evalProblems !== undefined ? parseInteger(o.evalProblems, '--eval-problems', { min: 1 }) : undefined,
        samples: parseInteger(o.samples, '--samples', { min: 1 }),
        maxPerPrompt:
          o.maxPerPrompt !== undefined ? parseInteger(o.maxPerPrompt, '--max-per-prompt', { min: 1 }) : undefined,
        temperature: parseNumber(o.temperature, '--temperature', { min: 0 }),
        topP: parseNumber(o.topP, '--top-p', { above: 0, max: 1 }),
        maxNewTokens: parseInteger(o.maxNewTokens, '--max-new-tokens', { min: 1 }),
        prompt: o.prompt,
        language: o.language,
        sft,
        eval: {
          samples: parseInteger(o.evalSamples, '--eval-samples', { min: 1 }),
          maxNewTokens: parseInteger(o.maxNewTokens, '--max-new-tokens', { min: 1 }),
        },
        evalTeacher: o.evalTeacher,
        allowPartial: o.allowPartial === true,
        fresh: o.fresh === true,
        seed: parseInteger(o.seed, '--seed', { min: 0 }),
        // Under mpirun every rank stops at the same point, whichever saw the signal first.
        signal: agreedSignal(interrupt.signal).signal,
        progress: process.stderr.isTTY === true ? progressBars() : undefined,
        log: (l) => logLine(l),
      };
      try {
        const r = await runDistill(opts);
        for (const l of formatDistillReport(r)) printLine(l);
        if (o.json)
          printLine(
            JSON.stringify({
              ...r,
              evals: Object.fromEntries(
                Object.entries(r.evals).map(([k, e]) => [k, e && { ...e, examples: undefined }]),
              ),
            }),
          );
        if (r.status === 'interrupted') {
          logLine('aha distill: stopped; rerun the same command to continue');
          process.exit(INTERRUPTED_EXIT_CODE);
        }
      } finally {
        interrupt.dispose();
      }
    });
}
