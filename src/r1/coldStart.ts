/**
 * Cold-start data, DeepSeek-R1's first stage: a few thousand long, readable chains of thought to fine-tune the base
 * model on before reasoning RL, so that RL starts from readable output instead of R1-Zero's. The paper built them
 * partly from R1-Zero outputs, kept when correct and readable and rewritten into the format
 * `|special_token|<reasoning_process>|special_token|<summary>`. Here that format is rendered in the model's own
 * tags: `<think>\n{reasoning}\n</think>\n{summary}`, the summary built from the verified answer
 * (default "The answer is {answer}.").
 *
 * The samples can come from anywhere (an R1-Zero checkpoint, the base model itself, a teacher): {@link
 * buildColdStartData} verifies, rewrites, filters (on the rewritten text), deduplicates and caps them, and writes
 * prompt/completion SFT lines with their provenance.
 */
import { AhaError } from '../errors.ts';
import type { Generation } from '../eval/generators.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { writeOnce } from '../parallel/dataParallel.ts';
import type { SampleFilter } from './filters.ts';
import {
  finalAnswer,
  selectSamples,
  sftRecordOf,
  SUMMARY_STRATEGIES,
  type ReasoningProblem,
  type SelectionCounts,
  type SftRecord,
  type TransformResult,
  type Verifier,
} from './rejectionSampling.ts';
import type { AnswerStrategy } from '../verify/extractAnswer.ts';

/** The default summary: R1's short conclusion after the reasoning. */
export const DEFAULT_SUMMARY_TEMPLATE = 'The answer is {answer}.';

/**
 * The reasoning of a completion: the text of its `<think>` block (or, when the prompt opened the block, everything
 * before `</think>`); without tags, the text before a final `<answer>` block, or the whole text. Stray tags are
 * removed, line ends trimmed, runs of blank lines collapsed. Empty when there is no reasoning.
 */
