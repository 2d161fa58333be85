/**
 * Judges HumanEval's 164 canonical solutions in the sandbox and prints the throughput:
 * `node --import tsx bench/judgeHumanEval.ts [--pool N]`. Every one must be accepted.
 */
import { availableParallelism } from 'node:os';
import { judge } from '../src/judge/judge.ts';
import { humanEvalSubmission, loadHumanEval } from '../src/judge/humaneval.ts';
import { JudgePool } from '../src/judge/pool.ts';

const i = process.argv.indexOf('--pool');
const pool = new JudgePool(i > 0 ? Number(process.argv[i + 1]) : availableParallelism());
const rows = loadHumanEval();
const t0 = performance.now();
const results = await Promise.all(rows.map((r) => judge(humanEvalSubmission(r), { pool })));
const s = (performance.now() - t0) / 1000;
const bad = results.map((r, k) => [rows[k].task_id, r] as const).filter(([, r]) => r.verdict !== 'accepted');
for (const [id, r] of bad) console.log(`${id}: ${r.verdict}\n${r.stderr}`);
console.log(
  `HumanEval canonical solutions: ${rows.length - bad.length}/${rows.length} accepted in ${s.toFixed(2)} s ` +
    `(${(rows.length / s).toFixed(1)} programs/s, pool ${pool.size})`,
);
process.exitCode = bad.length === 0 ? 0 : 1;
