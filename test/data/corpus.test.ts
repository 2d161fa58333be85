import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arithmeticTask } from '../../src/data/tasks/arithmetic.ts';
import {
  DEFAULT_CORPUS_MIX,
  DEMO_CHAR_ALPHABET,
  buildPretrainCorpus,
  charTokenCount,
  corpusAlphabet,
  corpusStats,
  corpusToJsonl,
  stripSpecialTokens,
  type CorpusSample,
} from '../../src/data/tasks/corpus.ts';
import { R1_ZERO_TEMPLATE } from '../../src/data/r1ZeroTemplate.ts';
import { Rng } from '../../src/data/rng.ts';
import { AhaError } from '../../src/errors.ts';

const task = arithmeticTask();
const N = 6000;
const corpus = buildPretrainCorpus(task, { seed: 1234, size: N });

/** Reference value of an expression: JavaScript's own parser, independent of the task's reducer. */
function value(expr: string): number {
  assert.match(expr, /^\d+([+*-]\d+)*$/, `not an expression: ${expr}`);
  return Function(`return (${expr});`)() as number;
}
const opCount = (expr: string) => (expr.match(/[+*-]/g) ?? []).length;

interface Parsed {
  question: string;
  style: string;
  format: 'r1' | 'plain';
  reasoning: string | null;
  stated: string;
}

/** Read a corpus document back from its text alone. */
function parse(text: string): Parsed {
  let m: RegExpExecArray | null;
  const completion = (question: string, style: string, rest: string): Parsed => {
    if ((m = /^ <think>\n([\s\S]*)\n<\/think> <answer>(.*)<\/answer>$/.exec(rest))) {
      // A tagged direct answer only restates the question inside <think>.
      return { question, style, format: 'r1', reasoning: m[1] === question ? null : m[1], stated: m[2] };
    }
    if ((m = /^ (?:the answer is )?(\d+)\.?$/.exec(rest))) return { question, style, format: 'plain', reasoning: null, stated: m[1] };
    m = /^(?: step by step:| let us think step by step\.)?\n([\s\S]*)\n(?:so )?the answer is (\d+)\.$/.exec(rest);
    assert.ok(m, `unparsed completion: ${JSON.stringify(rest)}`);
    return { question, style, format: 'plain', reasoning: m[1], stated: m[2] };
  };
  if ((m = /^User: (.+?)\. Assistant:([\s\S]*)$/.exec(text))) return completion(m[1], 'template', m[2]);
  if ((m = /^Q: (.+)\nA:([\s\S]*)$/.exec(text))) return completion(m[1], 'qa', m[2]);
  if ((m = /^problem: (.+)\n([\s\S]*)$/.exec(text))) {
    const q = m[1], rest = m[2];
    if ((m = /^answer: (\d+)$/.exec(rest))) return { question: q, style: 'problem', format: 'plain', reasoning: null, stated: m[1] };
    if ((m = /^solution:\n([\s\S]*)\nanswer: (\d+)$/.exec(rest))) return { question: q, style: 'problem', format: 'plain', reasoning: m[1], stated: m[2] };
    assert.ok(rest.startsWith('solution: <think>'), `unparsed problem: ${JSON.stringify(text)}`);
    return { ...completion(q, 'problem', rest.slice('solution:'.length)) };
  }
  if ((m = /^(\d+(?:[+*-]\d+)*)=(\d+)$/.exec(text))) return { question: m[1], style: 'equation', format: 'plain', reasoning: null, stated: m[2] };
  const lines = text.split('\n');
  const finals = lines.filter((l) => /^=\d+$/.test(l));
  assert.ok(finals.length >= 1, `unparsed equation: ${JSON.stringify(text)}`);
  return { question: lines[0], style: 'equation', format: 'plain', reasoning: text, stated: finals.at(-1)!.slice(1) };
}

