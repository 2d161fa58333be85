import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { mathEqual } from '../../src/verify/mathEquivalence.ts';

/** Pairs that must verify equal, checked in both directions. */
const EQUAL: Record<string, [string, string][]> = {
  integers: [
    ['42', '42'],
    ['025', '25'],
    ['27', '27.0'],
    ['-50', '-50'],
    ['+7', '7'],
    ['1000000', '10^6'],
    ['1024', '2^{10}'],
  ],
  decimals: [
    ['0.15', '.15'],
    ['326.5', '326.50'],
    ['.0000672', '6.72\\times 10^{-5}'],
    ['3.21', '3.210'],
  ],
  thousands: [
    ['7,425,000', '7425000'],
    ['10,\\!080', '10080'],
    ['11,\\! 111,\\! 111,\\! 100', '11111111100'],
    ['28800', '28{,}800'],
    ['1 000', '1000'],
  ],
  fractions: [
    ['\\frac{1}{2}', '0.5'],
    ['\\frac{1}{2}', '1/2'],
    ['\\dfrac{17}{50}', '0.34'],
    ['\\tfrac{3}{4}', '\\frac34'],
    ['\\frac12', '\\frac{1}{2}'],
    ['\\frac 59', '5/9'],
    ['\\frac9{19}', '\\frac{9}{19}'],
    ['\\frac{270}7', '270/7'],
    ['\\frac43', '\\frac{8}{6}'],
    ['-\\frac{35}{9}', '\\frac{-35}{9}'],
  ],
  'mixed numbers': [
    ['1\\frac{4}{5}', '\\frac{9}{5}'],
    ['137 \\frac{1}{2}', '137.5'],
    ['2\\frac12', '5/2'],
    ['-2\\frac{1}{2}', '-2.5'],
    ['\\frac{14}{3}', '4 2/3'],
  ],
  percentages: [
    ['50\\%', '50'],
    ['50\\%', '0.5'],
    ['15\\%', '\\frac{3}{20}'],
    ['33\\%', '33 percent'],
  ],
  'scientific notation': [
    ['2.5e3', '2500'],
    ['1.2E-3', '0.0012'],
    ['3\\times10^{8}', '300000000'],
    ['6.02 \\cdot 10^{2}', '602'],
  ],
  'pi and roots': [
    ['3\\sqrt{13}', '\\sqrt{117}'],
    ['11\\sqrt2', '\\sqrt{242}'],
    ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt{3}}'],
    ['\\sqrt[3]{27}', '3'],
    ['\\sqrt[3]{-8}', '-2'],
    ['288 \\pi', '288\\pi'],
    ['\\frac{20000}{\\pi}', '20000/pi'],
    ['18+2\\pi', '2\\pi + 18'],
    ['\\pi', '\\pi'],
    ['3*sqrt(13)', '3\\sqrt{13}'],
    ['2\\sqrt{5}', '\\sqrt{20}'],
  ],
  'complex numbers': [
    ['6 - 5i', '-5i+6'],
    ['1+2i', '2i + 1'],
    ['-1', 'i^2'],
  ],
  'normalisation noise': [
    ['90^\\circ', '90'],
    ['90^\\circ', '90^{\\circ}'],
    ['90^\\circ', '90 degrees'],
    ['\\$32,\\!348', '32348'],
    ['\\$18.90', '18.9'],
    ['\\$36', '36 dollars'],
    ['864 \\mbox{ inches}^2', '864'],
    ['864 \\mbox{ inches}^2', '864 square inches'],
    ['15\\mbox{ cm}^2', '15 cm^2'],
    ['5.4 \\text{ cents}', '5.4'],
    ['\\frac{270}7\\text{ degrees}', '\\frac{270}{7}'],
    ['5', '$5$'],
    ['5', '\\boxed{5}'],
    ['5', '5.'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3, \\pi/2)'],
    ['52_8', '52'],
    ['4210_{5}', '4210_5'],
    ['12', '12 apples'],
  ],
  'symbolic expressions': [
    ['p - q', '-q + p'],
    ['x^5 - x^4 + x^3 - x^2 + x - 1', '(x-1)(x^4+x^2+1)'],
    ['(a+5)(b+2)', 'ab + 2a + 5b + 10'],
    ['\\cot x', '\\frac{\\cos x}{\\sin x}'],
    ['2k+2', '2(k+1)'],
    ['\\frac{11+9a}{20}', '0.55 + 0.45a'],
    ['6r^2-4r-24', '2(3r^2-2r-12)'],
    ['x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1', '\\frac{x^9 - 1}{x - 1}'],
    ['\\sin^2 x + \\cos^2 x', '1'],
    ['xy', 'yx'],
    ['\\log_2 8', '3'],
    ['\\binom{5}{2}', '10'],
    ['5!', '120'],
    ['e^{i\\pi}', '-1'],
  ],
  'equations and assignments': [
    ['x=5', '5'],
    ['y = 2x + 3', '2x+3'],
    ['y = 2x + 3', '2x - y + 3 = 0'],
    ['y = -2x', '2x + y = 0'],
    ['5x - 7y + 11z + 4 = 0', '-5x + 7y - 11z = 4'],
    ['x = 5', '5 = x'],
  ],
  'tuples and points': [
    ['(6,31,-1)', '(6, 31, -1)'],
    ['\\left( \\frac{3}{2}, -13 \\right)', '(1.5, -13)'],
    ['(1,2)', 'x = 1, y = 2'],
  ],
  intervals: [
    ['(3,4]', '(3, 4]'],
    ['(-\\infty, 0]', 'x \\le 0'],
    ['(5,\\infty)', 'x > 5'],
    ['x \\in [-2,7]', '[-2, 7]'],
    ['x \\in [-2,7]', '-2 \\le x \\le 7'],
    ['\\left(\\frac{3}{5},\\frac{8}{3}\\right]', '(0.6, 8/3]'],
    ['(0,9) \\cup (9,36)', '(9,36) \\cup (0,9)'],
    ['(-\\infty, 2) \\cup (3, \\infty)', 'x < 2 \\text{ or } x > 3'],
    ['(-\\infty,\\infty)', '\\mathbb{R}'],
  ],
  'sets and unordered lists': [
    ['\\{1,2\\}', '\\{2,1\\}'],
    ['1, 2', '2, 1'],
    ['1,-2', '-2 \\text{ and } 1'],
    ['3, 5, 7', '\\{7, 5, 3\\}'],
    ['1 \\pm \\sqrt{19}', '1 - \\sqrt{19}, 1 + \\sqrt{19}'],
    ['\\{1\\pm\\sqrt{5},-2\\}', '-2, 1+\\sqrt5, 1-\\sqrt5'],
    ['\\emptyset', '\\{\\}'],
    ['1,-2', 'x = 1, x = -2'],
  ],
  matrices: [
    [
      '\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}',
      '\\begin{bmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{bmatrix}',
    ],
    ['\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}', '\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}'],
    ['\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}', '(-2, -14, -7)'],
  ],
  'text answers': [
    ['\\text{Evelyn}', 'Evelyn'],
    ['\\text{east}', 'East'],
    ['\\text{ellipse}', 'the ellipse'],
    ['\\text{(C)}', 'C'],
    ['\\text{(C)}', '(C)'],
    ['\\text{(E)}', 'E'],
    ['\\text{even}', '\\textbf{Even}'],
  ],
};

