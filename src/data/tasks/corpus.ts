/**
 * The pre-training corpus of the demo's tiny base model: the stand-in for the web-scale text that gave
 * DeepSeek-V3-Base its latent reasoning. It mixes, for train-split questions only:
 *
 *  - prompt styles: the task's own R1-Zero prompt ("User: q. Assistant:"), "Q:/A:", "problem:/solution:", and bare
 *    equations, so the template is one familiar context among several;
 *  - modes: direct answers (right with a probability that falls with the number of steps, a near-miss otherwise,
 *    as a model answering in one shot would be), worked step-by-step solutions (a few with an uncorrected slip),
 *    solutions with a slip followed by a reflection ("wait, 21-9=12, not 13.") and the fix, and solutions that end
 *    with a self-check ("let me check: ...");
 *  - formats: only some samples use the R1-Zero tags (<think> ... </think> <answer> ... </answer>), so the base
 *    model follows the format only part of the time, and in the tags it sometimes just restates and answers.
 *
 * After the R1-Zero prompt the base model therefore chooses between tagged and untagged output and, inside the
 * tags, between answering at once and reasoning line by line; GRPO with accuracy + format rewards should move it
 * to tagged step-by-step reasoning. Each sample is one document: append `<|endoftext|>` after `text` when training.
 */
import { AhaError } from '../../errors.ts';
import { Rng } from '../rng.ts';
import { R1_SPECIAL_TOKENS, R1_ZERO_TEMPLATE, r1ZeroCompletion } from '../r1ZeroTemplate.ts';
import type { Example, PretrainableTask, SlipKind } from './task.ts';

/** How the question is introduced. 'template' is the task's own prompt, the one RL and evaluation use. */
export type PromptStyle = 'template' | 'qa' | 'problem' | 'equation';
/** How the question is answered. */
export type SolutionMode = 'direct' | 'worked' | 'reflect' | 'verify';
/** 'r1': <think> ... </think> <answer> ... </answer>; 'plain': no tags. */
export type OutputFormat = 'r1' | 'plain';

export const PROMPT_STYLES: readonly PromptStyle[] = ['template', 'qa', 'problem', 'equation'];
export const SOLUTION_MODES: readonly SolutionMode[] = ['direct', 'worked', 'reflect', 'verify'];

/** The proportions the corpus is drawn with. */
export interface CorpusMix {
  /** Relative weight of each prompt style. */
  styles: Record<PromptStyle, number>;
  /** Probability of the R1-Zero tags within each style ('equation' is always plain: the value is ignored). */
  format: Record<PromptStyle, number>;
  /** Relative weight of each solution mode. */
  modes: Record<SolutionMode, number>;
  /**
   * Mode weights for samples in the R1-Zero format, when they should differ from `modes` (null: same). The demo's
   * base uses it to make tagged answers mostly direct, so reasoning inside the tags is latent rather than habitual.
   */
  r1Modes: Record<SolutionMode, number> | null;
  /** Probability that a 'worked' solution carries a slip it does not notice (and so a wrong answer). */
  uncorrectedSlip: number;
  /**
   * Probability that a direct answer is right, indexed by the problem's step count (the last entry covers longer
   * problems): one-step problems can be answered at a glance, longer chains cannot.
   */
  directAccuracy: number[];
}

/** Partial overrides of the default mix, merged key by key. */
export interface CorpusMixInput {
  styles?: Partial<Record<PromptStyle, number>>;
  format?: Partial<Record<PromptStyle, number>>;
  modes?: Partial<Record<SolutionMode, number>>;
  r1Modes?: Partial<Record<SolutionMode, number>> | null;
  uncorrectedSlip?: number;
  directAccuracy?: number[];
}

/**
 * Defaults for the demo. Half the corpus uses the R1-Zero prompt and 45% of those samples use the tags, so the base
 * model is tagged about 45% of the time after the prompt; 40% of answers are direct, and for 3-4 step problems
 * those are right only 20-30% of the time.
 */
