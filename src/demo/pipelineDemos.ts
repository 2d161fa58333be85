/**
 * `aha demo --pipeline r1|distill`: the R1 pipeline and distillation in miniature, on the synthetic arithmetic task
 * and the shipped base model, sized for a few minutes each on 2 CPU cores.
 *
 * - r1: cold start from the base's own samples (correct and readable ones, rewritten as reasoning + "The answer is
 *   X."), a short reasoning RL with accuracy + format + language rewards, rejection sampling from it with SFT of
 *   the base, then a short all-scenario RL.
 * - distill: a teacher (an RL-trained checkpoint, or the base model) writes verified traces; a smaller fresh
 *   student (the 'tiny' preset, same character tokenizer) is fine-tuned on them, and compared with the same student
 *   trained by GRPO alone for the same wall-clock time, as the paper compared R1-Distill with RL on small models.
 *
 * Both print per-stage pass@1, format rate, language consistency and mean length.
 */
import type { ProgressSink } from '../train/progress.ts';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { arithmeticTask, type ArithmeticExample, type ArithmeticOptions } from '../data/tasks/arithmetic.ts';
import { Rng } from '../data/rng.ts';
import { initModel } from '../model/initModel.ts';
import { grpoTrain } from '../rl/grpoTrainer.ts';
import { runR1Pipeline, type PipelineResult } from '../r1/pipeline.ts';
import { budgetSignal, localGenerator } from '../r1/stage.ts';
import { evaluateReasoning, formatStageEval, readableFormat, type StageEval } from '../r1/stageEval.ts';
import type { PipelineRecipeInput } from '../r1/pipelineRecipe.ts';
import { parsePipelineRecipe } from '../r1/pipelineRecipe.ts';
import { runDistill, type DistillProblem, type DistillReport } from '../r1/distill.ts';
import { answerVerifier, type ReasoningProblem } from '../r1/rejectionSampling.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { AhaError } from '../errors.ts';

/** How big the demo runs are: 'demo' (a few minutes each on 2 cores) or 'smoke' (seconds; tests). */
export type DemoScale = 'demo' | 'smoke';

/** Options shared by the pipeline demos. */
export interface PipelineDemoOptions {
  /** Run directory. */
  out: string;
  /** Base model directory (models/demo-base). */
  base: string;
  /** Wall-clock budget of the training steps, in minutes (split between stages). Default 6. */
  minutes?: number;
  evalProblems?: number;
  evalSamples?: number;
  seed?: number;
  scale?: DemoScale;
  /** The task's difficulty (default: the demo's 4-5 operand chains). */
  taskOptions?: Pick<ArithmeticOptions, 'minTerms' | 'maxTerms' | 'maxOperand' | 'ops'>;
  resume?: boolean;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Progress notes (stderr). */
  log: (line: string) => void;
  /** The result table (stdout); default `log`. */
  print?: (line: string) => void;
  /**
   * r1: the last stage also trains on general prompts (no reference answer) scored by a reward model: a random
   * 'tiny' sequence classifier the demo initialises with the base's tokenizer (`<out>/reward-model`).
   */
  rewardModel?: boolean;
}

/** Prompts without a reference answer for the r1 demo's reward-model run (the reward model alone scores them). */
const GENERAL_PROMPTS = [
  'Explain what addition means.',
  'Why is 7 + 5 the same as 5 + 7?',
  'Describe how to subtract 19 from 40.',
  'What is a good way to check a sum?',
  'Explain what multiplying by 10 does.',
  'Why does 0 added to a number leave it the same?',
  'Describe how to add 38 and 47 step by step.',
  'What is the difference between 9 - 4 and 4 - 9?',
];

/** Writes the reward-model run's files (once): the random classifier and the general prompts. */
function prepareRewardModelRun(o: { out: string; base: string; seed?: number }): { model: string; general: string } {
  const model = join(o.out, 'reward-model');
  const general = join(o.out, 'general.jsonl');
  if (!existsSync(join(model, 'config.json')))
    initModel({
      config: 'tiny',
      tokenizer: o.base,
      out: model,
      rewardModel: true,
      seed: (o.seed ?? 0) + 23,
      overwrite: true,
    });
  if (!existsSync(general))
    writeFileAtomic(general, GENERAL_PROMPTS.map((q) => JSON.stringify({ question: q }) + '\n').join(''));
  return { model, general };
}