export function extractReasoning(completion: string): string {
  let body: string;
  const open = completion.indexOf('<think>');
  const close = completion.lastIndexOf('</think>');
  if (open >= 0 && close > open) body = completion.slice(open + '<think>'.length, close);
  else if (open < 0 && close >= 0) body = completion.slice(0, close);
  else if (open >= 0) body = completion.slice(open + '<think>'.length);
  else {
    const answer = completion.lastIndexOf('<answer>');
    body = answer >= 0 ? completion.slice(0, answer) : completion;
  }
  return body
    .replace(/<\/?(?:think|answer)>/g, '')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** The summary: `template` with {answer} (the verified answer) and {final_line} (the reasoning's last line). */
export function renderSummary(template: string, answer: string, reasoning: string): string {
  const lines = reasoning
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const finalLine = lines[lines.length - 1] ?? '';
  return template.split('{answer}').join(answer).split('{final_line}').join(finalLine).trim();
}

/**
 * The readable completion for `prompt`: `<think>\n{reasoning}\n</think>\n{summary}`. A prompt that already opened
 * the block (ends with `<think>`, as R1's chat template prefills) gets only the rest; a prompt ending with a colon
 * ("Assistant:", the R1-Zero template) gets a space first, as the R1-Zero format writes it.
 */
export function renderReadable(prompt: string, reasoning: string, summary: string): string {
  if (/<think>\s*$/.test(prompt)) return `${reasoning}\n</think>\n${summary}`;
  const lead = /:$/.test(prompt) ? ' ' : '';
  return `${lead}<think>\n${reasoning}\n</think>\n${summary}`;
}

/** Options of {@link rewriteReadable}. */
export interface RewriteOptions {
  /** With {answer} and {final_line}; default {@link DEFAULT_SUMMARY_TEMPLATE}. */
  summaryTemplate?: string;
  strategies?: readonly AnswerStrategy[];
}

/**
 * Rewrites one correct completion into the readable format, or says why it cannot be. The reasoning is kept as
 * written, except a last line that only restates the answer, which the summary replaces.
 */
export function rewriteReadable(
  completion: string,
  problem: Pick<ReasoningProblem, 'prompt'>,
  o: RewriteOptions = {},
): { completion: string } | { drop: string } {
  const answer = finalAnswer(completion, o.strategies ?? SUMMARY_STRATEGIES);
  if (answer === null) return { drop: 'no_answer' };
  let reasoning = extractReasoning(completion);
  if (reasoning === '') return { drop: 'no_reasoning' };
  // A last line that only states the answer ("so the answer is 16.") moves to the summary: said once, in one place.
  const lines = reasoning.split('\n');
  const last = lines[lines.length - 1];
  if (
    lines.length > 1 &&
    /answer/i.test(last) &&
    last.length <= answer.length + 40 &&
    finalAnswer(last, ['answerIs']) === answer
  ) {
    reasoning = lines.slice(0, -1).join('\n').trim();
  }
  return {
    completion: renderReadable(
      problem.prompt,
      reasoning,
      renderSummary(o.summaryTemplate ?? DEFAULT_SUMMARY_TEMPLATE, answer, reasoning),
    ),
  };
}

/** Options of {@link buildColdStartData}. */
export interface ColdStartOptions {
  problems: readonly ReasoningProblem[];
  /** Samples per problem id (R1-Zero outputs, a teacher's, the base model's own). */
  samples: ReadonlyMap<string, readonly Generation[]>;
  verify: Verifier;
  /** Applied to the rewritten completion. */
  filters: readonly SampleFilter[];
  maxPerPrompt: number;
  summaryTemplate?: string;
  strategies?: readonly AnswerStrategy[];
  /** Provenance written on every line: where the samples came from. */
  source: string;
  /** Write the SFT lines here (atomically) ... */
  out?: string;
  /** ... and the report here. */
  reportPath?: string;
}

/** What {@link buildColdStartData} made. */
export interface ColdStartResult {
  records: SftRecord[];
  /** Drops by the rewrite are counted in `dropped` too: 'no_answer', 'no_reasoning', 'rewrite_unverifiable'. */
  counts: SelectionCounts;
  perPrompt: Record<string, number>;
}

/**
 * Keeps the correct samples, rewrites them into the readable format, drops the unreadable ones (filters run on the
 * rewritten text), deduplicates, caps per prompt, and returns (and writes) prompt/completion SFT lines with
 * provenance. A rewrite the verifier no longer accepts (a summary template the answer rules cannot read) is dropped
 * and counted as 'rewrite_unverifiable'.
 */
export async function buildColdStartData(o: ColdStartOptions): Promise<ColdStartResult> {
  if ((o.summaryTemplate ?? DEFAULT_SUMMARY_TEMPLATE).indexOf('{answer}') < 0)
    throw new AhaError(`summary template '${o.summaryTemplate}' has no {answer}`);
  const rewrite = async (c: string, p: ReasoningProblem): Promise<TransformResult> => {
    const r = rewriteReadable(c, p, { summaryTemplate: o.summaryTemplate, strategies: o.strategies });
    if ('drop' in r) return r;
    return (await o.verify(r.completion, p)) ? r : { drop: 'rewrite_unverifiable' };
  };
  const sel = await selectSamples({
    problems: o.problems,
    samples: o.samples,
    verify: o.verify,
    filters: o.filters,
    maxPerPrompt: o.maxPerPrompt,
    transform: rewrite,
  });
  const records = sel.selected.map((s) => sftRecordOf(s, { source: o.source, format: 'cold_start' }));
  const counts = sel.counts;
  // Under mpirun rank 0 writes; every rank reads the files after (src/parallel/dataParallel.ts).
  writeOnce(() => {
    if (o.out) writeFileAtomic(o.out, records.map((r) => JSON.stringify(r) + '\n').join(''));
    if (o.reportPath)
      writeFileAtomic(
        o.reportPath,
        JSON.stringify(
          {
            source: o.source,
            created: new Date().toISOString(),
            summary_template: o.summaryTemplate ?? DEFAULT_SUMMARY_TEMPLATE,
            prompts: o.problems.length,
            prompt_ids: o.problems.map((p) => p.id),
            counts,
            per_prompt_kept: sel.perPrompt,
            filters: o.filters.map((f) => f.name),
          },
          null,
          2,
        ) + '\n',
      );
  });
  return { records, counts, perPrompt: sel.perPrompt };
}