interface Audit {
  final: number;
  corrected: number;
  /** Rewrite lines (not followed by a correction) whose value differs from the question's. */
  wrongLines: number;
  checked: boolean;
}

/**
 * Recompute a written solution line by line: every '=' line must be exactly one operation applied to the previous
 * expression; a line followed by a reflection is a slip, and the reflection must state the true fact; a
 * self-check must list true facts only when the solution is clean.
 */
function audit(question: string, reasoning: string): Audit {
  const gold = value(question);
  const lines = reasoning.split('\n');
  assert.equal(lines[0], question, 'solutions restate the question first');
  let prev = question;
  let corrected = 0, wrongLines = 0, checked = false;
  let final = NaN;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('=')) {
      const expr = line.slice(1);
      assert.equal(opCount(expr), opCount(prev) - 1, `one operation per line: ${prev} -> ${expr}`);
      const next = lines[i + 1] ?? '';
      const isSlip = /^(wait|hmm),/.test(next) && !/check|verify/.test(next);
      if (isSlip) {
        assert.notEqual(value(expr), gold, `a slip line is wrong: ${expr}`);
        const f = /(\d+)([+*-])(\d+)(?:=| is )(\d+)/.exec(next);
        assert.ok(f, `reflection states a fact: ${next}`);
        assert.equal(value(`${f[1]}${f[2]}${f[3]}`), Number(f[4]), `the reflection is right: ${next}`);
        const not = /not (\d+)/.exec(next);
        if (not) assert.ok(expr.split(/[+*-]/).includes(not[1]), `"not ${not[1]}" names the slipped value in ${expr}`);
        const fixed = lines[i + 2];
        assert.ok(fixed?.startsWith('='), 'the fixed line follows the reflection');
        assert.equal(opCount(fixed.slice(1)), opCount(prev) - 1, 'the fix redoes the same step');
        assert.equal(value(fixed.slice(1)), gold, `the fixed line is right: ${fixed}`);
        corrected++;
        i += 1; // skip the reflection; the fixed line is audited next
        continue;
      }
      if (value(expr) !== gold) wrongLines++;
      prev = expr;
      if (opCount(expr) === 0) final = Number(expr);
    } else {
      const c = /^(?:let me check|wait, let me check|check|let me verify): (.*)\. (?:ok|correct|yes)\.$/.exec(line);
      assert.ok(c, `unexpected line: ${JSON.stringify(line)}`);
      assert.equal(i, lines.length - 1, 'the self-check comes last');
      const facts = c[1].split(', ');
      assert.equal(facts.length, opCount(question), 'one fact per step');
      if (wrongLines === 0) {
        for (const f of facts) {
          const [lhs, rhs] = f.split('=');
          assert.equal(value(lhs), Number(rhs), `check fact ${f}`);
        }
      }
      checked = true;
    }
  }
  assert.ok(Number.isFinite(final), 'the solution ends on a single number');
  return { final, corrected, wrongLines, checked };
}

test('every document parses back to its metadata; train questions only', () => {
  for (const s of corpus) {
    const p = parse(s.text);
    assert.equal(p.question, s.question);
    assert.equal(p.style, s.style);
    assert.equal(p.format, s.format);
    assert.equal(p.stated, s.stated);
    assert.equal(p.reasoning === null, s.mode === 'direct', s.text);
    assert.equal(s.gold, String(value(s.question)));
    assert.equal(s.correct, Number(p.stated) === value(s.question), s.text);
    assert.equal(task.splitOf(s.question), 'train');
  }
});

