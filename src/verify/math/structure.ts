/**
 * Parse a normalised answer into its shape: text, scalar, equation, tuple/interval, set or unordered
 * list, union of intervals, or matrix. Scalars (and the elements of every compound shape) go to
 * latexParser.ts.
 */
import { expandPm, hasPm, printNode, type Node } from './ast.ts';
import { ParseError, parseLatex } from './latexParser.ts';

/**
 * A parsed answer. `seq` covers both tuples/points and intervals: both are ordered with bracket types.
 * `src` is the normalised source text of the item, kept to compare it against a text answer.
 */
export type Parsed = ParsedShape & { src?: string };
type ParsedShape =
  | { kind: 'text'; text: string }
  | { kind: 'scalar'; node: Node; percent: boolean; assignedTo?: string }
  | { kind: 'equation'; lhs: Node; rhs: Node }
  | { kind: 'seq'; open: '(' | '['; close: ')' | ']'; items: Parsed[] }
  | { kind: 'set'; braced: boolean; items: Parsed[] }
  | { kind: 'union'; parts: Parsed[] }
  | { kind: 'matrix'; rows: Parsed[][] };

const MAX_ITEMS = 64;
const MAX_NESTING = 4;

/** Words that are math, not text, when they make up a whole answer. */
const MATH_WORDS = new Set([
  'pi',
  'infinity',
  'inf',
  'infty',
  'oo',
  'sqrt',
  'sin',
  'cos',
  'tan',
  'cot',
  'sec',
  'csc',
  'arcsin',
  'arccos',
  'arctan',
  'sinh',
  'cosh',
  'tanh',
  'log',
  'exp',
  'abs',
]);

/** Lower-case, single-spaced form used to compare text answers ("\text{Evelyn}" = "evelyn", "(C)" = "c"). */
export function normalizeText(s: string): string {
  let t = s
    .toLowerCase()
    .replace(/\\[a-z]+\s*\{([^{}]*)\}/g, '$1')
    .replace(/[{}]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  t = t
    .replace(/^\(([a-z])\)$/, '$1')
    .replace(/^([a-z])\)$/, '$1')
    .replace(/[.]$/, '')
    .trim();
  t = t.replace(/^(?:the|a|an) /, '');
  return t;
}

/**
 * Letters-only answers with a word of three or more letters are text ("east", "Evelyn"); shorter runs
 * such as "xy" are products of variables. Text compares case-insensitively.
 */
