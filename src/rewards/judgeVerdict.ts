/**
 * Reading an LLM judge's reply (src/rewards/llmJudge.ts): a verdict (correct or not) or a rating on a scale. Judges
 * answer in many shapes ("Verdict: correct", "[[A]]", "**Yes**", "Score: 7/10", "Rating: [[8]]", {"score": 7}, a
 * reasoning block first, an explanation after), so each reader tries the explicit shapes first, from the most to the
 * least deliberate, and takes the last occurrence of a shape (judges explain first and conclude last). A reply that
 * fits no shape is unreadable: the caller counts it as a failure rather than guessing.
 */

/** A reading of a reply: the score in [0, 1] and the shape it came from, or why the reply could not be read. */
export type JudgeReading = { ok: true; score: number; shape: JudgeShape; value: number } | { ok: false; why: string };

/** Where a reading came from, for tests and logs. */
export type JudgeShape = 'json' | 'label' | 'brackets' | 'boxed' | 'bold' | 'fraction' | 'bare' | 'first_word';

const POSITIVE = [
  'correct',
  'yes',
  'true',
  'equivalent',
  'equal',
  'right',
  'same',
  'match',
  'matches',
  'accept',
  'accepted',
  'pass',
  'passed',
];
const NEGATIVE = [
  'not correct',
  'incorrect',
  'no',
  'false',
  'not equivalent',
  'inequivalent',
  'nonequivalent',
  'not equal',
  'unequal',
  'wrong',
  'not the same',
  'different',
  'mismatch',
  'reject',
  'rejected',
  'fail',
  'failed',
  'not attempted',
];
/** SimpleQA's grader letters: A correct, B incorrect, C not attempted (incorrect). Only where a letter is alone. */
const LETTERS: Record<string, boolean> = { a: true, b: false, c: false };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const byLength = (xs: string[]) => [...xs].sort((a, b) => b.length - a.length);
const PHRASES = byLength([...POSITIVE, ...NEGATIVE]);
const VERDICT_OF = new Map<string, boolean>([
  ...POSITIVE.map((w) => [w, true] as const),
  ...NEGATIVE.map((w) => [w, false] as const),
]);
/** A verdict phrase at the start of a text, followed by a word boundary. */
const LEADING = new RegExp(
  `^(${PHRASES.map((p) => escapeRe(p).replace(/ /g, '\\s+')).join('|')})(?![\\p{L}\\p{N}])`,
  'iu',
);
/**
 * Phrases that may sit inside a sentence after a label ("Verdict: the response is incorrect"): the unambiguous ones
 * only, so "there is no doubt" is not read as "no".
 */
const INNER = new RegExp(
  `(?<![\\p{L}\\p{N}])(not\\s+correct|incorrect|correct|not\\s+equivalent|inequivalent|nonequivalent|equivalent|wrong)(?![\\p{L}\\p{N}])`,
  'iu',
);

/**
 * The part of a reply that holds the judgement: the text after a reasoning block (`</think>`, as a reasoning judge
 * or the client's rebuilt reasoning_content leaves it); null when the reasoning never closed.
 */
export function judgementText(reply: string): string | null {
  const close = reply.lastIndexOf('</think>');
  if (close >= 0) return reply.slice(close + '</think>'.length).trim();
  if (/<think>/.test(reply)) return null;
  return reply.trim();
}

/** Markdown emphasis, quotes, brackets and end punctuation around a short answer removed; spaces collapsed. */
function bare(s: string): string {
  return s
    .replace(/[*_`"'“”‘’]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[([{<]+|[)\]}>]+$/g, '')
    .replace(/[.!,;:]+$/, '')
    .trim();
}

/** The verdict a short answer states: a verdict phrase it starts with, or a lone grader letter when `letters`. */
function verdictOf(value: string, o: { letters: boolean; inner: boolean }): boolean | null {
  const s = bare(value);
  const brackets = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(s);
  if (brackets) return verdictOf(brackets[1], { letters: true, inner: false });
  if (o.letters && /^[abc]$/i.test(s)) return LETTERS[s.toLowerCase()];
  if (o.letters) {
    const letter = /^\(?([abc])\)?(?:[\s.:)-]|$)/i.exec(s);
    if (letter && !/^a\s+\p{L}/iu.test(s)) return LETTERS[letter[1].toLowerCase()];
  }
  const lead = LEADING.exec(s);
  if (lead) return VERDICT_OF.get(lead[1].toLowerCase().replace(/\s+/g, ' ')) ?? null;
  if (o.inner) {
    const m = INNER.exec(s);
    if (m) return VERDICT_OF.get(m[1].toLowerCase().replace(/\s+/g, ' ')) ?? null;
  }
  return null;
}

/** JSON objects of a text with where they start: the whole text, ```json fences, and {...} without nested braces. */
function jsonObjects(text: string): { obj: Record<string, unknown>; pos: number }[] {
  const candidates: { src: string; pos: number }[] = [{ src: text, pos: 0 }];
  for (const m of text.matchAll(/```(?:json)?\s*\n?([\s\S]*?)```/gi)) candidates.push({ src: m[1], pos: m.index });
  for (const m of text.matchAll(/\{[^{}]*\}/g)) candidates.push({ src: m[0], pos: m.index });
  const out: { obj: Record<string, unknown>; pos: number }[] = [];
  for (const c of candidates) {
    const t = c.src.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v = JSON.parse(t) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v))
        out.push({ obj: v as Record<string, unknown>, pos: c.pos });
    } catch {
      // not JSON
    }
  }
  return out;
}

