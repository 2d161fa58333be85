/**
 * `aha distill`: DeepSeek-R1's distillation. A teacher (a local checkpoint, or any OpenAI-compatible server) writes
 * k reasoning traces per prompt; the correct, readable, distinct ones (verified and filtered as in rejection
 * sampling) become SFT data; the student is fine-tuned on them (SFT only, no RL, as R1-Distill), and evaluated
 * before and after (the teacher too).
 *
 * Run directory:
 *
 *     teacher/settings.json     the teacher and its sampling settings, written when sampling starts
 *     teacher/samples.jsonl     the teacher's traces, appended as each prompt completes (kept when the teacher fails)
 *     teacher/data.jsonl        the SFT data (student prompts, teacher completions, provenance)
 *     teacher/report.json       counts: samples, incorrect, dropped per filter, duplicates, over cap, kept
 *     eval_teacher.json, eval_student_before.json, eval_student_after.json
 *     sft/                      the student's aha sft run (final/ is the distilled student)
 *     report.json               everything above in one place
 *
 * Every step is skipped when its output exists, so a rerun of the same command continues; a rerun with another
 * teacher or other sampling settings (teacher/settings.json) is refused rather than relabelling the old traces, and
 * `fresh` discards the earlier outputs to start over. A teacher server that
 * errors is retried by the OpenAI generator (backoff on 429/5xx/timeouts); if it still fails, the run stops with
 * the error in report.json and the samples gathered so far kept for the rerun (or, with allowPartial, goes on with
 * them).
 */
import type { ProgressSink } from '../train/progress.ts';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import { loadQuestionDataset } from '../data/questionDataset.ts';
import { renderPrompt, type PromptSpec as NamedPromptSpec } from '../data/promptRenderer.ts';
import type { AnswerStrategy } from '../verify/extractAnswer.ts';
import { OpenAiGenerator, type Generator } from '../eval/generators.ts';
import { mathUserMessage, promptOpensThink } from '../eval/promptTemplates.ts';
import type { ChatMessage } from '../model/chatTemplate.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { dataParallel, isWriter, writeOnce } from '../parallel/dataParallel.ts';
import { shardedGenerator } from '../parallel/shardedGenerator.ts';
import { buildFilters, type FiltersConfigInput } from './filters.ts';
import {
  answerVerifier,
  rejectionFiles,
  runRejectionSampling,
  SUMMARY_STRATEGIES,
  type ReasoningProblem,
  type RejectionSamplingReport,
  type TransformResult,
  type Verifier,
} from './rejectionSampling.ts';
import { PIPELINE_SFT_DEFAULTS, trainSftStep } from './sftStep.ts';
import { localGenerator } from './stage.ts';
import { evaluateReasoning, type StageEval } from './stageEval.ts';

/** A problem before prompts are rendered. */
export interface DistillProblem {
  id: string;
  question: string;
  answer: string;
  example?: unknown;
}

/** How a question becomes a prompt: a spec of src/data/promptRenderer.ts ('r1-zero', 'chat', a {question}
 * template, ...), or a function of the problem. */
export type PromptSpec = NamedPromptSpec | ((p: DistillProblem) => string);

