/**
 * Recursive-descent parser from (normalised) LaTeX or plain-text math to the `Node` tree of ast.ts.
 *
 * It follows LaTeX conventions where they matter for answers: single letters are separate variables
 * (`xy` = x*y), `\frac12` and `\sqrt2` take one character when unbraced, `\sin 2x` takes the following
 * product as its argument, `2\frac{1}{2}` is a mixed number. Plain-text names (`sqrt`, `pi`, `sin`) are
 * accepted too, since models do not always write LaTeX.
 */
import { bin, fn, neg, num, type FnName, type Node } from './ast.ts';

/** Thrown for input the parser does not understand; callers turn it into an `equal: false` reason. */
export class ParseError extends Error {}

type Tok = { k: 'num' | 'letter' | 'cmd' | 'op'; v: string };

/** Letter runs that name something in plain text; every other run is split into single-letter variables. */
const WORDS: Record<string, string> = {
  sqrt: 'sqrt',
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  cot: 'cot',
  sec: 'sec',
  csc: 'csc',
  arcsin: 'arcsin',
  arccos: 'arccos',
  arctan: 'arctan',
  asin: 'arcsin',
  acos: 'arccos',
  atan: 'arctan',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  ln: 'ln',
  log: 'log',
  exp: 'exp',
  pi: 'pi',
  infinity: 'infty',
  inf: 'infty',
  infty: 'infty',
  abs: 'abs',
};

const GREEK = new Set([
  'alpha',
  'beta',
  'gamma',
  'delta',
  'epsilon',
  'varepsilon',
  'zeta',
  'eta',
  'theta',
  'vartheta',
  'iota',
  'kappa',
  'lambda',
  'mu',
  'nu',
  'xi',
  'rho',
  'varrho',
  'sigma',
  'varsigma',
  'tau',
  'upsilon',
  'phi',
  'varphi',
  'chi',
  'psi',
  'omega',
  'Gamma',
  'Delta',
  'Theta',
  'Lambda',
  'Xi',
  'Sigma',
  'Upsilon',
  'Phi',
  'Psi',
  'Omega',
]);

const FUNCS: Record<string, FnName> = {
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  cot: 'cot',
  sec: 'sec',
  csc: 'csc',
  arcsin: 'asin',
  arccos: 'acos',
  arctan: 'atan',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  ln: 'ln',
  log: 'log10',
  exp: 'exp',
  abs: 'abs',
};
const INVERSE: Partial<Record<FnName, FnName>> = { sin: 'asin', cos: 'acos', tan: 'atan' };

/** Wrappers whose braced content is read as ordinary math. */
const WRAPPERS = new Set([
  'text',
  'textrm',
  'textbf',
  'textit',
  'mathrm',
  'mathbf',
  'mathit',
  'mbox',
  'operatorname',
  'boxed',
  'fbox',
  'mathsf',
  'textsf',
]);

const MAX_TOKENS = 2000;
const MAX_DEPTH = 120;

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const numMatch = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/.exec(s.slice(i, i + 400));
    if (numMatch) {
      out.push({ k: 'num', v: numMatch[0] });
      i += numMatch[0].length;
    } else if (/[a-zA-Z]/.test(c)) {
      const run = /^[a-zA-Z]+/.exec(s.slice(i))![0];
      const word = WORDS[run.toLowerCase()];
      if (word && run.length > 1) out.push({ k: 'cmd', v: word });
      else for (const ch of run) out.push({ k: 'letter', v: ch });
      i += run.length;
    } else if (c === '\\') {
      const m = /^\\([a-zA-Z]+)/.exec(s.slice(i));
      if (m) {
        out.push({ k: 'cmd', v: m[1] });
        i += m[0].length;
      } else {
        out.push({ k: 'op', v: s.slice(i, i + 2) });
        i += 2;
      }
    } else {
      out.push({ k: 'op', v: c });
      i++;
    }
    if (out.length > MAX_TOKENS) throw new ParseError('expression too long');
  }
  return out;
}

