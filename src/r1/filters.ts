/**
 * Readability filters of DeepSeek-R1's data stages: the cold-start data and the rejection-sampled SFT data drop
 * "chains of thought with mixed languages, long paragraphs, and code blocks", and anything unreadable besides
 * (degenerate repetition, no summary, too short or too long, a chain of thought too short to be one). Each filter looks at one sample and says whether
 * to keep it and, when not, why: `{keep, reason}`. Every filter has a stable `name`, the key the data reports
 * count drops under. With `judge_unreadable`, an LLM judge decides the samples whose answer the verifier cannot read
 * (R1's generative reward model for data no rule can check): {@link verifierWithJudge}.
 */
import { z } from 'zod';
import { AhaError } from '../errors.ts';
import { extractAnswer, DEFAULT_STRATEGIES, type AnswerStrategy } from '../verify/extractAnswer.ts';
import { chainOfThought, languageConsistency, resolveLanguageTarget } from '../rewards/languageConsistency.ts';
import { llmJudgeFromConfig, llmJudgeOptionsSchema, type LlmJudge } from '../rewards/llmJudge.ts';

/** What a filter sees of a sample. */
export interface FilterInput {
  /** The completion (reasoning and summary), as the model wrote it or as rewritten. */
  completion: string;
  /** Its length in tokens when known (the generator's count); length filters fall back to counting it themselves. */
  tokens?: number | null;
}

/** A filter's decision: keep, or drop with a one-line reason. */
export interface FilterVerdict {
  keep: boolean;
  reason: string | null;
}

/** One readability filter. */
export interface SampleFilter {
  /** Key of the drop counts ('mixed_language', 'long_paragraph', ...). */
  readonly name: string;
  test(sample: FilterInput): FilterVerdict;
}

const KEEP: FilterVerdict = { keep: true, reason: null };
const drop = (reason: string): FilterVerdict => ({ keep: false, reason });

/** Text with R1's tags removed (they are not prose). */
function untagged(text: string): string {
  return text.replace(/<\/?(?:think|answer)>/g, '\n');
}

/**
 * Mixed language: the chain of thought's language consistency (src/rewards/languageConsistency.ts) is below
 * `threshold`. A chain with no counted word (math only) is kept.
 */
export function mixedLanguageFilter(o: { target?: string; threshold?: number } = {}): SampleFilter {
  const target = resolveLanguageTarget(o.target ?? 'en');
  const threshold = o.threshold ?? 0.95;
  if (!(threshold >= 0 && threshold <= 1))
    throw new AhaError(`mixed-language filter: threshold must be in [0, 1], got ${threshold}`);
  return {
    name: 'mixed_language',
    test: ({ completion }) => {
      const c = languageConsistency(completion, { target });
      if (c.score === null || c.score >= threshold) return KEEP;
      return drop(
        `mixed language: ${c.inTarget} of ${c.words} words in ${target.name} (${c.score.toFixed(2)} < ${threshold})`,
      );
    },
  };
}

/** Long paragraphs: some paragraph (text between blank lines) is longer than `maxChars` characters. */
export function longParagraphFilter(o: { maxChars?: number } = {}): SampleFilter {
  const maxChars = o.maxChars ?? 2000;
  if (!(Number.isInteger(maxChars) && maxChars >= 1))
    throw new AhaError(`long-paragraph filter: maxChars must be a positive integer, got ${maxChars}`);
  return {
    name: 'long_paragraph',
    test: ({ completion }) => {
      const paragraphs = untagged(completion).split(/\n[ \t]*\n/);
      let longest = 0;
      for (const p of paragraphs) longest = Math.max(longest, p.trim().length);
      return longest > maxChars ? drop(`a paragraph of ${longest} characters (over ${maxChars})`) : KEEP;
    },
  };
}

/** Code blocks: a Markdown code fence (``` or ~~~ at the start of a line). */
export function codeBlockFilter(): SampleFilter {
  const fence = /(^|\n)[ \t]*(```|~~~)/;
  return {
    name: 'code_block',
    test: ({ completion }) => (fence.test(completion) ? drop('contains a code block (``` fence)') : KEEP),
  };
}

/** Options of {@link lengthFilter}: any bound may be left out. */
export interface LengthBounds {
  minTokens?: number;
  maxTokens?: number;
  minChars?: number;
  maxChars?: number;
  /** Counts tokens when the sample does not carry its count (e.g. a tokenizer's encode(...).length). */
  countTokens?: (text: string) => number;
}