/** Options of {@link runDistill}. */
export interface DistillOptions {
  out: string;
  /** Student model directory (with tokenizer). */
  student: string;
  /** A local teacher model directory ... */
  teacher?: string;
  /** ... or an OpenAI-compatible teacher server and the model it serves, */
  teacherBaseUrl?: string;
  teacherModel?: string;
  teacherEndpoint?: 'chat' | 'completions';
  teacherApiKey?: string;
  teacherConcurrency?: number;
  teacherMaxRetries?: number;
  teacherBackoffMs?: number;
  teacherTimeoutMs?: number;
  /** ... or any generator (tests, demos). */
  teacherGenerator?: Generator;
  /** Problems: a dataset file ... */
  data?: {
    path: string;
    questionField?: string;
    answerField?: string;
    answerExtraction?: 'none' | 'gsm8k' | 'boxed';
    split?: string;
    limit?: number;
  };
  /** ... with held-out problems from a file, or `evalProblems` held out of data (by the seed), */
  evalData?: DistillOptions['data'];
  evalProblems?: number;
  /** ... or problems in memory. */
  problems?: { train: DistillProblem[]; eval: DistillProblem[] };
  /** The student's prompt (the SFT data's prompts and its evaluation). Default 'r1-zero'. */
  prompt?: PromptSpec;
  /**
   * The teacher's prompt. Default: a chat server gets the question with R1's math instruction ("put your final
   * answer within \boxed{}"), a completions server or a local teacher the student's prompt.
   */
  teacherPrompt?: PromptSpec;
  /** k: traces per prompt. Default 4. */
  samples?: number;
  /** Kept traces per prompt at most. Default k. */
  maxPerPrompt?: number;
  temperature?: number;
  topP?: number;
  maxNewTokens?: number;
  seed?: number;
  verify?: Verifier;
  answerStrategies?: readonly AnswerStrategy[];
  /** Target language of the chain of thought (filter and metric). Default 'en'. */
  language?: string;
  filters?: FiltersConfigInput;
  /** aha sft options for the student (over R1's distillation defaults). */
  sft?: Record<string, unknown>;
  /** Wall-clock budget of the student's SFT. */
  sftMaxMinutes?: number;
  /** Evaluation: samples per held-out problem etc. */
  eval?: { samples?: number; temperature?: number; topP?: number; maxNewTokens?: number };
  /** Also evaluate the teacher (default true). */
  evalTeacher?: boolean;
  /** Go on with the traces gathered when the teacher fails for good. */
  allowPartial?: boolean;
  /** Discard the earlier outputs in `out` (traces, evaluations, the student's SFT) instead of continuing. */
  fresh?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
  progress?: ProgressSink;
}

/**
 * report.json of a distillation run. `status`: complete; teacher_failed (the teacher kept failing: teacher_error);
 * failed (another error stopped the run: `error`); interrupted (stopped by a signal, or still running or killed:
 * what intermediate saves say).
 */
export interface DistillReport {
  status: 'complete' | 'teacher_failed' | 'failed' | 'interrupted';
  teacher: string;
  student: string;
  /** The distilled student (sft/final), when done. */
  distilled: string | null;
  data: RejectionSamplingReport['counts'] | null;
  teacher_error: string | null;
  teacher_eval_error: string | null;
  /** What stopped a failed run (status teacher_failed or failed). */
  error: string | null;
  evals: { teacher: StageEval | null; student_before: StageEval | null; student_after: StageEval | null };
  sft: Record<string, unknown> | null;
  files: Record<string, string>;
}

/**
 * teacher/settings.json: what produced a run's traces. A rerun continues only with the same; a server's URL is not
 * part of it (a restarted server may listen elsewhere), the model it serves is.
 */
export interface TeacherSettings {
  /** 'server <model> (<endpoint>)', 'local <directory>', or 'generator <description>'. */
  teacher: string;
  /** The teacher's prompt with `{question}` in place of the question (a prompt function: its first prompt). */
  teacher_prompt: string;
  samples: number;
  temperature: number;
  top_p: number;
  max_new_tokens: number;
  seed: number;
}

/** The CLI option of each setting, for the refusal. */
const SETTING_FLAGS: Record<keyof TeacherSettings, string> = {
  teacher: '--teacher/--teacher-model',
  teacher_prompt: '--teacher-prompt',
  samples: '--samples',
  temperature: '--temperature',
  top_p: '--top-p',
  max_new_tokens: '--max-new-tokens',
  seed: '--seed',
};

/**
 * Refuses to continue traces made by another teacher or with other settings (the differing ones named), and traces
 * of a run that did not record its settings.
 */