/** Canonical decimal literal: no leading zeros, no trailing fractional zeros (`025` -> `25`, `.50` -> `0.5`). */
function canonicalNumber(v: string): string {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(v);
  if (!m) return v;
  const int = (m[1] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const frac = (m[2] ?? '').replace(/0+$/, '');
  const exp = m[3] !== undefined ? `e${Number(m[3])}` : '';
  return (frac ? `${int}.${frac}` : int) + exp;
}

const isInt = (n: Node): n is { t: 'num'; v: string } => n.t === 'num' && /^\d+$/.test(n.v);

class Parser {
  private pos = 0;
  private depth = 0;
  private absDepth = 0;
  constructor(private readonly toks: Tok[]) {}

  parseAll(): Node {
    if (this.toks.length === 0) throw new ParseError('empty expression');
    const e = this.parseExpr();
    if (this.pos < this.toks.length) throw new ParseError(`unexpected '${this.toks[this.pos].v}'`);
    return e;
  }

  private peek(o = 0): Tok | undefined {
    return this.toks[this.pos + o];
  }
  private isOp(v: string, o = 0): boolean {
    const t = this.peek(o);
    return !!t && t.k === 'op' && t.v === v;
  }
  private isCmd(...v: string[]): boolean {
    const t = this.peek();
    return !!t && t.k === 'cmd' && v.includes(t.v);
  }
  private expectOp(v: string): void {
    if (!this.isOp(v))
      throw new ParseError(`expected '${v}'${this.peek() ? ` before '${this.peek()!.v}'` : ' at end'}`);
    this.pos++;
  }
  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new ParseError('expression nested too deeply');
  }

  parseExpr(): Node {
    this.enter();
    let left = this.parseTerm();
    for (;;) {
      if (this.isOp('+')) {
        this.pos++;
        left = bin('add', left, this.parseTerm());
      } else if (this.isOp('-')) {
        this.pos++;
        left = bin('sub', left, this.parseTerm());
      } else if (this.isCmd('pm')) {
        this.pos++;
        left = bin('pm', left, this.parseTerm());
      } else if (this.isCmd('mp')) {
        this.pos++;
        left = bin('pm', left, neg(this.parseTerm()));
      } else break;
    }
    this.depth--;
    return left;
  }

  private startsPrimary(): boolean {
    const t = this.peek();
    if (!t) return false;
    if (t.k === 'num' || t.k === 'letter') return true;
    if (t.k === 'op') return t.v === '(' || t.v === '{' || t.v === '[' || (t.v === '|' && this.absDepth === 0);
    return (
      t.v === 'frac' ||
      t.v === 'sqrt' ||
      t.v === 'binom' ||
      t.v === 'pi' ||
      t.v === 'infty' ||
      GREEK.has(t.v) ||
      t.v in FUNCS ||
      t.v === 'lfloor' ||
      t.v === 'lceil' ||
      t.v === 'lvert' ||
      WRAPPERS.has(t.v) ||
      t.v === 'arcsin' ||
      t.v === 'arccos' ||
      t.v === 'arctan'
    );
  }

  private parseTerm(): Node {
    let left = this.parseUnary();
    for (;;) {
      if (this.isOp('*') || this.isCmd('cdot', 'times', 'ast')) {
        this.pos++;
        left = bin('mul', left, this.parseUnary());
      } else if (this.isOp('/') || this.isCmd('div')) {
        this.pos++;
        left = bin('div', left, this.parseUnary());
      } else if (this.startsPrimary()) {
        // "4 2/3" is a mixed number; any other pair of adjacent literals ("1 000", "2 3") is ambiguous.
        const prev = this.toks[this.pos - 1],
          cur = this.peek()!;
        if (prev?.k === 'num' && cur.k === 'num') {
          const plainMixed = this.tryPlainMixed(left);
          if (plainMixed) {
            left = plainMixed;
            continue;
          }
          throw new ParseError(`two numbers in a row ('${prev.v} ${cur.v}')`);
        }
        const mixed = this.tryMixedNumber(left);
        if (mixed) {
          left = mixed;
          continue;
        }
        left = bin('mul', left, this.parsePower());
      } else break;
    }
    return left;
  }

  /** `2\frac{1}{2}` (or `-2\frac12`) is the mixed number 2 1/2, not a product, when all three parts are integers. */
  private tryMixedNumber(left: Node): Node | null {
    const whole = isInt(left) ? left : left.t === 'neg' && isInt(left.a) ? left.a : null;
    if (!whole || !this.isCmd('frac')) return null;
    const save = this.pos;
    const saved = this.toks.map((t) => t.v);
    this.pos++;
    try {
      const a = this.readArg(),
        b = this.readArg();
      if (isInt(a) && isInt(b)) {
        const v = bin('add', whole, bin('div', a, b));
        return left.t === 'neg' ? neg(v) : v;
      }
    } catch {
      /* fall through: not a mixed number */
    }
    this.pos = save;
    saved.forEach((v, i) => {
      this.toks[i].v = v;
    });
    return null;
  }

  /** Plain-text mixed number "4 2/3". */
  private tryPlainMixed(left: Node): Node | null {
    const whole = isInt(left) ? left : left.t === 'neg' && isInt(left.a) ? left.a : null;
    const [n, slash, d] = [this.peek(), this.peek(1), this.peek(2)];
    if (
      !whole ||
      !n ||
      !d ||
      !/^\d+$/.test(n.v) ||
      slash?.k !== 'op' ||
      slash.v !== '/' ||
      d.k !== 'num' ||
      !/^\d+$/.test(d.v)
    )
      return null;
    const after = this.peek(3);
    if (
      after &&
      (after.k === 'num' || after.k === 'letter' || (after.k === 'op' && (after.v === '^' || after.v === '(')))
    )
      return null;
    this.pos += 3;
    const v = bin('add', whole, bin('div', num(canonicalNumber(n.v)), num(canonicalNumber(d.v))));
    return left.t === 'neg' ? neg(v) : v;
  }

  private parseUnary(): Node {
    if (this.isOp('-')) {
      this.pos++;
      return neg(this.parseUnary());
    }
    if (this.isOp('+')) {
      this.pos++;
      return this.parseUnary();
    }
    if (this.isCmd('pm')) {
      this.pos++;
      return bin('pm', num('0'), this.parseUnary());
    }
    return this.parsePower();
  }

  private parsePower(): Node {
    const base = this.parsePostfix();
    if (this.isOp('^')) {
      this.pos++;
      return bin('pow', base, this.parseExponent());
    }
    return base;
  }

  private parseExponent(): Node {
    this.enter();
    let e: Node;
    if (this.isOp('-')) {
      this.pos++;
      e = neg(this.parseExponent());
    } else if (this.isOp('+')) {
      this.pos++;
      e = this.parseExponent();
    } else e = this.parsePostfix();
    if (this.isOp('^')) {
      this.pos++;
      e = bin('pow', e, this.parseExponent());
    }
    this.depth--;
    return e;
  }

  private parsePostfix(): Node {
    let e = this.parsePrimary();
    for (;;) {
      if (this.isOp('!')) {
        this.pos++;
        e = fn('factorial', e);
      } else if (this.isOp('%') || this.isOp('\\%')) {
        this.pos++;
        e = bin('div', e, num('100'));
      } else break;
    }
    return e;
  }

  /** A group `{...}`, `(...)`, `[...]`, closed by the matching token. */
  private group(open: string, close: string): Node {
    this.expectOp(open);
    const e = this.parseExpr();
    this.expectOp(close);
    return e;
  }

  /** One argument of `\frac`/`\sqrt`/`\binom`: a braced group, or a single character/command when unbraced. */
  private readArg(): Node {
    const t = this.peek();
    if (!t) throw new ParseError('missing argument at end');
    if (t.k === 'op' && t.v === '{') return this.group('{', '}');
    if (t.k === 'op' && t.v === '(') return this.group('(', ')');
    if (t.k === 'num') {
      if (t.v.length > 1 && /^\d/.test(t.v)) {
        const first = t.v[0];
        t.v = t.v.slice(1);
        return num(first);
      }
      this.pos++;
      return num(canonicalNumber(t.v));
    }
    if (t.k === 'letter') {
      this.pos++;
      return this.letterNode(t.v);
    }
    if (t.k === 'cmd') return this.parsePrimary();
    throw new ParseError(`bad argument '${t.v}'`);
  }

  private letterNode(v: string): Node {
    if (this.isOp('_')) {
      this.pos++;
      return { t: 'sym', name: `${v}_${this.subscript()}` };
    }
    if (v === 'e') return { t: 'const', name: 'e' };
    if (v === 'i') return { t: 'const', name: 'i' };
    return { t: 'sym', name: v };
  }

  /** Subscript text, used only as part of a variable's name. */
  private subscript(): string {
    const t = this.peek();
    if (!t) throw new ParseError('missing subscript');
    if (t.k === 'op' && t.v === '{') {
      this.pos++;
      let s = '';
      let d = 1;
      while (this.peek()) {
        const u = this.toks[this.pos++];
        if (u.k === 'op' && u.v === '{') d++;
        if (u.k === 'op' && u.v === '}' && --d === 0) return s.replace(/\W/g, '') || '0';
        s += u.v;
      }
      throw new ParseError("unclosed '{' in subscript");
    }
    this.pos++;
    return t.v.replace(/\W/g, '') || '0';
  }

  private parsePrimary(): Node {
    const t = this.peek();
    if (!t) throw new ParseError('unexpected end of expression');
    this.enter();
    let out: Node;
    if (t.k === 'num') {
      this.pos++;
      out = num(canonicalNumber(t.v));
    } else if (t.k === 'letter') {
      this.pos++;
      out = this.letterNode(t.v);
    } else if (t.k === 'op') {
      if (t.v === '(') out = this.group('(', ')');
      else if (t.v === '[') out = this.group('[', ']');
      else if (t.v === '{') out = this.group('{', '}');
      else if (t.v === '|') {
        this.pos++;
        this.absDepth++;
        const e = this.parseExpr();
        this.absDepth--;
        this.expectOp('|');
        out = fn('abs', e);
      } else throw new ParseError(`unexpected '${t.v}'`);
    } else out = this.parseCommand(t.v);
    this.depth--;
    return out;
  }

  private parseCommand(name: string): Node {
    this.pos++;
    if (name === 'frac') {
      const a = this.readArg();
      return bin('div', a, this.readArg());
    }
    if (name === 'binom') {
      const a = this.readArg();
      return fn('binom', a, this.readArg());
    }
    if (name === 'sqrt') {
      if (this.isOp('[')) {
        const idx = this.group('[', ']');
        return fn('nthroot', this.readArg(), idx);
      }
      return fn('sqrt', this.readArg());
    }
    if (name === 'pi') return { t: 'const', name: 'pi' };
    if (name === 'infty') return { t: 'const', name: 'inf' };
    if (GREEK.has(name)) return { t: 'sym', name };
    if (name === 'lfloor' || name === 'lceil') {
      const e = this.parseExpr();
      const close = name === 'lfloor' ? 'rfloor' : 'rceil';
      if (!this.isCmd(close)) throw new ParseError(`expected \\${close}`);
      this.pos++;
      return fn(name === 'lfloor' ? 'floor' : 'ceil', e);
    }
    if (name === 'lvert') {
      const e = this.parseExpr();
      if (!this.isCmd('rvert')) throw new ParseError('expected \\rvert');
      this.pos++;
      return fn('abs', e);
    }
    if (WRAPPERS.has(name)) {
      // \operatorname{sin} x and \mathrm{abs}(x) name functions; any other wrapped content is plain math.
      const t0 = this.peek(),
        t1 = this.peek(1),
        t2 = this.peek(2);
      if (t0?.k === 'op' && t0.v === '{' && t1?.k === 'cmd' && t2?.k === 'op' && t2.v === '}' && FUNCS[t1.v]) {
        this.pos += 3;
        return this.parseFunction(t1.v);
      }
      return this.group('{', '}');
    }
    if (FUNCS[name] || name === 'arcsin' || name === 'arccos' || name === 'arctan') return this.parseFunction(name);
    throw new ParseError(`unsupported command \\${name}`);
  }

  /** `\sin^2 x`, `\sin^{-1}(x)`, `\log_2 8`, `\cot x`, `\ln(x+1)`. */
  private parseFunction(name: string): Node {
    let f: FnName = FUNCS[name];
    let power: Node | null = null;
    let base: Node | null = null;
    if (this.isOp('^')) {
      this.pos++;
      power = this.parseExponent();
      if (power.t === 'neg' && power.a.t === 'num' && power.a.v === '1' && INVERSE[f]) {
        f = INVERSE[f]!;
        power = null;
      }
    }
    if (f === 'log10' && this.isOp('_')) {
      this.pos++;
      base = this.readArg();
      f = 'logb';
    }
    let arg: Node;
    if (this.isOp('(')) arg = this.group('(', ')');
    else if (this.isOp('{')) arg = this.group('{', '}');
    else {
      // An unbraced argument runs over the following product, stopping at the next function.
      arg = this.parsePower();
      while (
        this.startsPrimary() &&
        !(this.peek()!.k === 'cmd' && (FUNCS[this.peek()!.v] || this.peek()!.v.startsWith('arc')))
      ) {
        arg = bin('mul', arg, this.parsePower());
      }
    }
    const call = base ? fn('logb', arg, base) : fn(f, arg);
    return power ? bin('pow', call, power) : call;
  }
}

/** Parse one scalar expression. Throws `ParseError` with a short reason. */
export function parseLatex(s: string): Node {
  return new Parser(tokenize(s)).parseAll();
}
