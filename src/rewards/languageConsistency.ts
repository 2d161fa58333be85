/**
 * DeepSeek-R1's language-consistency reward: the share of the chain of thought's words that are in the target
 * language, Num(words in the target language) / Num(words), added to the reward in the reasoning RL stage so that
 * the chain of thought stops switching languages.
 *
 * Language is judged by writing system, not by a language-identification model: no well-kept language-ID library
 * is installed, and for the failure R1 targets (English reasoning drifting into Chinese, and back) the script
 * decides it. Each word is assigned the Unicode script (`\p{Script=...}`) of most of its letters. The limits of
 * that choice: languages that share a script are not told apart (English and French are both Latin), and a
 * romanised word of another language counts as Latin.
 *
 * What counts as a word:
 * - a run of letters (and combining marks, with inner apostrophes) in a script that separates words with spaces;
 * - each single character of Han, Hiragana and Katakana, which are written without spaces (so "我们计算" is 4);
 * - numbers, punctuation, operators, and math are neutral: not counted at all. A letter run touching a digit or a
 *   math symbol (`2x`, `x^2`, `y=` ... `\frac`) is math, as are a run right before `(` (`f(x)`), a single letter
 *   next to a bracket or comma (`(x, y)`), and anything inside `$...$`, `\(...\)` or `\[...\]`. A lone
 *   variable in prose ("let x be") still counts as a Latin word.
 * A text with no word at all (empty, or math only) has no score (null); the reward gives it `noWordsScore`
 * (default 1: nothing in it breaks consistency, and the arithmetic chains of the demo are math only).
 */
import { parseConfig } from '../config/configError.ts';
import { z } from 'zod';
import { AhaError } from '../errors.ts';
import type { Example, RewardFn } from './types.ts';

/** Scripts words are tallied under (in `byScript`); a word in any other script is tallied as 'Other'. */
export const KNOWN_SCRIPTS = [
  'Latin',
  'Han',
  'Hiragana',
  'Katakana',
  'Hangul',
  'Cyrillic',
  'Greek',
  'Arabic',
  'Hebrew',
  'Devanagari',
  'Bengali',
  'Tamil',
  'Telugu',
  'Thai',
  'Armenian',
  'Georgian',
  'Ethiopic',
] as const;

/** Language codes and group names accepted as targets, with the scripts each stands for. */
export const LANGUAGE_TARGETS: Readonly<Record<string, readonly string[]>> = {
  en: ['Latin'],
  fr: ['Latin'],
  de: ['Latin'],
  es: ['Latin'],
  it: ['Latin'],
  pt: ['Latin'],
  nl: ['Latin'],
  vi: ['Latin'],
  latin: ['Latin'],
  zh: ['Han'],
  ja: ['Han', 'Hiragana', 'Katakana'],
  ko: ['Hangul', 'Han'],
  cjk: ['Han', 'Hiragana', 'Katakana', 'Hangul'],
  ru: ['Cyrillic'],
  uk: ['Cyrillic'],
  cyrillic: ['Cyrillic'],
  ar: ['Arabic'],
  fa: ['Arabic'],
  he: ['Hebrew'],
  el: ['Greek'],
  hi: ['Devanagari'],
  th: ['Thai'],
};

/** A target language resolved to the Unicode scripts whose words count as "in the language". */
export interface LanguageTarget {
  /** As given ("en", "zh", "Cyrillic", ...). */
  name: string;
  scripts: readonly string[];
  /** Matches one letter of any of the scripts. */
  letter: RegExp;
}

function scriptRegex(script: string): RegExp | null {
  try {
    return new RegExp(`\\p{Script=${script}}`, 'u');
  } catch {
    return null;
  }
}

/**
 * Resolves a target: a language code or group from {@link LANGUAGE_TARGETS} ('en', 'latin', 'zh', 'cjk', ...), or
 * any Unicode script name or alias ('Cyrillic', 'Arabic', 'Latn', 'greek'), or several joined with '+'
 * ('Latin+Greek'). An unknown name is an AhaError naming it.
 */