function jsonField(obj: Record<string, unknown>, keys: readonly string[]): unknown {
  const lower = new Map(Object.entries(obj).map(([k, v]) => [k.toLowerCase(), v]));
  for (const k of keys) if (lower.has(k)) return lower.get(k);
  return undefined;
}

/**
 * Labels a verdict follows ("Verdict: correct", "Final judgement is [[A]]", "Answer: No"). After the strong ones
 * (group 1) a verdict word may sit inside a sentence ("Verdict: the response is incorrect"); after the others the
 * value must start with it.
 */
const VERDICT_LABEL =
  /(?<![\p{L}\p{N}])(?:(verdict|judge?ment|decision|conclusion|assessment|evaluation)|grade|result|answer|label|correct|equivalent)(?![\p{L}\p{N}])[\s*_]*(?:is\b[\s*_]*:?|[:：=-])[\s*_]*([^\n]*)/giu;

const VERDICT_KEYS = [
  'verdict',
  'judgement',
  'judgment',
  'decision',
  'grade',
  'result',
  'answer',
  'label',
  'correct',
  'is_correct',
  'equivalent',
  'is_equivalent',
];

/**
 * Reads a verdict: 1 for correct/equivalent/yes/[[A]], 0 for incorrect/not equivalent/no/[[B]]/[[C]] (SimpleQA's
 * grader letters). Explicit shapes: a JSON object with a verdict field (a string, a boolean, or 1/0), a labelled
 * line ("Verdict: correct"), `[[X]]`, `\boxed{X}`, a bold verdict word; the one that ends last in the reply wins
 * (judges conclude last). Without any: a reply that starts, or whose last line starts, with a verdict word.
 */
export function parseVerdict(reply: string): JudgeReading {
  const text = judgementText(reply);
  if (text === null) return { ok: false, why: 'the reply has an unclosed <think> block' };
  if (text === '') return { ok: false, why: 'the reply is empty' };
  let best: { pos: number; verdict: boolean; shape: JudgeShape } | null = null;
  const found = (pos: number, verdict: boolean | null, shape: JudgeShape) => {
    if (verdict !== null && (best === null || pos >= best.pos)) best = { pos, verdict, shape };
  };
  for (const { obj, pos } of jsonObjects(text)) {
    const v = jsonField(obj, VERDICT_KEYS);
    if (typeof v === 'boolean') found(pos, v, 'json');
    else if (v === 1 || v === 0) found(pos, v === 1, 'json');
    else if (typeof v === 'string') found(pos, verdictOf(v, { letters: true, inner: true }), 'json');
  }
  for (const m of text.matchAll(VERDICT_LABEL))
    found(m.index, verdictOf(m[2], { letters: true, inner: m[1] !== undefined }), 'label');
  for (const m of text.matchAll(/\[\[\s*([^\]\n]{1,40}?)\s*\]\]/g))
    found(m.index, verdictOf(m[1], { letters: true, inner: false }), 'brackets');
  for (const m of text.matchAll(/\\boxed\{\s*(?:\\text\{)?([^{}\n]{1,40}?)\}?\s*\}/g))
    found(m.index, verdictOf(m[1], { letters: true, inner: false }), 'boxed');
  for (const m of text.matchAll(/(\*\*|__)([^*_\n]{1,40}?)\1/g))
    found(m.index, verdictOf(m[2], { letters: false, inner: false }), 'bold');
  const yes = (v: boolean, shape: JudgeShape): JudgeReading => ({
    ok: true,
    score: v ? 1 : 0,
    value: v ? 1 : 0,
    shape,
  });
  const b = best as { verdict: boolean; shape: JudgeShape } | null;
  if (b) return yes(b.verdict, b.shape);
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (const line of [lines[0], lines[lines.length - 1]]) {
    const v = verdictOf(line, { letters: false, inner: false });
    if (v !== null) return yes(v, 'first_word');
  }
  return { ok: false, why: 'no verdict found' };
}