export function checkTeacherSettings(teacherDir: string, now: TeacherSettings): void {
  const path = join(teacherDir, 'settings.json');
  const restart = 'rerun with the same settings to continue, or pass --fresh to start over (or use another --out)';
  const before = readJson<Partial<TeacherSettings>>(path);
  if (!before) {
    const old = ['samples.jsonl', 'data.jsonl', 'report.json'].filter((f) => existsSync(join(teacherDir, f)));
    if (old.length > 0)
      throw new AhaError(
        `distill: ${teacherDir} holds traces of unrecorded teacher settings (no settings.json): ${restart}`,
      );
    return;
  }
  const diff = (Object.keys(SETTING_FLAGS) as (keyof TeacherSettings)[])
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(now[k]))
    .map((k) => `${SETTING_FLAGS[k]} ${JSON.stringify(before[k])} (now ${JSON.stringify(now[k])})`);
  if (diff.length > 0)
    throw new AhaError(`distill: ${teacherDir} holds traces of other settings: ${diff.join(', ')}: ${restart}`);
}

/** R1-Distill's SFT recipe (cosine decay to a tenth; 1e-4 is the paper's rate for the 1.5B student). */
export const DISTILL_SFT_DEFAULTS: Record<string, unknown> = { ...PIPELINE_SFT_DEFAULTS, learning_rate: 1e-4 };

/**
 * A problem's prompt as `spec` says; `sft` is what the SFT data keeps (a chat prompt's messages). `source` names the
 * option in errors (--prompt, --teacher-prompt).
 */
function renderProblem(
  spec: PromptSpec,
  p: DistillProblem,
  modelDir: string | undefined,
  source: string,
): { text: string; sft: string | ChatMessage[] } {
  if (typeof spec === 'function') {
    const t = spec(p);
    return { text: t, sft: t };
  }
  const r = renderPrompt(spec, p.question, { modelDir, source });
  return { text: r.text, sft: r.messages ?? r.text };
}

/**
 * A teacher's trace as the student's completion: a prompt ending with a colon (R1-Zero's "Assistant:") gets the
 * space the format puts there; a prompt that already opened `<think>` gets the trace without its own `<think>`.
 */
export function adaptTrace(trace: string, studentPrompt: string | ChatMessage[]): string {
  if (Array.isArray(studentPrompt)) return trace;
  if (promptOpensThink(studentPrompt)) return trace.replace(/^\s*<think>\n?/, '');
  if (/:$/.test(studentPrompt) && !/^\s/.test(trace)) return ' ' + trace;
  return trace;
}

async function loadProblems(o: DistillOptions): Promise<{ train: DistillProblem[]; eval: DistillProblem[] }> {
  if (o.problems) return o.problems;
  if (!o.data) throw new AhaError('distill: give the prompts (--data FILE)');
  const read = async (d: NonNullable<DistillOptions['data']>) =>
    (
      await loadQuestionDataset({
        path: d.path,
        questionField: d.questionField,
        answerField: d.answerField ?? 'answer',
        answerExtraction: d.answerExtraction,
        split: d.split,
        limit: d.limit,
      })
    ).map((r) => ({ id: r.source, question: r.question, answer: r.answer ?? '' }));
  let train = await read(o.data);
  for (const p of train)
    if (p.answer === '') throw new AhaError(`${p.id}: no reference answer: distillation keeps only verified traces`);
  let evalSet: DistillProblem[];
  if (o.evalData) evalSet = await read(o.evalData);
  else {
    const k = o.evalProblems ?? Math.min(50, Math.floor(train.length / 5));
    if (k >= train.length)
      throw new AhaError(`distill: ${k} held-out problems leave none of ${train.length} to train on`);
    const order = new Rng(fnv1a32(`distill-holdout:${o.seed ?? 0}`)).shuffle(train.map((_, i) => i));
    const held = new Set(order.slice(0, k));
    evalSet = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
  }
  return { train, eval: evalSet };
}

/** A teacher server's URL, checked as the OpenAI generator will take it; errors name --teacher-base-url. */
function checkTeacherUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AhaError(`--teacher-base-url ${url}: not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new AhaError(`--teacher-base-url ${url}: expected http:// or https://`);
}

function readJson<T>(path: string): T | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : null;
}