export function resolveLanguageTarget(target: string): LanguageTarget {
  if (typeof target !== 'string' || target.trim() === '') throw new AhaError('language target: empty');
  const scripts: string[] = [];
  for (const raw of target.split('+').map((s) => s.trim())) {
    const group = LANGUAGE_TARGETS[raw.toLowerCase()];
    if (group) {
      scripts.push(...group);
      continue;
    }
    const candidates = [raw, raw.charAt(0).toUpperCase() + raw.slice(1).toLowerCase()];
    const ok = candidates.find((c) => /^[A-Za-z_]+$/.test(c) && scriptRegex(c) !== null);
    if (!ok) {
      throw new AhaError(
        `language target '${raw}': neither a language (${Object.keys(LANGUAGE_TARGETS).join(', ')}) nor a Unicode script name (Latin, Cyrillic, Han, ...)`,
      );
    }
    scripts.push(ok);
  }
  const unique = [...new Set(scripts)];
  return { name: target, scripts: unique, letter: new RegExp(unique.map((s) => `\\p{Script=${s}}`).join('|'), 'u') };
}

const KNOWN_SCRIPT_RES: readonly [string, RegExp][] = KNOWN_SCRIPTS.map((s) => [s, scriptRegex(s)!]);

/** The script of one letter, among {@link KNOWN_SCRIPTS}, else 'Other'. */
export function scriptOf(ch: string): string {
  for (const [name, re] of KNOWN_SCRIPT_RES) if (re.test(ch)) return name;
  return 'Other';
}

/**
 * The chain of thought of a completion: the text of every `<think>...</think>` block; an unclosed `<think>` runs to
 * the end; a `</think>` with no `<think>` before it (the prompt opened the block) closes a block that starts at the
 * beginning. With no tag at all, the whole text.
 */
export function chainOfThought(text: string): string {
  const open = text.indexOf('<think>');
  const close = text.indexOf('</think>');
  if (open < 0 && close < 0) return text;
  const parts: string[] = [];
  let i = 0;
  if (close >= 0 && (open < 0 || close < open)) {
    parts.push(text.slice(0, close));
    i = close + '</think>'.length;
  }
  for (;;) {
    const o = text.indexOf('<think>', i);
    if (o < 0) break;
    const c = text.indexOf('</think>', o);
    parts.push(text.slice(o + '<think>'.length, c < 0 ? text.length : c));
    if (c < 0) break;
    i = c + '</think>'.length;
  }
  return parts.join('\n');
}

const MATH_SPANS = /\$\$[\s\S]*?\$\$|\$[^$\n]*\$|\\\([\s\S]*?\\\)|\\\[[\s\S]*?\\\]/g;
const TAGS = /<\/?[A-Za-z][A-Za-z0-9_-]*>|<\|[^|>]*\|>/g;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const WORDS = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*/gu;
/** Characters that make an adjacent letter run math rather than prose. */
const MATHY = /[0-9=+*/^_<>{}|\\]/;
const BRACKETS = /[()[\],]/;

/** One counted word and the script of most of its letters. */
export interface ScriptWord {
  word: string;
  script: string;
  inTarget: boolean;
}