/** Length bounds in tokens and/or characters, both ends inclusive. */
export function lengthFilter(o: LengthBounds): SampleFilter {
  for (const k of ['minTokens', 'maxTokens', 'minChars', 'maxChars'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0))
      throw new AhaError(`length filter: ${k} must be a non-negative integer, got ${v}`);
  }
  const needTokens = o.minTokens !== undefined || o.maxTokens !== undefined;
  return {
    name: 'length',
    test: ({ completion, tokens }) => {
      const chars = [...completion].length;
      if (o.minChars !== undefined && chars < o.minChars) return drop(`${chars} characters (under ${o.minChars})`);
      if (o.maxChars !== undefined && chars > o.maxChars) return drop(`${chars} characters (over ${o.maxChars})`);
      if (needTokens) {
        let n = tokens ?? null;
        if (n === null) {
          if (!o.countTokens)
            throw new AhaError('length filter: the sample has no token count and no tokenizer was given to count it');
          n = o.countTokens(completion);
        }
        if (o.minTokens !== undefined && n < o.minTokens) return drop(`${n} tokens (under ${o.minTokens})`);
        if (o.maxTokens !== undefined && n > o.maxTokens) return drop(`${n} tokens (over ${o.maxTokens})`);
      }
      return KEEP;
    },
  };
}

/** Options of {@link repetitionFilter}. */
export interface RepetitionOptions {
  /** A line (trimmed, at least `minLineChars` long) seen this many times or more is a loop. Default 4. */
  maxLineRepeats?: number;
  minLineChars?: number;
  /** Word n-grams of this size ... Default 8. */
  ngram?: number;
  /** ... occurring this many times or more are a loop. Default 4. */
  maxNgramRepeats?: number;
  /** A unit of 1-64 characters (with a letter or digit) repeated back to back, at least 3 times and over at least
   * this many characters. Default 48. */
  minLoopChars?: number;
}

/**
 * Repetition: the degenerate loops small models fall into. Three tests, any of which drops: the same line many
 * times, the same word n-gram many times, or a short unit repeated back to back ("=12=12=12=12...").
 */
export function repetitionFilter(o: RepetitionOptions = {}): SampleFilter {
  const maxLine = o.maxLineRepeats ?? 4;
  const minLineChars = o.minLineChars ?? 8;
  const n = o.ngram ?? 8;
  const maxNgram = o.maxNgramRepeats ?? 4;
  const minLoop = o.minLoopChars ?? 48;
  for (const [k, v] of Object.entries({
    maxLineRepeats: maxLine,
    ngram: n,
    maxNgramRepeats: maxNgram,
    minLoopChars: minLoop,
  })) {
    if (!(Number.isInteger(v) && v >= 2))
      throw new AhaError(`repetition filter: ${k} must be an integer >= 2, got ${v}`);
  }
  return {
    name: 'repetition',
    test: ({ completion }) => {
      const text = untagged(completion);
      const lines = new Map<string, number>();
      for (const raw of text.split('\n')) {
        const line = raw.trim().replace(/\s+/g, ' ');
        if (line.length < minLineChars) continue;
        const c = (lines.get(line) ?? 0) + 1;
        lines.set(line, c);
        if (c >= maxLine) return drop(`the line "${line.slice(0, 40)}" repeats ${c} times`);
      }
      const words = text.split(/\s+/).filter(Boolean);
      const grams = new Map<string, number>();
      for (let i = 0; i + n <= words.length; i++) {
        const g = words.slice(i, i + n).join(' ');
        const c = (grams.get(g) ?? 0) + 1;
        grams.set(g, c);
        if (c >= maxNgram) return drop(`the ${n}-word sequence "${g.slice(0, 40)}" repeats ${c} times`);
      }
      const loop = backToBackLoop(text, minLoop);
      if (loop) return drop(`"${loop.unit.slice(0, 20)}" repeated ${loop.times} times in a row`);
      return KEEP;
    },
  };
}