test('worked solutions marked correct arrive at the right answer through right steps', () => {
  let audited = 0, reflected = 0, checks = 0;
  for (const s of corpus) {
    if (s.mode === 'direct') continue;
    const p = parse(s.text);
    const a = audit(s.question, p.reasoning!);
    assert.equal(String(a.final), s.stated, 'the stated answer is the one the solution arrived at');
    if (s.correct) {
      assert.equal(a.final, value(s.question));
      assert.equal(a.wrongLines, 0, s.text);
    } else {
      assert.equal(s.mode, 'worked');
      assert.equal(s.slip, 'uncorrected');
      assert.ok(a.wrongLines > 0 && a.corrected === 0, s.text);
    }
    if (s.mode === 'reflect') {
      assert.equal(a.corrected, 1, s.text);
      assert.equal(s.correct, true, 'slip-and-correct samples end correct');
      reflected++;
    } else assert.equal(a.corrected, 0);
    assert.equal(a.checked, s.mode === 'verify');
    if (a.checked) checks++;
    audited++;
  }
  assert.ok(audited > 0.5 * N && reflected > 0.08 * N && checks > 0.08 * N, `${audited} ${reflected} ${checks}`);
});

test('tagged documents have exactly the R1-Zero output shape', () => {
  const strict = /^ <think>\n[^<]+\n<\/think> <answer>\d+<\/answer>$/;
  for (const s of corpus) {
    const tags = (s.text.match(/<\/?(think|answer)>/g) ?? []).length;
    if (s.format === 'r1') {
      assert.equal(tags, 4);
      const after = s.text.slice(s.text.indexOf(' <think>'));
      assert.match(after, strict);
    } else assert.equal(tags, 0, s.text);
  }
});

test('mix ratios follow the defaults within sampling tolerance', () => {
  const st = corpusStats(corpus);
  const mix = DEFAULT_CORPUS_MIX;
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  // n = 6000: sd of a share <= 0.0065; tolerance about 4 sd.
  for (const [k, w] of Object.entries(mix.styles)) {
    const got = st.byStyle[k as keyof typeof st.byStyle] / N;
    assert.ok(Math.abs(got - w / sum(mix.styles)) < 0.025, `style ${k}: ${got}`);
  }
  for (const [k, w] of Object.entries(mix.modes)) {
    const got = st.byMode[k as keyof typeof st.byMode] / N;
    assert.ok(Math.abs(got - w / sum(mix.modes)) < 0.025, `mode ${k}: ${got}`);
  }
  // Format rate per style, counted from the text itself.
  for (const style of ['template', 'qa', 'problem', 'equation'] as const) {
    const xs = corpus.filter((s) => s.style === style);
    const tagged = xs.filter((s) => s.text.includes('<think>')).length / xs.length;
    const want = style === 'equation' ? 0 : mix.format[style];
    assert.ok(Math.abs(tagged - want) < 0.04, `format in ${style}: ${tagged}`);
  }
  assert.ok(Math.abs(st.templateFormatRate - mix.format.template) < 0.04);
  // Direct answers: right with the per-step probability.
  for (let steps = 1; steps <= 4; steps++) {
    const xs = corpus.filter((s) => s.mode === 'direct' && s.steps === steps);
    const acc = xs.filter((s) => Number(s.stated) === value(s.question)).length / xs.length;
    assert.ok(xs.length > 300, `${xs.length} direct answers at ${steps} steps`);
    assert.ok(Math.abs(acc - mix.directAccuracy[steps]) < 0.08, `direct accuracy at ${steps} steps: ${acc}`);
  }
  // Wrong direct answers are near misses, not noise.
  for (const s of corpus.filter((x) => x.mode === 'direct' && !x.correct)) {
    const d = Math.abs(Number(s.stated) - value(s.question));
    const swapped = Number(s.gold.split('').reverse().join(''));
    assert.ok(d <= 3 || d === 10 || Number(s.stated) === swapped, s.text);
  }
  const worked = corpus.filter((s) => s.mode === 'worked');
  const slipRate = worked.filter((s) => s.slip === 'uncorrected').length / worked.length;
  assert.ok(Math.abs(slipRate - mix.uncorrectedSlip) < 0.02, `uncorrected slips ${slipRate}`);
});