export const DEFAULT_CORPUS_MIX: CorpusMix = {
  styles: { template: 0.5, qa: 0.2, problem: 0.15, equation: 0.15 },
  format: { template: 0.45, qa: 0.1, problem: 0.1, equation: 0 },
  modes: { direct: 0.4, worked: 0.4, reflect: 0.1, verify: 0.1 },
  r1Modes: null,
  uncorrectedSlip: 0.05,
  directAccuracy: [1, 0.95, 0.5, 0.3, 0.2],
};

export interface CorpusOptions {
  seed: number;
  /** Number of samples (documents). The default mix averages about 70 characters per sample. */
  size: number;
  mix?: CorpusMixInput;
}

/** One corpus document and how it was made (the metadata is for tests and reports; only `text` is trained on). */
export interface CorpusSample {
  text: string;
  question: string;
  /** The gold answer. */
  gold: string;
  /** The final answer the text states. */
  stated: string;
  correct: boolean;
  style: PromptStyle;
  mode: SolutionMode;
  format: OutputFormat;
  slip: SlipKind;
  steps: number;
}

/**
 * Every character the demo's corpus and both R1-Zero templates contain, tags excluded, in code-point order:
 * the character tokenizer's base vocabulary (`corpusAlphabet(arithmeticTask())`, checked by a test). The tags and
 * `<|endoftext|>` are added tokens on top (R1_SPECIAL_TOKENS).
 */
export const DEMO_CHAR_ALPHABET = '\n *+,-.0123456789:=AQTUabcdefghijklmnopqrstuvwxyz';

/** Words and punctuation the corpus adds around a task's own text. */
const SCAFFOLD = 'Q: A: problem: solution: answer: the answer is so step by step let us think.\n';

