// The verifier's table: gold/prediction pairs written for this project (verifyTable.tsv), each rule with an
// equal and a deliberately unequal case. The prediction is read as a whole completion, as the reward reads it.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { verifyAnswer } from '../../src/verify/verify.ts';

type Row = { line: number; rule: string; equal: boolean; gold: string; pred: string };

function readTable(): Row[] {
  const text = readFileSync(new URL('./verifyTable.tsv', import.meta.url), 'utf8');
  const rows: Row[] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '' || l.startsWith('#')) return;
    const [rule, mark, gold, pred, ...rest] = l.split('\t');
    if (rest.length > 0 || pred === undefined || (mark !== '=' && mark !== '!'))
      throw new Error(`verifyTable.tsv line ${i + 1}: expected rule, =|!, gold, pred`);
    rows.push({ line: i + 1, rule, equal: mark === '=', gold, pred: pred.replace(/⏎/g, '\n') });
  });
  return rows;
}

const rows = readTable();

describe('verifier table', () => {
  it('has at least 300 pairs, and every rule has both an equal and an unequal case', () => {
    assert.ok(rows.length >= 300, `${rows.length} rows`);
    const rules = new Map<string, Set<boolean>>();
    for (const r of rows) rules.set(r.rule, (rules.get(r.rule) ?? new Set()).add(r.equal));
    for (const [rule, kinds] of rules) if (rule !== 'robust' && rule !== 'wrong') assert.equal(kinds.size, 2, rule);
  });

  for (const rule of [...new Set(rows.map((r) => r.rule))]) {
    it(`rule ${rule}`, () => {
      const failures: string[] = [];
      for (const r of rows.filter((x) => x.rule === rule)) {
        const v = verifyAnswer(r.gold, r.pred);
        if (v.equal !== r.equal)
          failures.push(
            `line ${r.line}: ${JSON.stringify(r.gold)} vs ${JSON.stringify(r.pred)}: expected ${r.equal ? 'equal' : 'unequal'}, ` +
              `read ${JSON.stringify(v.predAnswer)} (${v.rule}) as ${v.predParsed}, gold ${v.goldParsed}: ${v.reason}`,
          );
      }
      assert.deepEqual(failures, []);
    });
  }

  it('the verdict does not depend on which side is the reference, for bare answers', () => {
    const failures: string[] = [];
    for (const r of rows.filter((x) => !x.pred.includes('\n') && x.rule !== 'extract' && x.rule !== 'gsm8k')) {
      const v = verifyAnswer(r.pred, r.gold, { predExtraction: 'answer' });
      const w = verifyAnswer(r.gold, r.pred, { predExtraction: 'answer' });
      if (v.equal !== w.equal) failures.push(`line ${r.line}: ${r.gold} / ${r.pred}`);
    }
    assert.deepEqual(failures, []);
  });
});
