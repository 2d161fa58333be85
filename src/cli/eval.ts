/**
 * `aha eval`: score a model on a math benchmark with DeepSeek-R1's protocol (k samples per problem at temperature
 * 0.6, top-p 0.95; pass@1 = mean correctness over the k samples; cons@k = majority vote), or on a code benchmark
 * (HumanEval) with the same protocol, each sample's program judged in the sandbox, sampling from the local engine
 * (--model DIR) or an OpenAI-compatible server (--openai-base-url URL [--model-name NAME]). New tokens default to
 * 4096, not R1's 32,768 (see {@link DEFAULT_EVAL_MAX_NEW_TOKENS}). With --out the generations are saved as they
 * complete and a rerun resumes.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { loadPretrained } from '../model/pretrained.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { BENCHMARKS, defaultSamples, loadBenchmark } from '../eval/benchmarks.ts';
import { DEFAULT_STRATEGIES, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { evalRunFiles, runEval, type EvalRunSummary, type EvalSettings } from '../eval/evalRun.ts';
import type { AnswerScope, Metrics } from '../eval/evaluate.ts';
import { codeScorer } from '../eval/codeScorer.ts';
import {
  chooseServerModel,
  formatRetry,
  LocalEngineGenerator,
  OpenAiGenerator,
  probeServer,
  type Generator,
} from '../eval/generators.ts';
import { codeUserMessage, makePromptFormat } from '../eval/promptTemplates.ts';
import { INTERRUPTED_EXIT_CODE, onInterrupt } from '../train/interrupt.ts';
import { logLine, printLine } from './output.ts';
import { parseInteger, parseNumber } from './parse.ts';
import { parseChatTemplateKwargs } from './tokenInput.ts';
import { progressBars } from './progress.ts';

/** DeepSeek-R1's maximum generation length (its evaluations of reasoning models). */
export const R1_MAX_NEW_TOKENS = 32768;

/**
 * New tokens per sample when --max-new-tokens is not given: enough for a small model's chain of thought on GSM8K or
 * MATH, and a request every server with an 8k context accepts. R1's own setting ({@link R1_MAX_NEW_TOKENS}) asks a
 * server for 32k tokens per sample, which most serving setups refuse (context too short) or take hours over; give
 * it explicitly to evaluate a long-reasoning model as R1 did.
 */
export const DEFAULT_EVAL_MAX_NEW_TOKENS = 4096;

interface EvalCliOptions {
  benchmark: string;
  model?: string;
  openaiBaseUrl?: string;
  modelName?: string;
  apiKeyEnv: string;
  endpoint?: string;
  samples?: string;
  temperature: string;
  topP: string;
  topK: string;
  maxNewTokens?: string;
  limit?: string;
  promptTemplate: string;
  thinkPrefix?: boolean;
  answerStrategies?: string;
  answerScope: string;
  seed: string;
  out?: string;
  fresh?: boolean;
  json?: boolean;
  concurrency: string;
  batch?: string;
  nPerRequest?: boolean;
  timeout: string;
  retries: string;
  questionField?: string;
  answerField?: string;
  chatTemplateKwargs?: string;
}