/** A unit of 1..64 characters (with a letter or digit) repeated back to back, 3+ times over >= minChars characters. */
function backToBackLoop(text: string, minChars: number): { unit: string; times: number } | null {
  // For each period p, scan once for runs where text[i] === text[i + p]; a run of length L covers L + p chars.
  for (let p = 1; p <= 64; p++) {
    let run = 0;
    for (let i = 0; i + p < text.length; i++) {
      if (text[i] === text[i + p]) {
        run++;
        // At least three copies of the unit, over at least minChars characters.
        if (run >= 2 * p && run + p >= minChars) {
          const start = i - run + 1;
          const unit = text.slice(start, start + p);
          if (/[\p{L}\p{N}]/u.test(unit) && !/^\s*$/.test(unit)) return { unit, times: Math.floor((run + p) / p) };
        }
      } else run = 0;
    }
  }
  return null;
}

/**
 * Short reasoning: R1's cold-start and SFT data are long chains of thought; a chain with fewer than `minLines`
 * non-empty lines (e.g. a restated question and a guess) is dropped, even when its answer happens to be right.
 */
export function shortReasoningFilter(o: { minLines: number }): SampleFilter {
  if (!(Number.isInteger(o.minLines) && o.minLines >= 1))
    throw new AhaError(`short-reasoning filter: minLines must be a positive integer, got ${o.minLines}`);
  return {
    name: 'short_reasoning',
    test: ({ completion }) => {
      const lines = chainOfThought(completion)
        .split('\n')
        .filter((l) => l.trim() !== '').length;
      return lines < o.minLines
        ? drop(`a chain of thought of ${lines} line${lines === 1 ? '' : 's'} (under ${o.minLines})`)
        : KEEP;
    },
  };
}

/**
 * Missing summary: R1's readable format ends its reasoning with `</think>` and then summarises for the reader. Drops
 * a completion with no `</think>`, with nothing after it, or (with `requireAnswer`, default true) whose summary
 * holds no answer that `strategies` can extract.
 */
export function missingSummaryFilter(
  o: { requireAnswer?: boolean; strategies?: readonly AnswerStrategy[] } = {},
): SampleFilter {
  const requireAnswer = o.requireAnswer ?? true;
  const strategies = o.strategies ?? DEFAULT_STRATEGIES;
  return {
    name: 'missing_summary',
    test: ({ completion }) => {
      const close = completion.lastIndexOf('</think>');
      if (close < 0) return drop('no </think>: the reasoning never ends');
      const summary = completion.slice(close + '</think>'.length);
      if (summary.replace(/<\/?answer>/g, '').trim() === '') return drop('nothing after </think>');
      if (requireAnswer && extractAnswer(summary, { strategies }).answer === null)
        return drop('the summary states no answer');
      return KEEP;
    },
  };
}

/** The outcome of a list of filters: the first that drops (filters run in order), or keep. */
export interface FilterOutcome extends FilterVerdict {
  /** Name of the filter that dropped the sample. */
  filter: string | null;
}

/** Runs filters in order; the first that drops decides (so drops are counted once, under that filter). */
export function applyFilters(filters: readonly SampleFilter[], sample: FilterInput): FilterOutcome {
  for (const f of filters) {
    const v = f.test(sample);
    if (!v.keep) return { keep: false, reason: v.reason, filter: f.name };
  }
  return { keep: true, reason: null, filter: null };
}

