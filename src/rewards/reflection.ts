import { AhaError } from '../errors.ts';

/** The reflective words whose frequency the R1 paper tracked over training ("wait" spiking marks the aha moment). */
export const REFLECTIVE_WORDS: readonly string[] = [
  'wait',
  'verify',
  'check',
  'mistake',
  'however',
  'but',
  'retry',
  'error',
  'wrong',
  'evaluate',
];

/** Frequency of one word over a set of texts. */
export interface WordFrequency {
  word: string;
  /** Occurrences over all texts. */
  count: number;
  /** Occurrences per 1,000 words of text (0 when there are no words). */
  per1000Words: number;
  /** Share of texts containing the word at least once. */
  completionShare: number;
}

/** Result of {@link reflectiveWordFrequency}. */
export interface ReflectionStats {
  numTexts: number;
  totalWords: number;
  words: WordFrequency[];
  /** Share of texts containing at least one of the words. */
  anyShare: number;
}

// A word: letters/digits, with inner apostrophes ("don't" is one word).
const WORD = /[\p{L}\p{N}]+(?:['\u2019][\p{L}\p{N}]+)*/gu;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Counts reflective words in completions: case-insensitive, whole words only ("wait" counts in "Wait," and
 * "<think>wait" but not in "waiting"; "but" not in "button"). A word is a run of Unicode letters or digits, which
 * is also how the per-1000 denominator is counted.
 */
export function reflectiveWordFrequency(
  texts: readonly string[],
  words: readonly string[] = REFLECTIVE_WORDS,
): ReflectionStats {
  const patterns = words.map((w) => {
    if (w.trim() === '') throw new AhaError('reflective words: empty word in the list');
    return new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(w)}(?![\\p{L}\\p{N}_])`, 'giu');
  });
  const counts = new Array<number>(words.length).fill(0);
  const containing = new Array<number>(words.length).fill(0);
  let totalWords = 0;
  let withAny = 0;
  for (const text of texts) {
    totalWords += text.match(WORD)?.length ?? 0;
    let any = false;
    patterns.forEach((re, k) => {
      const c = text.match(re)?.length ?? 0;
      counts[k] += c;
      if (c > 0) {
        containing[k]++;
        any = true;
      }
    });
    if (any) withAny++;
  }
  const n = texts.length;
  return {
    numTexts: n,
    totalWords,
    words: words.map((word, k) => ({
      word,
      count: counts[k],
      per1000Words: totalWords === 0 ? 0 : (1000 * counts[k]) / totalWords,
      completionShare: n === 0 ? 0 : containing[k] / n,
    })),
    anyShare: n === 0 ? 0 : withAny / n,
  };
}