/** Runs (or continues) a distillation into `o.out`; see the file comment. */
export async function runDistill(o: DistillOptions): Promise<DistillReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const signal = o.signal ?? new AbortController().signal;
  const sources = [o.teacher !== undefined, o.teacherBaseUrl !== undefined, o.teacherGenerator !== undefined].filter(
    Boolean,
  ).length;
  if (sources !== 1)
    throw new AhaError(
      'distill: give exactly one teacher: --teacher DIR, or --teacher-base-url URL with --teacher-model NAME',
    );
  if (o.teacherBaseUrl !== undefined && o.teacherModel === undefined)
    throw new AhaError('distill: --teacher-base-url needs --teacher-model (the model the server serves)');
  if (o.teacherBaseUrl !== undefined) checkTeacherUrl(o.teacherBaseUrl);
  if (o.teacher !== undefined && !existsSync(join(o.teacher, 'config.json')))
    throw new AhaError(`--teacher ${o.teacher}: no config.json (not a model directory)`);
  if (!existsSync(join(o.student, 'config.json')))
    throw new AhaError(`--student ${o.student}: no config.json (not a model directory)`);
  const k = o.samples ?? 4;
  if (!(Number.isInteger(k) && k >= 1)) throw new AhaError(`--samples must be a positive integer (got ${k})`);
  const language = o.language ?? 'en';
  const strategies = o.answerStrategies ?? SUMMARY_STRATEGIES;
  const verify = o.verify ?? answerVerifier({ strategies });
  const studentSpec = o.prompt ?? 'r1-zero';
  const filters = buildFilters(o.filters ?? {}, { language, answerStrategies: strategies });
  const { train, eval: evalSet } = await loadProblems(o);
  if (train.length === 0) throw new AhaError('distill: no training prompts');
  const endpoint = o.teacherEndpoint ?? 'chat';
  const teacherSpec: PromptSpec =
    o.teacherPrompt ??
    (o.teacherBaseUrl !== undefined && endpoint === 'chat'
      ? (p: DistillProblem) => mathUserMessage(p.question)
      : studentSpec);
  const teacherSource = o.teacherPrompt !== undefined ? '--teacher-prompt' : '--prompt';
  // Both prompts render before anything is written: a bad spec leaves no half-made --out.
  renderProblem(studentSpec, train[0], o.student, '--prompt');
  renderProblem(teacherSpec, train[0], o.teacher ?? o.student, teacherSource);

  // The traces of an earlier run are continued only when the same teacher made them the same way.
  const teacherDir = join(o.out, 'teacher');
  const settings: TeacherSettings = {
    teacher: o.teacherGenerator
      ? `generator ${o.teacherGenerator.description}`
      : o.teacherBaseUrl !== undefined
        ? `server ${o.teacherModel!} (${endpoint})`
        : `local ${resolve(o.teacher!)}`,
    // A named spec or template as a template; a function (which may read the problem's example) by its first prompt.
    teacher_prompt:
      typeof teacherSpec === 'function'
        ? teacherSpec(train[0])
        : renderProblem(
            teacherSpec,
            { id: '', question: '{question}', answer: '' },
            o.teacher ?? o.student,
            teacherSource,
          ).text,
    samples: k,
    temperature: o.temperature ?? 0.6,
    top_p: o.topP ?? 0.95,
    max_new_tokens: o.maxNewTokens ?? 1024,
    seed: o.seed ?? 0,
  };
  if (!o.fresh) checkTeacherSettings(teacherDir, settings);
  // Under mpirun rank 0 alone changes the run directory (the others wait, then read it); the teacher's sampling
  // and the evaluations are split across the ranks (shardedGenerator), the student's SFT is data-parallel.
  writeOnce(() => {
    if (o.fresh) {
      for (const f of ['teacher', 'sft', 'eval_teacher.json', 'eval_student_before.json', 'eval_student_after.json'])
        rmSync(join(o.out, f), { recursive: true, force: true });
      rmSync(join(o.out, 'report.json'), { force: true });
    }
    mkdirSync(teacherDir, { recursive: true });
    if (!existsSync(join(teacherDir, 'settings.json')))
      writeFileAtomic(join(teacherDir, 'settings.json'), JSON.stringify(settings, null, 2) + '\n');
  });

  // The teacher.
  let teacher: Generator;
  let teacherName: string;
  if (o.teacherGenerator) {
    teacher = shardedGenerator(o.teacherGenerator);
    teacherName = teacher.description;
  } else if (o.teacherBaseUrl !== undefined) {
    teacher = shardedGenerator(
      new OpenAiGenerator({
        baseUrl: o.teacherBaseUrl,
        model: o.teacherModel!,
        endpoint,
        apiKey: o.teacherApiKey,
        concurrency: o.teacherConcurrency,
        maxRetries: o.teacherMaxRetries,
        backoffMs: o.teacherBackoffMs,
        timeoutMs: o.teacherTimeoutMs,
      }),
    );
    teacherName = teacher.description;
  } else {
    teacher = localGenerator(o.teacher!, studentSpec === 'chat').generator;
    teacherName = o.teacher!;
  }
  const chat = studentSpec === 'chat';
  const asProblems = (ps: DistillProblem[], who: 'teacher' | 'student'): ReasoningProblem[] =>
    ps.map((p) => {
      const s = renderProblem(studentSpec, p, o.student, '--prompt');
      const t = who === 'teacher' ? renderProblem(teacherSpec, p, o.teacher ?? o.student, teacherSource) : s;
      return {
        id: p.id,
        question: p.question,
        answer: p.answer,
        prompt: t.text,
        sftPrompt: s.sft,
        ...(p.example !== undefined ? { example: p.example } : {}),
      };
    });

  const files = {
    samples: rejectionFiles(join(o.out, 'teacher')).samples,
    data: rejectionFiles(join(o.out, 'teacher')).data,
    data_report: rejectionFiles(join(o.out, 'teacher')).report,
    eval_teacher: join(o.out, 'eval_teacher.json'),
    eval_student_before: join(o.out, 'eval_student_before.json'),
    eval_student_after: join(o.out, 'eval_student_after.json'),
    sft: join(o.out, 'sft'),
    report: join(o.out, 'report.json'),
  };
  const report: DistillReport = {
    status: 'interrupted',
    teacher: teacherName,
    student: o.student,
    distilled: null,
    data: null,
    teacher_error: null,
    teacher_eval_error: null,
    error: null,
    evals: {
      teacher: readJson(files.eval_teacher),
      student_before: readJson(files.eval_student_before),
      student_after: readJson(files.eval_student_after),
    },
    sft: null,
    files,
  };
  // Rank 0 alone, without waiting for the others: no rank reads these files back during the run, and a save on an
  // error path must not wait in a collective.
  const save = () => isWriter() && writeFileAtomic(files.report, JSON.stringify(report, null, 2) + '\n');
  const saveEval = (path: string, e: StageEval) =>
    isWriter() && writeFileAtomic(path, JSON.stringify(e, null, 2) + '\n');
  const ev = o.eval ?? {};
  const evaluate = (generator: Generator, problems: ReasoningProblem[]) =>
    evaluateReasoning({
      generator,
      problems,
      verify,
      language,
      samples: ev.samples ?? 2,
      temperature: ev.temperature ?? 0.6,
      topP: ev.topP ?? 0.95,
      maxNewTokens: ev.maxNewTokens ?? o.maxNewTokens ?? 1024,
      seed: o.seed ?? 0,
      signal,
    });

  // Whatever stops the run is said in report.json: the signal (interrupted), the teacher (teacher_failed), or the
  // error (failed); never the in-progress 'interrupted' of the last intermediate save.
  try {
    if (!(await distillSteps())) return report;
  } catch (e) {
    if (signal.aborted) {
      report.status = 'interrupted';
      save();
      return report;
    }
    if (report.status !== 'teacher_failed') report.status = 'failed';
    report.error = (e as Error).message;
    save();
    throw e;
  }
  // With allowPartial a teacher failure does not stop the run; teacher_error still says what happened.
  report.status = 'complete';
  save();
  return report;

  /** Steps 1-3; false when stopped by the signal (what is done is saved). */
  async function distillSteps(): Promise<boolean> {
    // 1. The teacher's traces: verified, filtered, deduplicated, capped.
    log(`distill: ${teacherName} writes ${k} traces for each of ${train.length} prompts`);
    let data: RejectionSamplingReport;
    try {
      data = await runRejectionSampling({
        generator: teacher,
        checkpoint: teacherName,
        problems: asProblems(train, 'teacher'),
        verify,
        filters,
        sampling: {
          n: k,
          temperature: o.temperature ?? 0.6,
          topP: o.topP ?? 0.95,
          maxNewTokens: o.maxNewTokens ?? 1024,
          seed: o.seed ?? 0,
        },
        maxPerPrompt: o.maxPerPrompt ?? k,
        outDir: join(o.out, 'teacher'),
        source: 'distillation',
        provenance: { teacher: teacherName, teacher_settings: settings },
        allowPartial: o.allowPartial,
        signal,
        transform: (c, p): TransformResult => ({ completion: adaptTrace(c, p.sftPrompt ?? p.prompt) }),
        log: (l) => log(`distill: ${l}`),
      });
    } catch (e) {
      const partial = signal.aborted ? null : readJson<RejectionSamplingReport>(files.data_report);
      if (partial?.status === 'partial') {
        report.status = 'teacher_failed';
        report.teacher_error = partial.generation_error;
        report.data = partial.counts;
      }
      throw e;
    }
    report.data = data.counts;
    if (data.generation_error) report.teacher_error = data.generation_error;
    log(
      `distill: kept ${data.counts.kept} traces of ${data.counts.samples} (incorrect ${data.counts.incorrect}, dropped ${JSON.stringify(data.counts.dropped)}, duplicates ${data.counts.duplicates}, over cap ${data.counts.over_cap})`,
    );
    if (data.counts.kept === 0)
      throw new AhaError(
        `distill: no trace of ${data.counts.samples} was correct and readable (see ${files.data_report})`,
      );
    save();

    // 2. Evaluations before: the student, and the teacher.
    const studentEval = asProblems(evalSet, 'student');
    if (!report.evals.student_before) {
      log(`distill: evaluating the student ${o.student} on ${evalSet.length} held-out problems`);
      report.evals.student_before = await evaluate(localGenerator(o.student, chat).generator, studentEval);
      saveEval(files.eval_student_before, report.evals.student_before);
    }
    if ((o.evalTeacher ?? true) && !report.evals.teacher) {
      log(`distill: evaluating the teacher ${teacherName}`);
      try {
        report.evals.teacher = await evaluate(teacher, asProblems(evalSet, 'teacher'));
        saveEval(files.eval_teacher, report.evals.teacher);
      } catch (e) {
        if (signal.aborted) throw e;
        report.teacher_eval_error = (e as Error).message;
        log(`distill: the teacher's evaluation failed: ${(e as Error).message}`);
      }
    }
    save();

    // 3. SFT of the student on the traces, then its evaluation.
    const sft = await trainSftStep({
      model: o.student,
      data: files.data,
      sft: o.sft ?? {},
      runDir: files.sft,
      maxMinutes: o.sftMaxMinutes,
      configName: 'distill sft options',
      signal,
      log: (l) => log(`distill: ${l}`),
      progress: o.progress,
      defaults: DISTILL_SFT_DEFAULTS,
    });
    // Rank 0 has written the student's checkpoint when every rank goes on to load it.
    dataParallel()?.barrier();
    report.sft = sft.details ?? null;
    if (sft.interrupted) {
      save();
      return false;
    }
    report.distilled = sft.checkpoint;
    if (!report.evals.student_after) {
      log(`distill: evaluating the distilled student ${sft.checkpoint}`);
      report.evals.student_after = await evaluate(localGenerator(sft.checkpoint, chat).generator, studentEval);
      saveEval(files.eval_student_after, report.evals.student_after);
    }
    return true;
  }
}