function requireBase(base: string): void {
  if (!existsSync(join(base, 'config.json'))) {
    throw new AhaError(
      `${base}: no base model (run \`aha demo\` once, or \`aha demo --rebuild-base\`, to build models/demo-base)`,
    );
  }
}

/** The recipe of the r1 demo: every stage small, RL stages bounded by wall-clock. */
export function r1DemoRecipe(
  o: Pick<
    PipelineDemoOptions,
    'base' | 'minutes' | 'evalProblems' | 'evalSamples' | 'seed' | 'scale' | 'taskOptions'
  > & {
    /** The last stage also trains on `general` prompts scored by the reward model in `model`. */
    rewardModel?: { model: string; general: string };
  },
): PipelineRecipeInput {
  const smoke = o.scale === 'smoke';
  const minutes = o.minutes ?? 6;
  const rl = (steps: number, share: number) => ({
    rewards: { accuracy: 1, format: 1, language: 1 },
    grpo: {
      num_generations: smoke ? 2 : 8,
      beta: 0,
      epsilon: 0.2,
      loss_type: 'dr_grpo',
      scale_rewards: 'group',
      max_completion_length: smoke ? 24 : 160,
      temperature: 1.0,
      mask_truncated_completions: true,
    },
    training: {
      // After SFT the policy is sharp: R1-Zero's demo rate (3e-4, from the base) wrecks its arithmetic in ten steps.
      learning_rate: 5e-5,
      max_steps: smoke ? 1 : steps,
      prompts_per_step: smoke ? 2 : 16,
      warmup_steps: smoke ? 0 : 2,
      seed: o.seed ?? 0,
      save_steps: smoke ? 0 : 10,
      save_total_limit: 1,
      sample_log_steps: 5,
    },
    max_minutes: minutes * share,
  });
  const sft = (steps: number) => ({
    learning_rate: 3e-4,
    max_steps: smoke ? 1 : steps,
    per_device_train_batch_size: smoke ? 2 : 16,
    lr_scheduler_type: 'cosine',
    min_lr_ratio: 0.1,
    warmup_steps: smoke ? 0 : 3,
    save_steps: smoke ? 1 : 20,
    logging_steps: 5,
    seed: o.seed ?? 0,
  });
  return {
    base_model: o.base,
    task: 'arithmetic',
    task_options: {
      min_terms: o.taskOptions?.minTerms,
      max_terms: o.taskOptions?.maxTerms,
      max_operand: o.taskOptions?.maxOperand,
      ops: o.taskOptions?.ops,
    },
    task_train_size: smoke ? 32 : 5000,
    language: 'en',
    max_new_tokens: smoke ? 24 : 160,
    eval: { problems: o.evalProblems ?? (smoke ? 2 : 64), samples: o.evalSamples ?? (smoke ? 1 : 2) },
    seed: o.seed ?? 0,
    // The base answers directly about as often as it works line by line, and a direct guess is sometimes right:
    // a chain of thought needs the question and at least 3 rewrite lines to count as one.
    filters: { language_threshold: 0.9, max_paragraph_chars: 2000, min_reasoning_lines: smoke ? null : 4 },
    stages: {
      cold_start_sft: {
        prompts: smoke ? 8 : 256,
        samples_per_prompt: smoke ? 2 : 4,
        max_per_prompt: 1,
        temperature: 0.8,
        sft: sft(40),
        max_minutes: minutes * 0.15,
      },
      reasoning_rl: rl(25, 0.35),
      rejection_sft: {
        prompts: smoke ? 8 : 192,
        samples_per_prompt: smoke ? 2 : 4,
        max_per_prompt: 2,
        temperature: 0.7,
        sft: sft(60),
        max_minutes: minutes * 0.2,
      },
      all_scenarios_rl: o.rewardModel
        ? {
            ...rl(15, 0.3),
            general_dataset: { path: o.rewardModel.general, answer_field: null },
            general_prompts_per_step: smoke ? 1 : 4,
            general_rewards: [
              {
                name: 'reward_model',
                options: { model: o.rewardModel.model, on: 'summary', normalize: { type: 'running' } },
              },
            ],
          }
        : rl(15, 0.3),
    },
  };
}

