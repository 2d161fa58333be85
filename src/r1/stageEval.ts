/**
 * How a stage's model is judged: R1's readable format, and pass@1, format rate, language consistency and length on
 * held-out problems. Shared by the pipeline (after every stage) and distillation (teacher, student before and after).
 */
import type { Generator } from '../eval/generators.ts';
import { promptOpensThink } from '../eval/promptTemplates.ts';
import { hasValidFormat } from '../rewards/format.ts';
import { languageConsistency, resolveLanguageTarget } from '../rewards/languageConsistency.ts';
import type { ReasoningProblem, Verifier } from './rejectionSampling.ts';
import { mapShared } from '../parallel/dataParallel.ts';

/**
 * R1's readable format: the completion opens `<think>` (or the prompt did), closes it exactly once, and a non-empty
 * summary follows. The format reward of the RL stages and the format rate of the evaluations. Stricter than TRL's
 * think-format check on one point: a second `</think>` fails, or a small policy learns to keep "summarising" in
 * loops after the first one and is still paid for its format.
 */
export function readableFormat(completion: string, prompt: string): boolean {
  if (!hasValidFormat(completion, { mode: 'think', requireAnswer: true, prefilledThink: promptOpensThink(prompt) }))
    return false;
  return completion.indexOf('</think>') === completion.lastIndexOf('</think>');
}

/** A stage's evaluation on held-out problems (R1's protocol in miniature: k samples at T=0.6, top-p 0.95). */
export interface StageEval {
  problems: number;
  /** Samples per problem. */
  samples: number;
  /** Mean correctness over every sample (= the mean over problems of each one's share correct). */
  pass_at_1: number;
  /** Share of samples in R1's format ({@link readableFormat}): `<think>` reasoning `</think>` then a summary. */
  format_rate: number;
  /** Mean language consistency of the chains of thought that have words; null when none has. */
  language_consistency: number | null;
  /** Samples whose chain of thought has at least one counted word. */
  samples_with_words: number;
  /** Mean completion length in tokens (samples whose length is known); null when none is. */
  mean_length: number | null;
  examples: { prompt: string; completion: string; correct: boolean }[];
}

/** Options of {@link evaluateReasoning}. */
export interface EvaluateReasoningOptions {
  generator: Generator;
  problems: readonly ReasoningProblem[];
  verify: Verifier;
  /** Target language of the consistency metric. */
  language: string;
  samples: number;
  temperature?: number;
  topP?: number;
  maxNewTokens: number;
  seed?: number;
  signal?: AbortSignal;
}

/** Samples k completions per held-out problem and scores pass@1, format, language consistency and length. */
export async function evaluateReasoning(o: EvaluateReasoningOptions): Promise<StageEval> {
  const target = resolveLanguageTarget(o.language);
  const out = await o.generator.generate(
    o.problems.map((p) => p.prompt),
    {
      n: o.samples,
      temperature: o.temperature ?? 0.6,
      topP: o.topP ?? 0.95,
      maxNewTokens: o.maxNewTokens,
      seed: o.seed ?? 0,
      ids: o.problems.map((p) => p.id),
      signal: o.signal,
    },
  );
  let correct = 0,
    formatted = 0,
    total = 0,
    lenSum = 0,
    lenN = 0,
    langSum = 0,
    langN = 0;
  const examples: StageEval['examples'] = [];
  // Verified first, each rank its share under mpirun.
  const verdicts = await mapShared(
    o.problems.flatMap((p, i) => out[i].map((g) => ({ p, g }))),
    ({ p, g }) => o.verify(g.text, p),
  );
  for (let i = 0; i < o.problems.length; i++) {
    const p = o.problems[i];
    for (const g of out[i]) {
      const ok = verdicts[total++];
      if (ok) correct++;
      if (readableFormat(g.text, p.prompt)) formatted++;
      const lc = languageConsistency(g.text, { target });
      if (lc.score !== null) {
        langSum += lc.score;
        langN++;
      }
      if (g.tokens !== null) {
        lenSum += g.tokens;
        lenN++;
      }
      if (examples.length < 3 && examples.every((e) => e.prompt !== p.prompt))
        examples.push({ prompt: p.prompt, completion: g.text, correct: ok });
    }
  }
  return {
    problems: o.problems.length,
    samples: o.samples,
    pass_at_1: total > 0 ? correct / total : 0,
    format_rate: total > 0 ? formatted / total : 0,
    language_consistency: langN > 0 ? langSum / langN : null,
    samples_with_words: langN,
    mean_length: lenN > 0 ? lenSum / lenN : null,
    examples,
  };
}

/** One line of the per-stage table: pass@1, format, language consistency, mean length. */
export function formatStageEval(name: string, e: StageEval): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lang =
    e.language_consistency === null
      ? 'n/a (no words)'
      : `${e.language_consistency.toFixed(3)} (${e.samples_with_words} with words)`;
  const len = e.mean_length === null ? 'n/a' : `${e.mean_length.toFixed(1)} tok`;
  return `${name.padEnd(18)} pass@1 ${pct(e.pass_at_1).padStart(6)}   format ${pct(e.format_rate).padStart(6)}   language ${lang}   mean length ${len}`;
}