test('the corpus is deterministic in the seed and changes with it', () => {
  const again = buildPretrainCorpus(task, { seed: 1234, size: 300 });
  assert.equal(corpusToJsonl(again), corpusToJsonl(corpus.slice(0, 300)));
  const other = buildPretrainCorpus(task, { seed: 1235, size: 300 });
  assert.notEqual(corpusToJsonl(other), corpusToJsonl(again));
  // Changing the mix keeps the same questions (separate random streams).
  const remixed = buildPretrainCorpus(task, { seed: 1234, size: 300, mix: { modes: { direct: 1, worked: 0, reflect: 0, verify: 0 } } });
  assert.deepEqual(remixed.map((s) => s.question), again.map((s) => s.question));
  assert.ok(remixed.every((s) => s.mode === 'direct'));
});

test('the corpus never contains a test question', () => {
  const testQs = new Set(task.generate(new Rng(1), 3000, 'test').map((e) => e.question));
  for (const s of corpus) assert.ok(!testQs.has(s.question), s.question);
});

test('the alphabet covers every character of the corpus and both templates; documents are short', () => {
  assert.equal(corpusAlphabet(task), DEMO_CHAR_ALPHABET);
  assert.equal(new Set(DEMO_CHAR_ALPHABET).size, DEMO_CHAR_ALPHABET.length, 'no duplicates');
  const allowed = new Set(DEMO_CHAR_ALPHABET);
  for (const s of corpus) for (const ch of stripSpecialTokens(s.text)) assert.ok(allowed.has(ch), `${JSON.stringify(ch)} in ${s.text}`);
  for (const ch of stripSpecialTokens(R1_ZERO_TEMPLATE)) assert.ok(allowed.has(ch), JSON.stringify(ch));
  const st = corpusStats(corpus);
  assert.ok(st.maxTokens <= 200, `longest document ${st.maxTokens} tokens`);
  assert.ok(st.meanTokens > 30 && st.meanTokens < 80, `mean ${st.meanTokens}`);
  assert.equal(charTokenCount('User: 1+1. Assistant: <think>\n1+1\n</think> <answer>2</answer>'), 'User: 1+1. Assistant: '.length + 1 + 5 + 1 + 1 + 1 + 1 + 1);
});

test('corpusToJsonl writes one {text} object per line', () => {
  const lines = corpusToJsonl(corpus.slice(0, 50)).trimEnd().split('\n');
  assert.equal(lines.length, 50);
  lines.forEach((l, i) => assert.deepEqual(JSON.parse(l), { text: corpus[i].text }));
  assert.equal(corpusToJsonl([]), '');
});

test('a bad mix or size is an AhaError', () => {
  assert.throws(() => buildPretrainCorpus(task, { seed: 1, size: -1 }), AhaError);
  assert.throws(() => buildPretrainCorpus(task, { seed: 1, size: 10, mix: { format: { template: 1.5 } } }), AhaError);
  assert.throws(() => buildPretrainCorpus(task, { seed: 1, size: 10, mix: { modes: { direct: 0, worked: 0, reflect: 0, verify: 0 } } }), AhaError);
  assert.throws(() => buildPretrainCorpus(task, { seed: 1, size: 10, mix: { styles: { chat: 1 } as never } }), AhaError);
  assert.throws(() => buildPretrainCorpus(task, { seed: 1, size: 10, mix: { directAccuracy: [] } }), AhaError);
});

test('a corpus for the "*" variant also audits clean', () => {
  const mul = arithmeticTask({ ops: '+-*', maxValue: 150 });
  const xs: CorpusSample[] = buildPretrainCorpus(mul, { seed: 3, size: 1500 });
  assert.ok(xs.some((s) => s.question.includes('*')));
  for (const s of xs) {
    if (s.mode === 'direct') continue;
    const p = parse(s.text);
    const a = audit(s.question, p.reasoning!);
    if (s.correct) assert.equal(a.final, value(s.question), s.text);
  }
});