/** The r1 pipeline demo; returns the pipeline's result after printing its table. */
export async function runR1PipelineDemo(o: PipelineDemoOptions): Promise<PipelineResult> {
  requireBase(o.base);
  const print = o.print ?? o.log;
  mkdirSync(o.out, { recursive: true });
  const rewardModel = o.rewardModel ? prepareRewardModelRun(o) : undefined;
  const recipe = parsePipelineRecipe(r1DemoRecipe({ ...o, rewardModel }), 'r1 demo recipe');
  const resume = o.resume ?? existsSync(join(o.out, 'pipeline.json'));
  const t0 = Date.now();
  const r = await runR1Pipeline(recipe, { outDir: o.out, resume, signal: o.signal, log: o.log, progress: o.progress });
  print('');
  print(
    `R1 pipeline demo (${((Date.now() - t0) / 60000).toFixed(1)} min; held-out: ${recipe.eval.problems} problems x ${recipe.eval.samples} samples, T=0.6)`,
  );
  if (r.base) print('  ' + formatStageEval('base', r.base));
  for (const s of r.stages)
    print('  ' + (s.eval ? formatStageEval(s.name, s.eval) : `${s.name.padEnd(18)} ${s.status}`));
  print(`run directory: ${r.outDir}`);
  return r;
}

/** What the distillation demo measured. */
export interface DistillDemoResult {
  /** Stopped by the signal: what is done is on disk, and the same call continues it. */
  interrupted: boolean;
  teacher: string;
  report: DistillReport;
  /** The same fresh student after GRPO alone for the distillation's wall-clock time (null when interrupted). */
  grpoOnly: StageEval | null;
  grpoSteps: number;
  distillSeconds: number;
  out: string;
}

/** Options of {@link runDistillDemo}. */
export interface DistillDemoOptions extends PipelineDemoOptions {
  /** The teacher: an RL-trained checkpoint when it exists (e.g. runs/demo/grpo/final), else the base model. */
  teacher?: string;
}

/**
 * The distillation demo: teacher traces → SFT of a fresh 'tiny' student, against GRPO alone on the same student for
 * the same wall-clock time.
 */
