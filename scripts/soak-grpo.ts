/**
 * Soak test of GRPO's kill-and-resume (not part of `npm test`): for N minutes (default 20), runs `aha grpo` on a
 * fresh 'tiny' model, kills it with SIGKILL at random moments and resumes it with --resume until it finishes, then
 * checks that its final model.safetensors is byte-for-byte the one an uninterrupted run of the same recipe wrote,
 * and that no temporary folder is left. Each cycle draws new kill times; the script stops after the cycle that
 * crosses the time budget.
 *
 * Run: `node --import tsx scripts/soak-grpo.ts [--minutes 20] [--steps 40] [--seed 1]`. Exit 0 when every cycle
 * matched, 1 otherwise. Needs the native engine built (npm ci).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    steps: { type: 'string', default: '40' },
    seed: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
  },
});
const budgetMs = Number(values.minutes) * 60_000;
const steps = Number(values.steps);
let rngState = Number(values.seed) >>> 0 || 1;
/** xorshift32: the kill schedule is reproducible from --seed. */
const random = () => {
  rngState ^= rngState << 13;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5;
  return (rngState >>> 0) / 2 ** 32;
};

const aha = resolve('bin/aha.js');
const work = mkdtempSync(join(tmpdir(), 'aha-soak-'));
const log = (s: string) => process.stderr.write(`soak: ${s}\n`);

/** Runs `aha args`; with `killAfterMs`, SIGKILLs it then. Resolves with the exit code, or null when killed. */
function aharun(args: string[], killAfterMs?: number): Promise<{ code: number | null; ms: number; stderr: string }> {
  return new Promise((done, fail) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [aha, ...args], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, ms: Date.now() - t0, stderr });
    });
  });
}

function setup(): void {
  const model = join(work, 'model');
  const questions = Array.from({ length: 24 }, (_, i) => {
    const a = (i * 7) % 10;
    const b = (i * 3 + 1) % 10;
    return { question: `${a}+${b}`, answer: String(a + b) };
  });
  writeFileSync(join(work, 'train.jsonl'), questions.map((q) => JSON.stringify(q)).join('\n') + '\n');
  writeFileSync(
    join(work, 'r.yaml'),
    [
      `model: ${model}`,
      'dataset: { path: train.jsonl }',
      'prompt: "{question}="',
      'rewards: [{ name: accuracy, options: { strategies: [lastNumber] } }, { name: format }]',
      'grpo: { num_generations: 4, max_completion_length: 12, temperature: 1.0 }',
      `training: { max_steps: ${steps}, prompts_per_step: 4, learning_rate: 1.0e-3, save_steps: 1, save_total_limit: 2, seed: 3 }`,
    ].join('\n') + '\n',
  );
}

const finalWeights = (out: string) => readFileSync(join(work, out, 'final', 'model.safetensors'));
const hasCheckpoint = (out: string) =>
  existsSync(join(work, out)) && readdirSync(join(work, out)).some((n) => /^checkpoint-\d+$/.test(n));

async function main(): Promise<number> {
  const started = Date.now();
  mkdirSync(work, { recursive: true });
  const init = await aharun(['init-model', '--config', 'tiny', '--out', join(work, 'model'), '--seed', '7']);
  if (init.code !== 0) throw new Error(`init-model failed: ${init.stderr}`);
  setup();
  const ref = await aharun(['grpo', '--config', 'r.yaml', '--out', 'reference']);
  if (ref.code !== 0) throw new Error(`reference run failed: ${ref.stderr}`);
  const want = finalWeights('reference');
  log(`reference run: ${steps} steps in ${(ref.ms / 1000).toFixed(1)} s`);

  // Kill times are drawn over a whole run's length; a run that beats its kill shortens the span (the machine's load
  // varies), so that kills keep landing inside runs.
  let span = ref.ms;
  let cycles = 0;
  let kills = 0;
  let failures = 0;
  while (cycles === 0 || Date.now() - started < budgetMs) {
    cycles++;
    const out = `chaos-${cycles}`;
    let attempts = 0;
    for (;;) {
      attempts++;
      // Kill at a random moment of a run's length (startup included) for up to 20 attempts, then let it finish.
      const killAt = attempts <= 20 ? Math.round(300 + random() * span) : undefined;
      const args = ['grpo', '--config', 'r.yaml', '--out', out, ...(hasCheckpoint(out) ? ['--resume'] : [])];
      const r = await aharun(args, killAt);
      if (r.code === 0) {
        if (attempts === 1 && killAt !== undefined) span = Math.max(2000, Math.min(span, r.ms));
        break;
      }
      if (r.code !== null) throw new Error(`cycle ${cycles}: aha ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      kills++;
    }
    const leftovers = readdirSync(join(work, out)).filter((n) => n.endsWith('.tmp') || n.endsWith('.old'));
    const same = finalWeights(out).equals(want);
    if (!same || leftovers.length > 0) failures++;
    log(
      `cycle ${cycles}: ${attempts - 1} kills, final model ${same ? 'bit-identical' : 'DIFFERS'}` +
        `${leftovers.length ? `, leftovers: ${leftovers.join(', ')}` : ''} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
    if (!values.keep) rmSync(join(work, out), { recursive: true, force: true });
  }
  const verdict = failures === 0 ? 'PASS' : 'FAIL';
  console.log(
    `soak-grpo: ${verdict}: ${cycles} cycles, ${kills} SIGKILLs, ${failures} mismatches, ` +
      `${((Date.now() - started) / 60_000).toFixed(1)} minutes`,
  );
  return failures === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} finally {
  if (values.keep) log(`files kept in ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