const NUM = String.raw`(-?\d+(?:\.\d+)?)`;
const DENOMINATOR = String.raw`(?:[\s*_]*(?:\/|out\s+of)[\s*_]*(\d+(?:\.\d+)?))?`;
/** "Score: 7/10", "Rating: [[8]]", "**Score:** 7", "rating of 6 out of 10", "Overall score = 7.5", "Rating [[8]]". */
const SCORE_LABEL = new RegExp(
  String.raw`(?<![\p{L}\p{N}])(?:score|rating|grade|mark)(?![\p{L}\p{N}])[\s*_]*(?:is\b[\s*_]*:?|of\b|[:：=-]|(?=\[\[))[\s*_]*\[{0,2}[\s*_]*${NUM}[\s*_]*\]{0,2}${DENOMINATOR}`,
  'giu',
);
const BRACKET_SCORE = new RegExp(String.raw`\[\[\s*${NUM}\s*(?:\/\s*(\d+(?:\.\d+)?))?\s*\]\]`, 'g');
const FRACTION = new RegExp(
  String.raw`(?<![\p{L}\p{N}.\/])${NUM}[\s*_]*(?:\/|out\s+of)[\s*_]*(\d+(?:\.\d+)?)(?![\p{N}\/])`,
  'giu',
);
const BARE = new RegExp(String.raw`^[\s*_\[\](]*${NUM}[\s*_\])]*(?:\/\s*(\d+(?:\.\d+)?))?[\s*_\].]*$`);

/**
 * Reads a rating on the scale `range` (default 1..10) and maps it to [0, 1] linearly (min: 0, max: 1). Shapes, in
 * order: a JSON object with a score/rating field (a number, or a string such as "7/10"), a labelled score (the last
 * one: "Score: 7/10", "Rating: [[8]]"), the last `[[N]]`, the last "N/10" or "N out of 10", a reply that is only a
 * number. A rating outside the scale, or out of another total than the scale's maximum, is unreadable.
 */
export function parseScore(reply: string, range: readonly [number, number] = [1, 10]): JudgeReading {
  const [lo, hi] = range;
  const text = judgementText(reply);
  if (text === null) return { ok: false, why: 'the reply has an unclosed <think> block' };
  if (text === '') return { ok: false, why: 'the reply is empty' };
  const rated = (num: string, den: string | undefined, shape: JudgeShape): JudgeReading => {
    const v = Number(num);
    if (den !== undefined && Number(den) !== hi)
      return { ok: false, why: `a rating out of ${den}, not out of ${hi} (${num}/${den})` };
    if (!(v >= lo && v <= hi)) return { ok: false, why: `the rating ${num} is outside ${lo}..${hi}` };
    return { ok: true, score: (v - lo) / (hi - lo), value: v, shape };
  };

  const json = jsonObjects(text)
    .map((j) => jsonField(j.obj, ['score', 'rating', 'grade', 'overall', 'overall_score']))
    .filter((v) => typeof v === 'number' || typeof v === 'string');
  if (json.length > 0) {
    const v = json[json.length - 1];
    if (typeof v === 'number') return rated(String(v), undefined, 'json');
    const m = new RegExp(String.raw`^\s*${NUM}\s*(?:\/\s*(\d+(?:\.\d+)?))?\s*$`).exec(String(v));
    if (m) return rated(m[1], m[2], 'json');
  }
  const labelled = [...text.matchAll(SCORE_LABEL)];
  if (labelled.length > 0) {
    const m = labelled[labelled.length - 1];
    return rated(m[1], m[2], 'label');
  }
  const brackets = [...text.matchAll(BRACKET_SCORE)];
  if (brackets.length > 0) {
    const m = brackets[brackets.length - 1];
    return rated(m[1], m[2], 'brackets');
  }
  const fractions = [...text.matchAll(FRACTION)];
  if (fractions.length > 0) {
    const m = fractions[fractions.length - 1];
    return rated(m[1], m[2], 'fraction');
  }
  const b = BARE.exec(text);
  if (b) return rated(b[1], b[2], 'bare');
  return { ok: false, why: 'no rating found' };
}