/** Pairs that must not verify equal, checked in both directions. */
const NOT_EQUAL: Record<string, [string, string][]> = {
  integers: [
    ['1000000000', '1000000001'],
    ['14', '15'],
    ['0', '0.001'],
    ['12', '1,2'],
    ['25', '52'],
  ],
  fractions: [
    ['\\frac{3}{4}', '0.7'],
    ['\\frac{1}{3}', '0.33'],
    ['1\\frac{4}{5}', '\\frac{4}{5}'],
  ],
  percentages: [
    ['50\\%', '5'],
    ['50\\%', '0.05'],
  ],
  'pi and roots': [
    ['\\pi', '3.14'],
    ['\\sqrt{2}', '1.41'],
    ['\\sqrt[3]{2}', '\\sqrt{2}'],
  ],
  'complex numbers': [
    ['6 - 5i', '6 + 5i'],
    ['1+2i', '1'],
  ],
  'symbolic expressions': [
    ['p - q', 'q - p'],
    ['3R^2', '3r^2'],
    ['(a+5)(b+2)', '(a+2)(b+5)'],
    ['\\cot x', '\\tan x'],
    ['x', 'y'],
    ['5', '5x'],
  ],
  'equations and assignments': [
    ['y = 2x + 3', 'y = 3x + 2'],
    ['5x - 7y + 11z + 4 = 0', '5x - 7y + 11z = 4'],
    ['y = -2x', 'x = -2y'],
  ],
  intervals: [
    ['(0,9) \\cup (9,36)', '(0,36)'],
    ['(5,\\infty)', '[5,\\infty)'],
    ['x \\in [-2,7]', '(-2,7)'],
  ],
  'sets and unordered lists': [
    ['\\{1,2\\}', '\\{1,3\\}'],
    ['3, 5, 7', '3, 5'],
    ['1 \\pm \\sqrt{19}', '1+\\sqrt{19}'],
    ['\\{1, 1, 2\\}', '\\{1, 2\\}'],
  ],
  'text answers': [
    ['\\text{east}', 'west'],
    ['\\text{(C)}', 'D'],
    ['\\text{Evelyn}', 'Evelyn Smith'],
  ],
  'mismatched shapes': [
    ['(1,2)', '\\{1,2\\}'],
    ['5', '(5, 5)'],
    ['\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}', '(1, 2, 3)'],
    ['[1,2]', '1, 2'],
  ],
};