/** The words of a text that count (see the file comment), with their scripts. */
export function scriptWords(text: string, target: LanguageTarget): ScriptWord[] {
  const clean = text.replace(TAGS, ' ').replace(MATH_SPANS, ' ');
  const out: ScriptWord[] = [];
  for (const m of clean.matchAll(WORDS)) {
    const w = m[0];
    const at = m.index!;
    if (!UNSPACED.test(w)) {
      const before = clean[at - 1] ?? '';
      const after = clean[at + w.length] ?? '';
      if (MATHY.test(before) || MATHY.test(after)) continue;
      // f(x), (x, y): a function name or a lone variable in brackets.
      if (after === '(' || ([...w].length === 1 && (BRACKETS.test(before) || BRACKETS.test(after)))) continue;
    }
    const counts = new Map<string, number>();
    let inTarget = 0,
      letters = 0;
    for (const ch of w) {
      if (/\p{M}/u.test(ch)) continue;
      letters++;
      const s = scriptOf(ch);
      counts.set(s, (counts.get(s) ?? 0) + 1);
      if (target.letter.test(ch)) inTarget++;
    }
    if (letters === 0) continue;
    let script = 'Other',
      best = 0;
    for (const [s, n] of counts) if (n > best) [script, best] = [s, n];
    out.push({ word: w, script, inTarget: 2 * inTarget > letters });
  }
  return out;
}

/** The language consistency of a text. */
export interface LanguageConsistency {
  /** Words in the target language / words counted; null when no word counts (empty or math only). */
  score: number | null;
  words: number;
  inTarget: number;
  /** Words per script ('Other' for scripts outside KNOWN_SCRIPTS). */
  byScript: Record<string, number>;
}

/** Options of {@link languageConsistency}. */
export interface LanguageConsistencyOptions {
  /** Target language or script (see {@link resolveLanguageTarget}); default 'en'. */
  target?: string | LanguageTarget;
  /** Score the chain of thought only (default), or the whole text. */
  scope?: 'cot' | 'all';
}

/** Share of the chain of thought's words in the target language (R1's Num(target words) / Num(words)). */
export function languageConsistency(text: string, opts: LanguageConsistencyOptions = {}): LanguageConsistency {
  const target = typeof opts.target === 'object' ? opts.target : resolveLanguageTarget(opts.target ?? 'en');
  const scope = (opts.scope ?? 'cot') === 'cot' ? chainOfThought(text) : text;
  const words = scriptWords(scope, target);
  const byScript: Record<string, number> = {};
  let inTarget = 0;
  for (const w of words) {
    byScript[w.script] = (byScript[w.script] ?? 0) + 1;
    if (w.inTarget) inTarget++;
  }
  return { score: words.length === 0 ? null : inTarget / words.length, words: words.length, inTarget, byScript };
}

/** Options of {@link languageConsistencyReward}. */
export interface LanguageRewardOptions extends LanguageConsistencyOptions {
  /** Reward of a text with no counted word (default 1). */
  noWordsScore?: number;
}

/** The language-consistency reward: {@link languageConsistency}'s score, in [0, 1]. */
export function languageConsistencyReward<E = Example>(opts: LanguageRewardOptions = {}): RewardFn<E> {
  const target = typeof opts.target === 'object' ? opts.target : resolveLanguageTarget(opts.target ?? 'en');
  const empty = opts.noWordsScore ?? 1;
  return (completion) => languageConsistency(completion, { target, scope: opts.scope }).score ?? empty;
}

/** The options of the reward as a recipe writes them (`rewards: [{ name: language, options: {...} }]`). */
export const languageRewardOptionsSchema = z
  .object({
    target: z.string().min(1).default('en'),
    scope: z.enum(['cot', 'all']).default('cot'),
    no_words_score: z.number().min(0).max(1).default(1),
  })
  .strict();

/**
 * Builds the reward from a recipe's options object (validated: an unknown option or target is an AhaError naming
 * it, prefixed by `where`).
 */
export function languageRewardFromOptions<E = Example>(raw: unknown, where = 'language reward'): RewardFn<E> {
  const options = parseConfig(languageRewardOptionsSchema, raw ?? {}, where, {
    prefix: ['options'],
    noun: 'option',
    sourceIsPath: true,
  });
  let target: LanguageTarget;
  try {
    target = resolveLanguageTarget(options.target);
  } catch (e) {
    throw new AhaError(`${where}.options.target: ${(e as Error).message}`);
  }
  return languageConsistencyReward<E>({ target, scope: options.scope, noWordsScore: options.no_words_score });
}