/** The filters of a recipe (`filters:` in an r1 recipe, or aha distill's options); false/null turns one off. */
export const filtersConfigSchema = z
  .object({
    /** Drop chains of thought whose language consistency is below this (0 turns the filter off). */
    language_threshold: z.number().min(0).max(1).default(0.95),
    /** Drop samples with a paragraph longer than this many characters; null: no limit. */
    max_paragraph_chars: z.number().int().positive().nullable().default(2000),
    /** Drop samples with Markdown code blocks. */
    drop_code_blocks: z.boolean().default(true),
    min_tokens: z.number().int().min(0).nullable().default(null),
    max_tokens: z.number().int().positive().nullable().default(null),
    min_chars: z.number().int().min(0).nullable().default(null),
    max_chars: z.number().int().positive().nullable().default(null),
    /** Drop chains of thought with fewer non-empty lines than this; null: no minimum. */
    min_reasoning_lines: z.number().int().positive().nullable().default(null),
    /** Drop degenerate loops (repetitionFilter with its defaults). */
    drop_repetition: z.boolean().default(true),
    /** Drop samples with no summary after </think> (and no answer in it, unless judge_unreadable may judge it). */
    require_summary: z.boolean().default(true),
    /**
     * An LLM judge (the `judge` reward's options, src/rewards/llmJudge.ts, plus `min_score`) that decides the
     * samples whose final answer the verifier cannot read: kept as correct when its score is at least min_score.
     */
    judge_unreadable: llmJudgeOptionsSchema
      .extend({ min_score: z.number().min(0).max(1).default(0.5) })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

export type FiltersConfig = z.output<typeof filtersConfigSchema>;
export type FiltersConfigInput = z.input<typeof filtersConfigSchema>;

/** The filter list a config describes, in R1's order: language, paragraphs, code, then the rest. */
export function buildFilters(
  config: FiltersConfigInput = {},
  ctx: { language?: string; countTokens?: (text: string) => number; answerStrategies?: readonly AnswerStrategy[] } = {},
): SampleFilter[] {
  const c = filtersConfigSchema.parse(config);
  const out: SampleFilter[] = [];
  if (c.language_threshold > 0)
    out.push(mixedLanguageFilter({ target: ctx.language ?? 'en', threshold: c.language_threshold }));
  if (c.max_paragraph_chars !== null) out.push(longParagraphFilter({ maxChars: c.max_paragraph_chars }));
  if (c.drop_code_blocks) out.push(codeBlockFilter());
  const bounds = { minTokens: c.min_tokens, maxTokens: c.max_tokens, minChars: c.min_chars, maxChars: c.max_chars };
  if (Object.values(bounds).some((v) => v !== null)) {
    out.push(
      lengthFilter({
        minTokens: bounds.minTokens ?? undefined,
        maxTokens: bounds.maxTokens ?? undefined,
        minChars: bounds.minChars ?? undefined,
        maxChars: bounds.maxChars ?? undefined,
        countTokens: ctx.countTokens,
      }),
    );
  }
  if (c.min_reasoning_lines !== null) out.push(shortReasoningFilter({ minLines: c.min_reasoning_lines }));
  if (c.drop_repetition) out.push(repetitionFilter());
  // A summary the judge accepted need not hold an answer the rules can read.
  if (c.require_summary)
    out.push(missingSummaryFilter({ strategies: ctx.answerStrategies, requireAnswer: c.judge_unreadable === null }));
  return out;
}

/** What {@link verifierWithJudge} needs of a problem. */
export interface JudgedProblem {
  question: string;
  answer: string;
}

/** A verifier whose unreadable answers an LLM judge decides, with the judge and what it decided. */
export interface JudgedVerifier<P extends JudgedProblem> {
  verify: (completion: string, problem: P) => Promise<boolean>;
  /** Null when the config has no judge_unreadable. */
  judge: LlmJudge | null;
  /** Samples the judge was asked about, accepted, and failed on (no readable reply: the sample counts as incorrect). */
  counts: { judged: number; accepted: number; failed: number };
}

/**
 * `verify`, except that a completion whose answer it cannot read (`readable` false, e.g. no final answer the answer
 * rules find) goes to the config's `judge_unreadable` judge with the problem's question and reference, and counts as
 * correct when the judge's score is at least `min_score`. A judge failure (server down, unreadable reply) counts as
 * incorrect and is logged. Without judge_unreadable, `verify` as it is.
 */
export function verifierWithJudge<P extends JudgedProblem>(
  verify: (completion: string, problem: P) => boolean | Promise<boolean>,
  config: FiltersConfigInput,
  o: { readable: (completion: string) => boolean; baseDir?: string; source?: string; log?: (line: string) => void },
): JudgedVerifier<P> {
  const c = filtersConfigSchema.parse(config).judge_unreadable;
  const counts = { judged: 0, accepted: 0, failed: 0 };
  if (c === null) return { verify: async (completion, p) => verify(completion, p), judge: null, counts };
  const judge = llmJudgeFromConfig(c, `${o.source ?? 'filters'}.judge_unreadable`, { baseDir: o.baseDir });
  return {
    judge,
    counts,
    verify: async (completion, p) => {
      if (o.readable(completion)) return verify(completion, p);
      counts.judged++;
      try {
        const r = await judge.judge(completion, { question: p.question, reference: p.answer });
        if (r.score >= c.min_score) counts.accepted++;
        return r.score >= c.min_score;
      } catch (e) {
        counts.failed++;
        o.log?.(`judge_unreadable: ${e instanceof Error ? e.message : String(e)} (counted as incorrect)`);
        return false;
      }
    },
  };
}