export async function runDistillDemo(o: DistillDemoOptions): Promise<DistillDemoResult> {
  requireBase(o.base);
  const print = o.print ?? o.log;
  const smoke = o.scale === 'smoke';
  const seed = o.seed ?? 0;
  const minutes = o.minutes ?? 6;
  const teacher = o.teacher !== undefined && existsSync(join(o.teacher, 'config.json')) ? o.teacher : o.base;
  if (o.teacher !== undefined && teacher !== o.teacher)
    o.log(`distill demo: no model at ${o.teacher}; the base model teaches`);
  mkdirSync(o.out, { recursive: true });

  const task = arithmeticTask(o.taskOptions);
  const toProblem = (ex: ArithmeticExample): DistillProblem => ({
    id: ex.question,
    question: ex.question,
    answer: ex.answer,
    example: ex,
  });
  const train = task.generate(new Rng(seed + 1), smoke ? 8 : 256, 'train').map(toProblem);
  const test = task.generate(new Rng(seed + 7), o.evalProblems ?? (smoke ? 2 : 64), 'test').map(toProblem);
  const verify = answerVerifier({ check: (a, p) => task.check(a, p.example as ArithmeticExample) });
  const prompt = (p: DistillProblem) => task.prompt(p.example as ArithmeticExample);
  const maxNew = smoke ? 24 : 160;

  // A fresh student, smaller than the teacher, with the same character tokenizer.
  const studentDir = join(o.out, 'student-init');
  if (!existsSync(join(studentDir, 'config.json'))) {
    initModel({ config: 'tiny', tokenizer: teacher, out: studentDir, seed: seed + 11, overwrite: true });
  }

  const t0 = Date.now();
  const report = await runDistill({
    out: join(o.out, 'distill'),
    teacher,
    student: studentDir,
    problems: { train, eval: test },
    prompt,
    verify,
    samples: smoke ? 2 : 4,
    maxPerPrompt: 2,
    temperature: 0.7,
    topP: 0.95,
    maxNewTokens: maxNew,
    seed,
    sft: {
      learning_rate: 1e-3,
      max_steps: smoke ? 1 : 500,
      per_device_train_batch_size: smoke ? 2 : 32,
      lr_scheduler_type: 'cosine',
      min_lr_ratio: 0.1,
      warmup_steps: smoke ? 0 : 10,
      save_steps: smoke ? 1 : 50,
      logging_steps: 10,
      seed,
    },
    sftMaxMinutes: minutes * 0.4,
    eval: { samples: o.evalSamples ?? (smoke ? 1 : 2), maxNewTokens: maxNew },
    signal: o.signal,
    log: o.log,
    progress: o.progress,
  });
  const distillSeconds = (Date.now() - t0) / 1000;
  if (report.status === 'interrupted')
    return { interrupted: true, teacher, report, grpoOnly: null, grpoSteps: 0, distillSeconds, out: o.out };

  // The same student, GRPO alone, for the same wall-clock time.
  o.log(`distill demo: GRPO alone on the fresh student for ${distillSeconds.toFixed(0)} s`);
  const grpoDir = join(o.out, 'grpo-only');
  const donePath = join(grpoDir, 'done.json');
  let grpoSteps: number;
  let grpoModelDir: string;
  if (existsSync(donePath)) {
    ({ steps: grpoSteps, checkpoint: grpoModelDir } = JSON.parse(readFileSync(donePath, 'utf8')) as {
      steps: number;
      checkpoint: string;
    });
  } else {
    // A wall-clock race cannot be resumed fairly: an unfinished one starts over.
    rmSync(grpoDir, { recursive: true, force: true });
    const budget = budgetSignal(o.signal ?? new AbortController().signal, distillSeconds / 60);
    const rows = task
      .generate(new Rng(seed + 1), smoke ? 4 : 2000, 'train')
      .map((ex) => ({ ...ex, prompt: task.prompt(ex) }));
    try {
      const r = await grpoTrain(
        {
          model: studentDir,
          dataset: rows,
          prompt: (ex: { prompt: string }) => ex.prompt,
          rewards: [
            {
              name: 'accuracy',
              weight: 1,
              fn: async (c: string, ex: Record<string, unknown>) =>
                (await verify(c, { ...(ex as unknown as ReasoningProblem), example: ex })) ? 1 : 0,
            },
            {
              name: 'format',
              weight: 1,
              fn: (c: string, _ex: unknown, rc: { prompt: string }) => (readableFormat(c, rc.prompt) ? 1 : 0),
            },
          ],
          grpo: {
            num_generations: smoke ? 2 : 8,
            beta: 0,
            loss_type: 'dr_grpo',
            max_completion_length: maxNew,
            temperature: 1.0,
          },
          training: {
            learning_rate: 1e-3,
            max_steps: smoke ? 1 : 10_000,
            prompts_per_step: smoke ? 2 : 16,
            seed,
            save_steps: 0,
            sample_log_steps: 0,
          },
        },
        { outDir: grpoDir, signal: budget.signal, log: o.log, progress: o.progress },
      );
      if (o.signal?.aborted)
        return { interrupted: true, teacher, report, grpoOnly: null, grpoSteps: r.step, distillSeconds, out: o.out };
      grpoSteps = r.step;
      grpoModelDir = r.checkpoint!;
      writeFileAtomic(donePath, JSON.stringify({ steps: grpoSteps, checkpoint: grpoModelDir }) + '\n');
    } finally {
      budget.dispose();
    }
  }
  const testProblems: ReasoningProblem[] = test.map((p) => ({
    id: p.id,
    question: p.question,
    answer: p.answer,
    prompt: prompt(p),
    example: p.example,
  }));
  const grpoOnly = await evaluateReasoning({
    generator: localGenerator(grpoModelDir, false).generator,
    problems: testProblems,
    verify,
    language: 'en',
    samples: o.evalSamples ?? (smoke ? 1 : 2),
    maxNewTokens: maxNew,
    seed,
    signal: o.signal,
  });
  writeFileAtomic(join(o.out, 'eval_grpo_only.json'), JSON.stringify(grpoOnly, null, 2) + '\n');

  print('');
  print(`Distillation demo: teacher ${teacher} -> fresh 'tiny' student (held-out: ${test.length} problems)`);
  if (report.data) print(`  teacher traces kept: ${report.data.kept} of ${report.data.samples}`);
  if (report.evals.teacher) print('  ' + formatStageEval('teacher', report.evals.teacher));
  if (report.evals.student_before) print('  ' + formatStageEval('student (fresh)', report.evals.student_before));
  if (report.evals.student_after) print('  ' + formatStageEval('student distilled', report.evals.student_after));
  print(
    '  ' + formatStageEval(`student GRPO only`, grpoOnly) + `   (${grpoSteps} steps in ${distillSeconds.toFixed(0)} s)`,
  );
  print(`run directory: ${o.out}`);
  return { interrupted: false, teacher, report, grpoOnly, grpoSteps, distillSeconds, out: o.out };
}