/** Deliberately wrong answers, grouped by the mistake; every one must be rejected. */
const WRONG: Record<string, [string, string][]> = {
  'off by one': [
    ['204', '205'],
    ['2220', '2219'],
    ['\\frac{3}{56}', '\\frac{4}{56}'],
    ['(6,31,-1)', '(6,31,0)'],
    ['x=5', 'x=6'],
  ],
  'wrong sign': [
    ['-50', '50'],
    ['-\\frac{\\pi}{6}', '\\frac{\\pi}{6}'],
    ['6 - 5i', '-6 - 5i'],
    ['(15,-29)', '(15,29)'],
    ['-13x+3', '13x+3'],
  ],
  'inverted fraction': [
    ['\\frac{3}{56}', '\\frac{56}{3}'],
    ['\\frac{243}{625}', '\\frac{625}{243}'],
    ['\\frac 59', '\\frac95'],
    ['\\frac{2}{1005}', '502.5'],
  ],
  'missing factor or root': [
    ['3\\sqrt{13}', '\\sqrt{13}'],
    ['3\\sqrt{13}', '39'],
    ['288 \\pi', '288'],
    ['70 \\sqrt{2}', '70'],
    ['2k+2', 'k+1'],
    ['16 \\sqrt{3}', '16 \\cdot 3'],
  ],
  'open end where closed belongs': [
    ['(3,4]', '(3,4)'],
    ['(-\\infty, 0]', '(-\\infty, 0)'],
    ['[1,2]', '[1,2)'],
    ['x \\in [-2,7]', '(-2,7]'],
  ],
  'wrong tuple order': [
    ['(-2,1)', '(1,-2)'],
    ['(15,-29)', '(-29,15)'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(\\frac{\\pi}{2}, 3)'],
    ['\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}', '(16, -7, 5)'],
  ],
};

describe('mathEqual: equivalent forms are accepted (both directions)', () => {
  for (const [group, pairs] of Object.entries(EQUAL)) {
    it(group, () => {
      for (const [a, b] of pairs) {
        for (const [g, p] of [
          [a, b],
          [b, a],
        ]) {
          const r = mathEqual(g, p);
          assert.equal(
            r.equal,
            true,
            `${JSON.stringify(g)} vs ${JSON.stringify(p)}: ${r.reason} (${r.goldParsed} | ${r.predParsed})`,
          );
        }
      }
    });
  }
});

describe('mathEqual: different answers are rejected (both directions)', () => {
  for (const [group, pairs] of Object.entries(NOT_EQUAL)) {
    it(group, () => {
      for (const [a, b] of pairs) {
        for (const [g, p] of [
          [a, b],
          [b, a],
        ]) {
          const r = mathEqual(g, p);
          assert.equal(r.equal, false, `${JSON.stringify(g)} vs ${JSON.stringify(p)} accepted: ${r.reason}`);
          assert.ok(r.reason, 'a rejection carries a reason');
        }
      }
    });
  }
});

describe('mathEqual: table of deliberately wrong answers', () => {
  for (const [mistake, pairs] of Object.entries(WRONG)) {
    it(`rejects: ${mistake}`, () => {
      for (const [gold, wrong] of pairs) {
        const r = mathEqual(gold, wrong);
        assert.equal(r.equal, false, `${JSON.stringify(wrong)} accepted for ${JSON.stringify(gold)}: ${r.reason}`);
        // The gold itself still verifies, so the rejection is about the mistake.
        assert.equal(mathEqual(gold, gold).equal, true);
      }
    });
  }
});

describe('mathEqual: options and reporting', () => {
  it('relative tolerance is configurable', () => {
    // |3.1415 - pi| / pi = 2.9e-5.
    assert.equal(mathEqual('\\pi', '3.1415').equal, false);
    assert.equal(mathEqual('\\pi', '3.1415', { rtol: 1e-4 }).equal, true);
    assert.equal(mathEqual('\\pi', '3.1415', { rtol: 1e-5 }).equal, false);
    assert.equal(mathEqual('\\pi', '3.1415926536').equal, true);
    // Integers are exact whatever the tolerance.
    assert.equal(mathEqual('1000000', '1000001', { rtol: 1e-3 }).equal, false);
  });

  it('reports canonical parsed forms', () => {
    const r = mathEqual('\\left( 3, \\frac{\\pi}{2} \\right)', '(3, \\pi/2)');
    assert.equal(r.goldParsed, '(3, pi/2)');
    assert.equal(r.predParsed, '(3, pi/2)');
    assert.equal(mathEqual('\\$32,\\!348', '1').goldParsed, '32348');
    assert.equal(mathEqual('\\text{Evelyn}', 'x').goldParsed, 'evelyn');
  });

  it('unparseable answers give equal:false with a reason, never a throw', () => {
    const bad: unknown[] = [
      '',
      '   ',
      '\\frac{',
      '(1,2',
      '\\unknowncommand{3}',
      '1 +',
      '{{{',
      'x'.repeat(5000),
      null,
      undefined,
      {},
      '\\sqrt',
      '2 3',
    ];
    for (const b of bad) {
      const r1 = mathEqual('5', b as string);
      assert.equal(r1.equal, false);
      assert.match(r1.reason ?? '', /pred: unparseable/);
      assert.equal(r1.predParsed, null);
      const r2 = mathEqual(b as string, '5');
      assert.equal(r2.equal, false);
      assert.match(r2.reason ?? '', /gold: unparseable/);
    }
  });

  it('pathological inputs are bounded and rejected, not hung', () => {
    const cases = [
      '('.repeat(300) + '1' + ')'.repeat(300),
      '{'.repeat(300) + '1' + '}'.repeat(300),
      '2^{2^{2^{2^{2^{2^{2}}}}}}',
      '10^{10^{10}}',
      '(10^{100})!',
      '99999!',
      '\\binom{100000}{50000}',
      '1+'.repeat(400) + '1',
      '\\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1',
      '|'.repeat(301),
      Array.from({ length: 60 }, (_, i) => `\\sin(x+${i})`).join(', '),
      '\\binom{100000000}{50000000}',
      '\\binom{10^{15}}{10^{14}}',
    ];
    for (const c of cases) {
      const r = mathEqual('2', c);
      assert.equal(r.equal, false, c.slice(0, 40));
    }
    // Long flat chains stay within mathjs' stack.
    assert.equal(mathEqual('401x', 'x+'.repeat(400) + 'x').equal, true);
    // A large exact integer is still exact.
    assert.equal(mathEqual('2^{100}', '1267650600228229401496703205376').equal, true);
    assert.equal(mathEqual('2^{100}', '1267650600228229401496703205377').equal, false);
  });

  it('a tiny time budget rejects rather than overruns', () => {
    const big = Array.from({ length: 40 }, (_, i) => `x^${i}`).join('+');
    const r = mathEqual(big, `${big}+0`, { timeoutMs: -1 });
    assert.equal(r.equal, false);
    assert.equal(r.reason, 'time budget exceeded');
  });
});
