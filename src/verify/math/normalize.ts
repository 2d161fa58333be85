/**
 * String-level clean-up of an answer before parsing: delimiters, spacing macros, degrees, currency,
 * units, `\text{}` wrappers, thousands separators, base subscripts. Everything here removes notation
 * that does not change the value; what remains is parsed by structure.ts and latexParser.ts.
 */
import { matchBrace } from '../braces.ts';

/** Unit and filler words dropped after a number ("5.4 cents", "864 inches^2", "7 square units"). */
const UNIT_WORDS = [
  'square',
  'sq',
  'cubic',
  'units?',
  'unit',
  'degrees?',
  'deg',
  'radians?',
  'rad',
  'cents?',
  'dollars?',
  'usd',
  'euros?',
  'pounds?',
  'percent',
  'inches',
  'inch',
  'in',
  'feet',
  'foot',
  'ft',
  'yards?',
  'yd',
  'miles?',
  'mi',
  'meters?',
  'metres?',
  'm',
  'cm',
  'mm',
  'km',
  'kilometers?',
  'centimeters?',
  'millimeters?',
  'grams?',
  'g',
  'kg',
  'kilograms?',
  'mg',
  'lbs?',
  'ounces?',
  'oz',
  'liters?',
  'litres?',
  'l',
  'ml',
  'gallons?',
  'quarts?',
  'pints?',
  'cups?',
  'seconds?',
  'secs?',
  's',
  'minutes?',
  'mins?',
  'hours?',
  'hrs?',
  'h',
  'days?',
  'weeks?',
  'months?',
  'years?',
  'mph',
  'kph',
  'km/h',
  'm/s',
  'people',
  'persons?',
  'students?',
  'times',
  'ways',
  'points?',
  'marbles?',
  'apples?',
  'eggs?',
  'pages?',
  'books?',
  'cookies?',
  'items?',
  'boxes',
  'box',
  'tickets?',
  'pieces?',
  'coins?',
  'cars?',
  'trees?',
  'hats?',
  'pens?',
  'pencils?',
  'sides?',
  'edges?',
  'vertices',
  'faces?',
  'numbers?',
  'integers?',
  'digits?',
  'terms?',
  'values?',
  'solutions?',
];
const UNIT_RE = new RegExp(`(?:\\s+(?:${UNIT_WORDS.join('|')})\\.?)+(?:\\s*\\^\\s*\\{?[23]\\}?)?\\s*$`, 'i');

/** Commands wrapping text or upright math whose content we keep. */
const TEXT_WRAPPERS = 'text|textrm|textbf|textit|textsf|texttt|textnormal|mathrm|mathbf|mathit|mathsf|mbox|emph|hbox';

/** Replace `\cmd{content}` for the given command names using `f(content, start, end)`. */
function replaceCommandGroups(
  s: string,
  names: string,
  f: (content: string, start: number, end: number) => string,
): string {
  const re = new RegExp(`\\\\(?:${names})\\s*\\{`, 'g');
  let out = '';
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const open = m.index + m[0].length - 1;
    const end = matchBrace(s, open);
    if (end < 0) break;
    out += s.slice(last, m.index) + f(s.slice(open + 1, end - 1), m.index, end);
    last = end;
    re.lastIndex = end;
  }
  return out + s.slice(last);
}

