/**
 * Verifier throughput on a realistic mix: MATH-500's reference solutions (whole solution texts, read as
 * completions) against their answers, and against another problem's answer (mostly unequal), plus GSM8K's
 * worked solutions against their `#### N`. Run: `node --import tsx bench/verify.ts [--seconds 3]`.
 * Reports verifications per second on one core, after a warm-up pass (which loads mathjs).
 */
import { readFileSync } from 'node:fs';
import { readAnswer } from '../src/verify/extractAnswer.ts';
import { verifyAnswer } from '../src/verify/verify.ts';

const root = new URL('../data/benchmarks/', import.meta.url);
const rows = (name: string): Record<string, string>[] =>
  readFileSync(new URL(name, root), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, string>);

const math = rows('math500/test.jsonl');
const gsm = rows('gsm8k/test.jsonl').slice(0, 500);
const pairs: { gold: string; pred: string }[] = [
  ...math.map((r) => ({ gold: r.answer, pred: r.solution })),
  ...math.map((r, i) => ({ gold: math[(i + 1) % math.length].answer, pred: r.solution })),
  ...gsm.map((r) => ({ gold: readAnswer(r.answer, { strategies: ['gsm8k'] }).answer ?? '', pred: r.answer })),
];

const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 3;

let equal = 0;
for (const p of pairs) if (verifyAnswer(p.gold, p.pred).equal) equal++;

let n = 0;
let slowest = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) {
  for (const p of pairs) {
    const s = performance.now();
    verifyAnswer(p.gold, p.pred);
    slowest = Math.max(slowest, performance.now() - s);
    n++;
  }
}
const elapsed = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    pairs: pairs.length,
    equal_in_mix: equal,
    verifications: n,
    seconds: Number(elapsed.toFixed(2)),
    per_second: Math.round(n / elapsed),
    slowest_ms: Number(slowest.toFixed(1)),
  }),
);