function pct(x: number | null): string {
  return x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`;
}

/** The human-readable result table. */
export function formatEvalTable(s: EvalRunSummary): string {
  const k = s.samples;
  const lines = [
    `${s.benchmark}: ${s.problems} problems x ${k} samples (${s.generator})`,
    `  pass@1      ${pct(s.pass_at_1)}`,
    `  pass@${k}`.padEnd(14) + pct(s.pass_at_k),
    ...(s.cons_at_k === null ? [] : [`  cons@${k}`.padEnd(14) + pct(s.cons_at_k)]),
    `  format      ${pct(s.format_rate)}`,
    `  mean length ${s.mean_length === null ? 'n/a' : `${Math.round(s.mean_length)} tokens`}`,
    `  truncated   ${pct(s.truncated_rate)}`,
  ];
  if (s.reasons) {
    const counts = Object.entries(s.reasons).map(([r, n]) => `${r} ${n}`);
    lines.push(`  verdicts    ${counts.join(', ')}`);
  }
  if (s.prompts_too_long > 0) lines.push(`  prompts too long for the model: ${s.prompts_too_long} (scored as wrong)`);
  const table = (title: string, rows: Record<string, Metrics>) => {
    const w = Math.max(title.length, ...Object.keys(rows).map((r) => r.length)) + 2;
    lines.push(
      `  ${title.padEnd(w)}${'n'.padStart(5)}${'pass@1'.padStart(9)}${`pass@${k}`.padStart(9)}${`cons@${k}`.padStart(9)}`,
    );
    for (const [name, m] of Object.entries(rows)) {
      lines.push(
        `  ${name.padEnd(w)}${String(m.problems).padStart(5)}${pct(m.pass_at_1).padStart(9)}${pct(m.pass_at_k).padStart(9)}${pct(m.cons_at_k).padStart(9)}`,
      );
    }
  };
  if (s.by_subject) table('subject', s.by_subject);
  if (s.by_level) table('level', s.by_level);
  if (s.files) lines.push(`  generations: ${s.files.generations}`, `  summary:     ${s.files.summary}`);
  return lines.join('\n');
}

/** The --json line: R1's headline numbers first. */
export function evalJsonLine(s: EvalRunSummary): Record<string, unknown> {
  const line: Record<string, unknown> = {
    benchmark: s.benchmark,
    samples: s.samples,
    pass_at_1: s.pass_at_1,
    pass_at_k: s.pass_at_k,
    cons_at_k: s.cons_at_k,
    format_rate: s.format_rate,
    mean_length: s.mean_length,
  };
  if (s.by_subject) line.by_subject = s.by_subject;
  if (s.by_level) line.by_level = s.by_level;
  if (s.reasons) line.reasons = s.reasons;
  Object.assign(line, {
    problems: s.problems,
    pass_at: s.pass_at,
    truncated_rate: s.truncated_rate,
    prompts_too_long: s.prompts_too_long,
  });
  if (s.files) line.summary_file = s.files.summary;
  return line;
}

function parseStrategies(v: string | undefined): readonly AnswerStrategy[] {
  if (v === undefined) return DEFAULT_STRATEGIES;
  const list = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const s of list) {
    if (!(DEFAULT_STRATEGIES as readonly string[]).includes(s)) {
      throw new AhaError(
        `--answer-strategies: unknown strategy '${s}' (expected some of ${DEFAULT_STRATEGIES.join(', ')})`,
      );
    }
  }
  if (list.length === 0) throw new AhaError('--answer-strategies: empty list');
  return list as AnswerStrategy[];
}

async function run(o: EvalCliOptions): Promise<void> {
  const local = o.openaiBaseUrl === undefined;
  if (local && o.model === undefined) throw new AhaError('give --model DIR (local engine) or --openai-base-url URL');
  if (local && o.modelName !== undefined) throw new AhaError('--model-name applies to --openai-base-url only');
  const limit = o.limit === undefined ? undefined : parseInteger(o.limit, '--limit', { min: 1 });
  const bench = await loadBenchmark(o.benchmark, { limit, questionField: o.questionField, answerField: o.answerField });
  const samples =
    o.samples === undefined ? defaultSamples(o.benchmark) : parseInteger(o.samples, '--samples', { min: 1 });
  const temperature = parseNumber(o.temperature, '--temperature', { min: 0 });
  const topP = parseNumber(o.topP, '--top-p', { above: 0, max: 1 });
  const topK = parseInteger(o.topK, '--top-k', { min: 0 });
  const seed = parseInteger(o.seed, '--seed', { min: 0 });
  const strategies = parseStrategies(o.answerStrategies);
  if (o.answerScope !== 'after-think' && o.answerScope !== 'all')
    throw new AhaError(`--answer-scope must be after-think or all (got ${o.answerScope})`);
  const answerScope = o.answerScope as AnswerScope;
  let maxNewTokens =
    o.maxNewTokens === undefined
      ? DEFAULT_EVAL_MAX_NEW_TOKENS
      : parseInteger(o.maxNewTokens, '--max-new-tokens', { min: 1 });

  if (local && o.endpoint !== undefined) throw new AhaError('--endpoint applies to --openai-base-url only');
  if (o.endpoint !== undefined && o.endpoint !== 'chat' && o.endpoint !== 'completions')
    throw new AhaError(`--endpoint must be chat or completions (got ${o.endpoint})`);
  // With a local copy of the tokenizer files, a server's prompt is rendered here and sent as text.
  const endpoint = local
    ? undefined
    : ((o.endpoint as 'chat' | 'completions' | undefined) ?? (o.model !== undefined ? 'completions' : 'chat'));
  const code = bench.kind === 'code';
  const chatTemplateKwargs = parseChatTemplateKwargs(o.chatTemplateKwargs);
  const format = makePromptFormat(o.promptTemplate, {
    modelDir: endpoint === 'chat' ? undefined : o.model,
    thinkPrefix: o.thinkPrefix,
    chatMessage: endpoint === 'chat',
    userMessage: code ? codeUserMessage : undefined,
    chatTemplateKwargs,
  });
  if (chatTemplateKwargs && format.kind !== 'chat' && endpoint !== 'chat')
    throw new AhaError(
      `--chat-template-kwargs: the prompts use no chat template (prompt format ${format.kind}): ` +
        'give --model DIR with a chat template, or a server with the chat endpoint',
    );
  const label = `eval ${bench.name}`;
  // One sink for the bar and for retry notices, so that a notice prints above the bar instead of through it.
  const progress = progressBars({ minIntervalMs: 10_000 });
  let generator: Generator;
  let modelLabel: string;
  if (local) {
    const p = loadPretrained(o.model!, { requireTokenizer: true });
    maxNewTokens = Math.min(maxNewTokens, p.model.config.maxPositionEmbeddings);
    modelLabel = resolve(o.model!);
    generator = new LocalEngineGenerator({
      model: p.model,
      tokenizer: p.tokenizer!,
      addSpecialTokens: format.addSpecialTokens,
      topK,
      name: modelLabel,
      batchSize: o.batch === undefined ? undefined : parseInteger(o.batch, '--batch', { min: 1 }),
    });
  } else {
    const tokenizer = o.model !== undefined ? loadTokenizer(o.model) : undefined;
    const apiKey = process.env[o.apiKeyEnv] || undefined;
    // One quick request first: a server that is down fails here in seconds, not after every request's retries.
    const listed = await probeServer(o.openaiBaseUrl!, { apiKey });
    const modelName = chooseServerModel(o.openaiBaseUrl!, listed, o.modelName);
    if (o.modelName !== undefined && listed !== null && listed.length > 0 && !listed.some((m) => m.id === modelName))
      logLine(
        `aha eval: note: the server lists no model '${modelName}' (it lists ${listed.map((m) => m.id).join(', ')})`,
      );
    if (o.modelName === undefined) logLine(`aha eval: model ${modelName} (the one the server lists)`);
    generator = new OpenAiGenerator({
      baseUrl: o.openaiBaseUrl!,
      model: modelName,
      apiKey,
      endpoint,
      concurrency: parseInteger(o.concurrency, '--concurrency', { min: 1 }),
      nPerRequest: o.nPerRequest === true,
      timeoutMs: parseNumber(o.timeout, '--timeout', { min: 1 }) * 1000,
      maxRetries: parseInteger(o.retries, '--retries', { min: 0 }),
      countTokens: tokenizer ? (t) => tokenizer.encode(t, { addSpecialTokens: false }).length : undefined,
      extraBody: {
        ...(topK > 0 ? { top_k: topK } : {}),
        // With the chat endpoint the server renders the template (vLLM and SGLang take these variables).
        ...(chatTemplateKwargs && endpoint === 'chat' ? { chat_template_kwargs: chatTemplateKwargs } : {}),
      },
      onRetry: (r) => progress({ kind: 'warning', label, message: formatRetry(r) }),
    });
    modelLabel = `${modelName} at ${o.openaiBaseUrl}`;
  }

  const settings: EvalSettings = {
    benchmark: o.benchmark,
    model: modelLabel,
    samples,
    temperature,
    top_p: topP,
    top_k: topK,
    max_new_tokens: maxNewTokens,
    seed,
    prompt_template: o.promptTemplate,
    prompt_format: format.kind,
    think_prefix: o.thinkPrefix === true,
    answer_strategies: [...strategies],
    answer_scope: answerScope,
  };
  if (chatTemplateKwargs) settings.chat_template_kwargs = JSON.stringify(chatTemplateKwargs);
  const files = o.out !== undefined ? evalRunFiles(o.out, bench.name) : undefined;
  const interrupt = onInterrupt({
    onFirst: (sig) => logLine(`\naha eval: ${sig}: stopping (${sig} again to quit now)`),
  });
  let total = 0;
  let barShown = false;
  let done = 0;
  const stopBar = () => {
    if (barShown) progress({ label, done, total, unit: 'problems', finished: true });
    barShown = false;
  };
  try {
    const summary = await runEval({
      benchmark: bench,
      generator,
      samples,
      temperature,
      topP,
      maxNewTokens,
      seed,
      prompt: format.render,
      strategies,
      answerScope,
      scorer: code ? codeScorer({ answerScope }) : undefined,
      settings,
      out: o.out,
      fresh: o.fresh,
      signal: interrupt.signal,
      onResume: (n, repaired, dropped) =>
        logLine(
          `aha eval: resuming: ${n} of ${bench.examples.length} problems already in ${files!.generations}${repaired ? ' (a torn last line was removed)' : ''}${dropped ? ` (${dropped} rows of unfinished problems were dropped; they run again)` : ''}`,
        ),
      onProgress: (d, all, p1) => {
        // A resumed run's bar starts at the problems already done (its rate and ETA count only this run's).
        if (!barShown && d >= all) return;
        done = d;
        total = all;
        barShown = true;
        progress({ label, done: d, total: all, unit: 'problems', status: `pass@1 ${pct(p1)}` });
      },
    });
    stopBar();
    const table = formatEvalTable(summary);
    if (o.json) {
      logLine(table);
      printLine(JSON.stringify(evalJsonLine(summary)));
    } else {
      printLine(table);
    }
  } catch (e) {
    stopBar();
    const saved =
      files && done > 0
        ? ` (${done} of ${bench.examples.length} problems saved in ${files.generations}; rerun the same command to resume)`
        : '';
    if (interrupt.interrupted) {
      logLine(`aha eval: interrupted${saved}`);
      process.exit(INTERRUPTED_EXIT_CODE);
    }
    if (e instanceof AhaError && saved) throw new AhaError(`${e.message}${saved}`);
    throw e;
  } finally {
    interrupt.dispose();
  }
}

/** Registers `aha eval`. */
export function registerEval(program: Command): void {
  const names = Object.entries(BENCHMARKS)
    .map(([n, b]) => `${n} (k=${b.samples})`)
    .join(', ');
  program
    .command('eval')
    .description(
      "evaluate on a math or code benchmark with DeepSeek-R1's protocol: pass@1 over k samples, pass@k, cons@k (math)",
    )
    .requiredOption(
      '--benchmark <name|file>',
      `${Object.keys(BENCHMARKS).join('|')} or a .jsonl/.parquet file with problem/question and answer fields ` +
        '(or test cases: test + entry_point, tests, test_list, input_output; programs are judged in the sandbox)',
    )
    .option(
      '--model <dir>',
      'model directory for the local engine; with --openai-base-url: tokenizer/chat template to render prompts locally',
    )
    .option('--openai-base-url <url>', 'an OpenAI-compatible server (vLLM, SGLang, ...) instead of the local engine')
    .option(
      '--model-name <name>',
      'the served model name (with --openai-base-url; default: the one model the server lists at /v1/models)',
    )
    .option('--api-key-env <var>', 'environment variable holding the API key', 'OPENAI_API_KEY')
    .option(
      '--endpoint <kind>',
      'chat (server applies its chat template) or completions (prompt rendered here from --model); default chat, completions when --model is given',
    )
    .option('--samples <k>', `samples per problem (default per benchmark: ${names}; files 4)`)
    .option('--temperature <t>', 'sampling temperature (R1: 0.6; no greedy decoding)', '0.6')
    .option('--top-p <p>', 'nucleus sampling mass', '0.95')
    .option('--top-k <k>', 'keep the k most likely tokens (0: off)', '0')
    .option(
      '--max-new-tokens <n>',
      `tokens to generate per sample at most (default ${DEFAULT_EVAL_MAX_NEW_TOKENS}; R1's protocol: ${R1_MAX_NEW_TOKENS}; ` +
        "capped by the local model's max_position_embeddings)",
    )
    .option('--limit <n>', 'evaluate the first n problems only')
    .option(
      '--prompt-template <t>',
      'default (chat template + "Please reason step by step..."; code: EvalPlus\'s instruction), r1-zero, a string with {question} ' +
        "('{question}' lets a base model continue HumanEval's function header), or @file",
      'default',
    )
    .option(
      '--chat-template-kwargs <json>',
      'variables for the chat template, e.g. \'{"enable_thinking": false}\' (Qwen3); sent to a server as chat_template_kwargs',
    )
    .option('--think-prefix', 'start the output with "<think>\\n" (R1\'s advice; off by default)')
    .option('--answer-strategies <list>', `answer extraction rules in order (default ${DEFAULT_STRATEGIES.join(',')})`)
    .option(
      '--answer-scope <scope>',
      'after-think: search only after the last </think> when there is one; all: the whole output',
      'after-think',
    )
    .option('--seed <s>', 'run seed (each problem and sample gets its own seed from it)', '0')
    .option(
      '--out <dir|file.jsonl>',
      'save every generation (JSONL, appended per problem) and the summary; a rerun resumes',
    )
    .option('--fresh', 'discard earlier outputs in --out instead of resuming')
    .option('--json', 'print one JSON line with the results on stdout (the table goes to stderr)')
    .option('--concurrency <c>', 'requests in flight (OpenAI-compatible server)', '8')
    .option(
      '--batch <n>',
      'sequences per engine call (local engine; default: what 4 GiB of KV cache holds, at most 64)',
    )
    .option('--n-per-request', 'ask for all k samples in one request (the n field) instead of k requests')
    .option('--timeout <s>', 'seconds per request before it is retried', '1800')
    .option('--retries <n>', 'retries per request on 429, 5xx, timeouts and connection errors', '5')
    .option('--question-field <f>', 'question field of a benchmark file (default problem, question, prompt)')
    .option('--answer-field <f>', "answer field of a benchmark file (default answer, else solution's last \\boxed{})")
    .action(async (o: EvalCliOptions) => {
      await run(o);
    });
}