/** Remove `\boxed{...}` / `\fbox{...}` when it wraps the whole answer. */
function unwrapBoxed(s: string): string {
  for (;;) {
    const m = /^\\(?:boxed|fbox|framebox)\s*\{/.exec(s);
    if (!m) return s;
    const end = matchBrace(s, m[0].length - 1);
    if (end !== s.length) return s;
    s = s.slice(m[0].length, -1).trim();
  }
}

/** Whether the whole answer is wrapped in one text command (`\text{Evelyn}`), before unwrapping. */
export function isWhollyText(raw: string): boolean {
  const s = raw
    .trim()
    .replace(/^\$+|\$+$/g, '')
    .trim();
  const m = new RegExp(`^\\\\(?:${TEXT_WRAPPERS})\\s*\\{`).exec(s);
  return !!m && matchBrace(s, m[0].length - 1) === s.length && !/\d/.test(s);
}

/**
 * The same number read with a decimal comma ("1000,99", "3,5"), when `normalized` is two digit groups
 * joined by one comma that is not a thousands separator; null otherwise. Such a string is also a list of
 * two numbers, so the caller tries this reading only against a single number.
 */
export function decimalCommaReading(normalized: string): string | null {
  if (!/^[-+]?\d+,\d+%?$/.test(normalized) || /^[-+]?[1-9]\d{0,2},\d{3}%?$/.test(normalized)) return null;
  return normalized.replace(',', '.');
}

/** Whether the answer is stated as an approximation (`\approx`, `≈`). */
export function isApproximation(raw: string): boolean {
  return /\\(?:approx|simeq|thickapprox)(?![a-zA-Z])|\u2248/.test(raw);
}

/** Normalise an answer string; the result is what structure parsing sees. */
export function normalizeAnswer(raw: string): string {
  let s = raw.trim();
  s = s
    .replace(/[\u2212\u2013\u2014]/g, '-')
    .replace(/\u00d7/g, '\\times ')
    .replace(/[\u00b7\u22c5]/g, '\\cdot ')
    .replace(/\u00f7/g, '\\div ')
    .replace(/\u03c0/g, '\\pi ')
    .replace(/\u221a/g, '\\sqrt')
    .replace(/\u221e/g, '\\infty ')
    .replace(/\u2264/g, '\\le ')
    .replace(/\u2265/g, '\\ge ')
    .replace(/\u00b1/g, '\\pm ')
    .replace(/\u222a/g, '\\cup ')
    .replace(/[\u00a0\u2009\u202f]/g, ' ');
  s = unwrapBoxed(s);
  // Math delimiters and currency.
  s = s
    .replace(/\\\$/g, '')
    .replace(/\$/g, '')
    .replace(/^\\[([]|\\[)\]]$/g, '')
    .trim();
  s = unwrapBoxed(s);
  s = s.replace(/[€£¥]/g, '').replace(/\b(?:US)?\s*dollars?\b/gi, '');
  // Sizing and spacing macros. A thin space between digit groups is a thousands separator.
  s = s.replace(
    /\\(?:left|right)\s*\.|\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![a-zA-Z])/g,
    '',
  );
  s = s.replace(/\\displaystyle|\\limits/g, '');
  s = s.replace(/,\\!\s*/g, ',').replace(/\{,\}/g, ',');
  s = s.replace(/(\d)\\[,!;:]\s*(?=\d{3}(?!\d))/g, '$1');
  s = s.replace(/(?<!\\)\\[,!;: ]|\\q?quad|~/g, ' ');
  // Degrees and percent.
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°/g, '');
  // An approximation states its value after the sign: "x \approx 11" and "e \approx 2.718" are read as the
  // value alone. A leading "=" is dropped too.
  s = s
    .replace(/^[^]*(?:\\(?:approx|simeq|thickapprox)(?![a-zA-Z])|\u2248)/, '')
    .replace(/^\s*=\s*/, '')
    .trim();
  // TeX's "{a \over b}".
  s = s.replace(/\{([^{}]*)\\over(?![a-zA-Z])([^{}]*)\}/g, '\\frac{$1}{$2}');
  if (/^[^{}]*\\over(?![a-zA-Z])[^{}]*$/.test(s)) s = s.replace(/^([^]*)\\over(?![a-zA-Z])([^]*)$/, '\\frac{$1}{$2}');
  s = s.replace(/\\%/g, '%').replace(/\s*\bpercent\b/gi, '%');
  s = s.replace(/\\[dtc]frac/g, '\\frac').replace(/\\[dt]binom/g, '\\binom');
  s = s
    .replace(/\\(?:leq?slant|leqq|leq)(?![a-zA-Z])/g, '\\le')
    .replace(/\\(?:geq?slant|geqq|geq)(?![a-zA-Z])/g, '\\ge');
  s = s.replace(/\\mathbb\s*\{\s*R\s*\}|\\R(?![a-zA-Z])/g, '(-\\infty,\\infty)');
  // "and"/"or" between items of a list.
  s = s.replace(/\\(?:text|mbox|textrm)\s*\{\s*(?:and|or|,)\s*\}/g, ',');
  // Trailing units written as text after a value ("\frac{270}7\text{ degrees}", "15\mbox{ cm}^2").
  s = s.replace(new RegExp(`(\\\\(?:${TEXT_WRAPPERS})\\s*\\{[^{}]*)\\}\\s*\\^\\s*\\{?(\\d)\\}?`, 'g'), '$1^$2}');
  s = replaceCommandGroups(s, TEXT_WRAPPERS, (content, start, end) => {
    const before = s.slice(0, start),
      after = s.slice(end);
    if (/\d|\\pi|\}/.test(before) && /^\s*\.?$/.test(after) && /^\s*[a-zA-Z][a-zA-Z ./]*(?:\^\d)?\s*$/.test(content))
      return '';
    return content;
  });
  // Set-builder prefixes: "x \in [-2, 7]".
  s = s.replace(/^[a-zA-Z]\s*\\in\s*/, '');
  s = s.replace(/\\emptyset|\\varnothing|\\\{\s*\\\}/g, '\\emptyset');
  // Base subscripts: the answer "52_8" is compared by its digits.
  s = s.replace(/(?<![A-Za-z_\\\d])(\d+)_\s*\{?\s*(\d{1,2})\s*\}?/g, '$1');
  s = s.replace(/\s+/g, ' ').trim();
  // Trailing full stop and unit words.
  for (let k = 0; k < 4; k++) {
    const before = s;
    s = s.replace(/\s*[.;]+$/, '').trim();
    const m = UNIT_RE.exec(s);
    if (m) {
      // A one-letter unit only after a plain number ("5 m"), so that "2 \cdot s" keeps its variable.
      const prefix = s.slice(0, m.index).trim();
      const words = m[0].trim().replace(/[.^{}\d\s]+$/, '');
      if (words.length === 1 ? /^[-+]?[\d.,]+$/.test(prefix) : /[\d})%]$/.test(prefix)) s = prefix;
    }
    if (s === before) break;
  }
  // A plain number followed by words is a number with a unit ("5 blue marbles").
  const worded = /^([-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\/\d+)?)\s+([A-Za-z][A-Za-z\s-]*)$/.exec(s);
  if (worded && /[A-Za-z]{3}/.test(worded[2])) s = worded[1];
  // Thousands separators, only where the whole answer is one number (tuples such as (3,4) are untouched).
  // A leading group of 0 is no thousands group: "0,111" is 0.111 written with a decimal comma.
  if (/^[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?%?$/.test(s) || /^[-+]?[1-9]\d{0,2}(?: \d{3})+(?:[.,]\d+)?$/.test(s))
    s = s.replace(/,(?=\d{1,2}$|\d{4,}$)/, '.').replace(/[, ]/g, '');
  else if (/^[-+]?0,\d+%?$/.test(s)) s = s.replace(',', '.');
  return s;
}