function isTextAnswer(s: string): boolean {
  if (/^\(\s*[A-Ea-e]\s*\)$/.test(s)) return true;
  if (!/^[A-Za-z][A-Za-z\s'\-.]*$/.test(s)) return false;
  const words = s
    .toLowerCase()
    .split(/[\s'\-.]+/)
    .filter(Boolean);
  return words.some((w) => w.length >= 3 && !MATH_WORDS.has(w));
}

/**
 * Positions of top-level (bracket depth 0) matches of `re` in `s`. Commands are skipped whole so that
 * `\le` is found but `\left` is not mistaken for it; `\{` counts as a bracket.
 */
function topLevel(s: string, re: RegExp): { index: number; text: string }[] {
  const out: { index: number; text: string }[] = [];
  let depth = 0;
  const sticky = new RegExp(re.source, 'y');
  for (let i = 0; i < s.length; i++) {
    if (depth === 0) {
      sticky.lastIndex = i;
      const m = sticky.exec(s);
      if (m && m[0].length > 0) {
        out.push({ index: i, text: m[0] });
        i += m[0].length - 1;
        continue;
      }
    }
    const c = s[i];
    if (c === '\\') {
      const cmd = /^\\(?:[a-zA-Z]+|.)/.exec(s.slice(i))![0];
      if (cmd === '\\{') depth++;
      else if (cmd === '\\}') depth--;
      i += cmd.length - 1;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    if (depth < 0) return out;
  }
  return out;
}

function splitAt(s: string, hits: { index: number; text: string }[]): string[] {
  const parts: string[] = [];
  let last = 0;
  for (const h of hits) {
    parts.push(s.slice(last, h.index).trim());
    last = h.index + h.text.length;
  }
  parts.push(s.slice(last).trim());
  return parts;
}

/** If `s` is one bracketed group from first to last character, its brackets and inner text. */
function wrapped(s: string): { open: string; close: string; inner: string } | null {
  let open: string, close: string;
  if (s.startsWith('\\{')) open = '\\{';
  else if (s[0] === '(' || s[0] === '[' || s[0] === '{') open = s[0];
  else return null;
  if (s.endsWith('\\}')) close = '\\}';
  else if (s.endsWith(')') || s.endsWith(']') || s.endsWith('}')) close = s[s.length - 1];
  else return null;
  if ((open === '{') !== (close === '}')) return null;
  const inner = s.slice(open.length, s.length - close.length);
  // The inner text must be balanced on its own, or the outer brackets do not pair up: "(a+5)(b+2)".
  let depth = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '\\') {
      const cmd = /^\\(?:[a-zA-Z]+|.)/.exec(inner.slice(i))![0];
      if (cmd === '\\{') depth++;
      if (cmd === '\\}') depth--;
      i += cmd.length - 1;
    } else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    if (depth < 0) return null;
  }
  if (depth !== 0) return null;
  if ((open === '\\{') !== (close === '\\}')) return null;
  return { open, close, inner };
}

function scalar(s: string): Parsed {
  let percent = false;
  let body = s.trim();
  if (/%\s*$/.test(body) && topLevel(body, /%/).length === 1) {
    percent = true;
    body = body.replace(/%\s*$/, '');
  }
  const node = parseLatex(body);
  if (hasPm(node)) {
    const values = expandPm(node);
    if (!values) throw new ParseError('too many ± branches');
    return { kind: 'set', braced: false, items: values.map((v) => ({ kind: 'scalar', node: v, percent })) };
  }
  return { kind: 'scalar', node, percent };
}

const INEQ = /<=|>=|\\leq?(?![a-zA-Z])|\\geq?(?![a-zA-Z])|\\lt(?![a-zA-Z])|\\gt(?![a-zA-Z])|<|>/;

function inequality(parts: string[], ops: string[]): Parsed {
  const less = (op: string) => op === '<' || op === '<=' || op === '\\lt' || op.startsWith('\\le');
  const strict = (op: string) => op === '<' || op === '>' || op === '\\lt' || op === '\\gt';
  const isVar = (p: string) =>
    /^[a-zA-Z](?:_\{?\w+\}?)?$|^\\[a-zA-Z]+$/.test(p.trim()) && !/^\\(?:pi|infty)$/.test(p.trim());
  const inf: Node = { t: 'const', name: 'inf' };
  const mk = (lo: Node, loStrict: boolean, hi: Node, hiStrict: boolean): Parsed => ({
    kind: 'seq',
    open: loStrict ? '(' : '[',
    close: hiStrict ? ')' : ']',
    items: [
      { kind: 'scalar', node: lo, percent: false },
      { kind: 'scalar', node: hi, percent: false },
    ],
  });
  if (parts.length === 3 && isVar(parts[1]) && less(ops[0]) === less(ops[1])) {
    const [a, b] = [parseLatex(parts[0]), parseLatex(parts[2])];
    return less(ops[0]) ? mk(a, strict(ops[0]), b, strict(ops[1])) : mk(b, strict(ops[1]), a, strict(ops[0]));
  }
  if (parts.length === 2 && (isVar(parts[0]) || isVar(parts[1]))) {
    // Write it as "x op a".
    const varFirst = isVar(parts[0]);
    const a = parseLatex(varFirst ? parts[1] : parts[0]);
    const upper = varFirst ? less(ops[0]) : !less(ops[0]);
    return upper ? mk({ t: 'neg', a: inf }, true, a, strict(ops[0])) : mk(a, strict(ops[0]), inf, true);
  }
  throw new ParseError('unsupported inequality');
}

function matrix(s: string, depth: number): Parsed | null {
  const m = /^\\begin\{([pbBvV]?matrix|array)\}(\{[^{}]*\})?/.exec(s);
  if (!m) return null;
  const endRe = new RegExp(`\\\\end\\{${m[1]}\\}$`);
  if (!endRe.test(s)) throw new ParseError(`unclosed \\begin{${m[1]}}`);
  const body = s.slice(m[0].length).replace(endRe, '');
  const rows = splitAt(body, topLevel(body, /\\\\/)).filter((r) => r.length > 0);
  if (rows.length === 0 || rows.length > MAX_ITEMS) throw new ParseError('bad matrix size');
  const cells = rows.map((r) => splitAt(r, topLevel(r, /&/)).map((c) => parseItem(c, depth + 1)));
  if (cells.some((r) => r.length !== cells[0].length)) throw new ParseError('ragged matrix');
  return { kind: 'matrix', rows: cells };
}

function parseItem(s: string, depth: number): Parsed {
  const p = parseShape(s.trim(), depth);
  p.src ??= s.trim();
  return p;
}

function parseShape(s: string, depth: number): Parsed {
  if (depth > MAX_NESTING) throw new ParseError('answer nested too deeply');
  s = s.trim();
  if (s === '') throw new ParseError('empty answer');
  if (isTextAnswer(s)) return { kind: 'text', text: normalizeText(s) };
  if (s === '\\emptyset') return { kind: 'set', braced: true, items: [] };

  const mat = matrix(s, depth);
  if (mat) return mat;

  const unions = topLevel(s, /\\cup(?![a-zA-Z])/);
  if (unions.length > 0) return { kind: 'union', parts: splitAt(s, unions).map((p) => parseItem(p, depth + 1)) };

  const w = wrapped(s);
  if (w) {
    const items = splitAt(w.inner, topLevel(w.inner, /,/));
    if (items.length > MAX_ITEMS) throw new ParseError('too many items');
    if (w.open === '{' && items.length === 1) return parseItem(w.inner, depth + 1);
    if (w.open === '\\{' || w.open === '{') {
      if (items.length === 1 && items[0] === '') return { kind: 'set', braced: true, items: [] };
      return { kind: 'set', braced: true, items: flattenPm(items.map((x) => parseItem(x, depth + 1))) };
    }
    if (items.length >= 2) {
      return {
        kind: 'seq',
        open: w.open as '(' | '[',
        close: w.close as ')' | ']',
        items: items.map((x) => parseItem(x, depth + 1)),
      };
    }
    if ((w.open === '(' && w.close === ')') || (w.open === '[' && w.close === ']')) {
      // A single parenthesised value, "(5)"; keep going so "(x=5)" or "(C)" still work.
      return parseItem(w.inner, depth + 1);
    }
    throw new ParseError('mismatched brackets');
  }

  const commas = topLevel(s, /,|\s+(?:and|or)\s+/);
  if (commas.length > 0) {
    if (commas.length + 1 > MAX_ITEMS) throw new ParseError('too many items');
    const items = splitAt(s, commas)
      .filter((x) => x !== '')
      .map((x) => parseItem(x, depth + 1));
    if (items.length === 1) return items[0];
    // "x < -1 or x > 2" is a union of intervals rather than a list of values.
    if (items.every((it) => it.kind === 'seq')) return { kind: 'union', parts: items };
    return { kind: 'set', braced: false, items: flattenPm(items) };
  }

  const ineq = topLevel(s, INEQ);
  if (ineq.length > 0)
    return inequality(
      splitAt(s, ineq),
      ineq.map((h) => h.text),
    );

  const eqs = topLevel(s, /=/);
  if (eqs.length > 0) {
    const parts = splitAt(s, eqs);
    if (parts.some((p) => p === '')) throw new ParseError("empty side of '='");
    if (parts.length > 2) return parseItem(parts[parts.length - 1], depth + 1);
    const rhs = parseItem(parts[1], depth + 1);
    const fnCall = /^([a-zA-Z])\s*\(\s*[a-zA-Z](?:\s*,\s*[a-zA-Z])*\s*\)$/.exec(parts[0]);
    if (fnCall && rhs.kind === 'scalar') {
      // A definition "f(x) = x^2": its value is the right side.
      return { ...rhs, assignedTo: fnCall[1] };
    }
    if (/^[a-zA-Z](?:_\{?\w+\}?)?$|^\\[a-zA-Z]+$/.test(parts[0]) && !/^\\(?:pi|infty)$/.test(parts[0])) {
      // An assignment "x = 5": the value is what counts, unless the right side uses x ("x = 2x - 1").
      const name = parts[0];
      const lhsNode = parseLatex(name);
      const lhsName = lhsNode.t === 'sym' ? lhsNode.name : null;
      if (rhs.kind !== 'scalar') return rhs;
      if (lhsName && !mentions(rhs.node, lhsName)) return { ...rhs, assignedTo: lhsName };
    }
    const lhs = parseLatex(parts[0]);
    if (rhs.kind !== 'scalar') throw new ParseError("unsupported right side of '='");
    return { kind: 'equation', lhs, rhs: rhs.node };
  }
  return scalar(s);
}

function mentions(n: Node, name: string): boolean {
  switch (n.t) {
    case 'sym':
      return n.name === name;
    case 'num':
    case 'const':
      return false;
    case 'neg':
      return mentions(n.a, name);
    case 'fn':
      return n.args.some((a) => mentions(a, name));
    default:
      return mentions(n.a, name) || mentions(n.b, name);
  }
}

/** Items that are themselves ± pairs become separate members: {1 ± √5, -2} has three. */
function flattenPm(items: Parsed[]): Parsed[] {
  const out = items.flatMap((it) => (it.kind === 'set' && !it.braced ? it.items : [it]));
  if (out.length > MAX_ITEMS) throw new ParseError('too many items');
  return out;
}

/** Parse a normalised answer. Throws `ParseError`. */
export function parseAnswer(normalized: string, opts: { text?: boolean } = {}): Parsed {
  if (opts.text) return { kind: 'text', text: normalizeText(normalized), src: normalized };
  return parseItem(normalized, 0);
}

/** Canonical readable form of a parsed answer. */
export function printParsed(p: Parsed): string {
  switch (p.kind) {
    case 'text':
      return p.text;
    case 'scalar':
      return (p.assignedTo ? `${p.assignedTo} = ` : '') + printNode(p.node) + (p.percent ? '%' : '');
    case 'equation':
      return `${printNode(p.lhs)} = ${printNode(p.rhs)}`;
    case 'seq':
      return p.open + p.items.map(printParsed).join(', ') + p.close;
    case 'set':
      return p.braced ? `{${p.items.map(printParsed).join(', ')}}` : p.items.map(printParsed).join(', ');
    case 'union':
      return p.parts.map(printParsed).join(' U ');
    case 'matrix':
      return `[${p.rows.map((r) => `[${r.map(printParsed).join(', ')}]`).join(', ')}]`;
  }
}