/** The characters a corpus for `task` can contain (task text, scaffolding, both templates), tags excluded. */
export function corpusAlphabet(task: Pick<PretrainableTask, 'alphabet'>): string {
  const chars = new Set<string>();
  for (const s of [task.alphabet, SCAFFOLD, stripSpecialTokens(R1_ZERO_TEMPLATE), 'User: . Assistant:']) {
    for (const ch of s) chars.add(ch);
  }
  return [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join('');
}

/** `text` with every special token removed (for alphabet checks). */
export function stripSpecialTokens(text: string): string {
  let out = text;
  for (const t of R1_SPECIAL_TOKENS) out = out.split(t).join('');
  return out;
}

/** Length in tokens under a character tokenizer whose special tokens are single tokens. */
export function charTokenCount(text: string): number {
  let n = text.length;
  for (const t of R1_SPECIAL_TOKENS) n -= (text.split(t).length - 1) * (t.length - 1);
  return n;
}

/** The default mix with `input` merged in, validated. */
export function resolveMix(input: CorpusMixInput = {}): CorpusMix {
  const mix: CorpusMix = {
    styles: { ...DEFAULT_CORPUS_MIX.styles, ...input.styles },
    format: { ...DEFAULT_CORPUS_MIX.format, ...input.format },
    modes: { ...DEFAULT_CORPUS_MIX.modes, ...input.modes },
    r1Modes: input.r1Modes ? { direct: 0, worked: 0, reflect: 0, verify: 0, ...input.r1Modes } : null,
    uncorrectedSlip: input.uncorrectedSlip ?? DEFAULT_CORPUS_MIX.uncorrectedSlip,
    directAccuracy: input.directAccuracy ?? DEFAULT_CORPUS_MIX.directAccuracy,
  };
  const prob = (name: string, v: number) => {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new AhaError(`corpus mix: ${name} must be a probability in [0, 1], got ${v}`);
  };
  const weights = (name: string, w: Record<string, number>, keys: readonly string[]) => {
    for (const k of Object.keys(w)) if (!keys.includes(k)) throw new AhaError(`corpus mix: unknown ${name} "${k}"`);
    let sum = 0;
    for (const k of keys) {
      const v = w[k];
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new AhaError(`corpus mix: ${name}.${k} must be a non-negative number, got ${v}`);
      sum += v;
    }
    if (sum <= 0) throw new AhaError(`corpus mix: ${name} weights are all zero`);
  };
  weights('styles', mix.styles, PROMPT_STYLES);
  weights('modes', mix.modes, SOLUTION_MODES);
  if (mix.r1Modes) weights('r1Modes', mix.r1Modes, SOLUTION_MODES);
  for (const k of Object.keys(mix.format)) if (!PROMPT_STYLES.includes(k as PromptStyle)) throw new AhaError(`corpus mix: unknown format style "${k}"`);
  for (const k of PROMPT_STYLES) prob(`format.${k}`, mix.format[k]);
  prob('uncorrectedSlip', mix.uncorrectedSlip);
  if (!Array.isArray(mix.directAccuracy) || mix.directAccuracy.length === 0) throw new AhaError('corpus mix: directAccuracy must be a non-empty list');
  mix.directAccuracy.forEach((p, i) => prob(`directAccuracy[${i}]`, p));
  return mix;
}

/** Probability that a corpus direct answer to a `steps`-step problem is right under `mix`. */
export function directAccuracyFor(mix: CorpusMix, steps: number): number {
  const t = mix.directAccuracy;
  return t[Math.min(steps, t.length - 1)];
}

/**
 * Generate the pre-training corpus: `size` documents from train-split questions, deterministic in `seed`.
 * Write it with `corpusToJsonl`.
 */
export function buildPretrainCorpus<E extends Example>(task: PretrainableTask<E>, options: CorpusOptions): CorpusSample[] {
  const { seed, size } = options;
  if (!Number.isInteger(size) || size < 0) throw new AhaError(`corpus: size must be a non-negative integer, got ${size}`);
  const mix = resolveMix(options.mix);
  const root = new Rng(seed);
  // Separate streams, so changing the mix does not change which questions are drawn.
  const exRng = root.fork('examples');
  const mixRng = root.fork('mix');
  const textRng = root.fork('text');
  const styleW = PROMPT_STYLES.map((s) => mix.styles[s]);
  const modeW = SOLUTION_MODES.map((m) => mix.modes[m]);
  const r1ModeW = mix.r1Modes ? SOLUTION_MODES.map((m) => mix.r1Modes![m]) : modeW;

  const out: CorpusSample[] = [];
  for (const ex of task.pretrainExamples(exRng, size)) {
    const style = PROMPT_STYLES[mixRng.weighted(styleW)];
    const format: OutputFormat = style !== 'equation' && mixRng.chance(mix.format[style]) ? 'r1' : 'plain';
    const mode = SOLUTION_MODES[mixRng.weighted(format === 'r1' ? r1ModeW : modeW)];
    const steps = task.steps(ex);
    const directRight = mixRng.chance(directAccuracyFor(mix, steps));
    const slipUnnoticed = mixRng.chance(mix.uncorrectedSlip);

    let reasoning: string | null = null;
    let stated: string;
    let slip: SlipKind = 'none';
    if (mode === 'direct') {
      stated = directRight ? ex.answer : task.nearMiss(ex, textRng);
    } else {
      const sol = task.solve(ex, textRng, {
        slip: mode === 'reflect' ? 'corrected' : mode === 'worked' && slipUnnoticed ? 'uncorrected' : 'none',
        verify: mode === 'verify',
      });
      reasoning = sol.reasoning;
      stated = sol.answer;
      slip = sol.slip;
    }
    const text = renderSample(task, ex, style, format, reasoning, stated, textRng);
    out.push({
      text,
      question: ex.question,
      gold: ex.answer,
      stated,
      correct: task.check(stated, ex),
      style,
      mode,
      format,
      slip,
      steps,
    });
  }
  return out;
}

const PLAIN_WORKED_LEADS = [' step by step:\n', ' let us think step by step.\n', '\n'] as const;
const PLAIN_CLOSERS = ['so the answer is ', 'the answer is '] as const;

function renderSample<E extends Example>(
  task: PretrainableTask<E>, ex: E, style: PromptStyle, format: OutputFormat,
  reasoning: string | null, stated: string, rng: Rng,
): string {
  const q = ex.question;
  if (style === 'equation') return reasoning === null ? `${q}=${stated}` : reasoning;
  if (style === 'problem') {
    const head = `problem: ${q}\n`;
    if (format === 'r1') return `${head}solution:${r1ZeroCompletion(reasoning ?? task.restate(ex), stated)}`;
    return reasoning === null ? `${head}answer: ${stated}` : `${head}solution:\n${reasoning}\nanswer: ${stated}`;
  }
  const prompt = style === 'template' ? task.prompt(ex) : `Q: ${q}\nA:`;
  if (format === 'r1') return prompt + r1ZeroCompletion(reasoning ?? task.restate(ex), stated);
  if (reasoning === null) return prompt + (rng.chance(0.5) ? ` ${stated}` : ` the answer is ${stated}.`);
  return `${prompt}${rng.pick(PLAIN_WORKED_LEADS)}${reasoning}\n${rng.pick(PLAIN_CLOSERS)}${stated}.`;
}

/** JSON Lines, one `{"text": ...}` object per sample, as the SFT data loader reads it. */
export function corpusToJsonl(samples: readonly CorpusSample[]): string {
  return samples.map((s) => JSON.stringify({ text: s.text })).join('\n') + (samples.length ? '\n' : '');
}

/** Size and composition of a corpus, for logs and reports. */
export interface CorpusStats {
  samples: number;
  chars: number;
  /** Tokens under the character tokenizer (each special token counts one). */
  tokens: number;
  meanTokens: number;
  maxTokens: number;
  /** Characters used, tags excluded, in code-point order. */
  alphabet: string;
  byStyle: Record<PromptStyle, number>;
  byMode: Record<SolutionMode, number>;
  byFormat: Record<OutputFormat, number>;
  /** Fraction of 'template'-style samples in the R1-Zero format: the base model's expected format rate. */
  templateFormatRate: number;
  /** Fraction of samples whose stated answer is right, per mode. */
  accuracyByMode: Record<SolutionMode, number>;
}

/** Count what a corpus is made of. */
export function corpusStats(samples: readonly CorpusSample[]): CorpusStats {
  const byStyle = Object.fromEntries(PROMPT_STYLES.map((s) => [s, 0])) as Record<PromptStyle, number>;
  const byMode = Object.fromEntries(SOLUTION_MODES.map((m) => [m, 0])) as Record<SolutionMode, number>;
  const rightByMode = Object.fromEntries(SOLUTION_MODES.map((m) => [m, 0])) as Record<SolutionMode, number>;
  const byFormat: Record<OutputFormat, number> = { r1: 0, plain: 0 };
  const chars = new Set<string>();
  let nChars = 0, tokens = 0, maxTokens = 0, templR1 = 0;
  for (const s of samples) {
    byStyle[s.style]++;
    byMode[s.mode]++;
    byFormat[s.format]++;
    if (s.correct) rightByMode[s.mode]++;
    if (s.style === 'template' && s.format === 'r1') templR1++;
    nChars += s.text.length;
    const t = charTokenCount(s.text);
    tokens += t;
    if (t > maxTokens) maxTokens = t;
    for (const ch of stripSpecialTokens(s.text)) chars.add(ch);
  }
  const accuracyByMode = Object.fromEntries(
    SOLUTION_MODES.map((m) => [m, byMode[m] ? rightByMode[m] / byMode[m] : 0]),
  ) as Record<SolutionMode, number>;
  return {
    samples: samples.length,
    chars: nChars,
    tokens,
    meanTokens: samples.length ? tokens / samples.length : 0,
    maxTokens,
    alphabet: [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join(''),
    byStyle,
    byMode,
    byFormat,
    templateFormatRate: byStyle.template ? templR1 / byStyle.template : 0,
    accuracyByMode,
  };
}
