import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStageMarker, runR1Pipeline } from '../../src/r1/pipeline.ts';
import { loadPipelineRecipe, parsePipelineRecipe, STAGE_NAMES } from '../../src/r1/pipelineRecipe.ts';
import { AhaError } from '../../src/errors.ts';
import { fakeBase, stubEval, stubRecipe, stubRunners, type StubLog } from './pipelineStubs.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-r1p-'));
after(() => rmSync(root, { recursive: true, force: true }));
const base = fakeBase(join(root, 'base'));
const quiet = () => {};
const evalStub = async (_dir: string, c: { stage: string }) => stubEval(c.stage === 'base' ? 0.1 : 0.5);

test('recipe errors name the unknown stage or field, with the file, before any work starts', () => {
  const bad = (patch: Record<string, unknown>, re: RegExp) => {
    const raw = { ...stubRecipe(base), ...patch };
    assert.throws(
      () => parsePipelineRecipe(raw, 'r1.yaml'),
      (e: unknown) => e instanceof AhaError && re.test(e.message),
      `expected ${re}`,
    );
  };
  bad(
    { stages: { cold_start_sft: {}, rejection: {} } },
    /^r1\.yaml: stages: unknown stage 'rejection' \(stages: cold_start_sft, reasoning_rl, rejection_sft, all_scenarios_rl\)$/,
  );
  bad({ stages: { reasoning_rl: { prompt: 3 } } }, /^r1\.yaml: stages\.reasoning_rl: unknown field 'prompt'$/);
  bad(
    { stages: { reasoning_rl: { training: { lr: 1 } } } },
    /^r1\.yaml: stages\.reasoning_rl: training: unknown field 'lr'$/,
  );
  bad(
    { stages: { reasoning_rl: { grpo: { num_generation: 4 } } } },
    /^r1\.yaml: stages\.reasoning_rl: grpo: unknown field 'num_generation'$/,
  );
  bad(
    { stages: { reasoning_rl: { rewards: { accuracy: 1, lang: 1 } } } },
    /^r1\.yaml: stages\.reasoning_rl\.rewards: unknown field 'lang'$/,
  );
  bad(
    { stages: { cold_start_sft: { sft: { learnig_rate: 1 } } } },
    /^r1\.yaml: stages\.cold_start_sft\.sft: unknown field 'learnig_rate'$/,
  );
  bad(
    { stages: { rejection_sft: { sft: { learning_rate: 'high' } } } },
    /^r1\.yaml: stages\.rejection_sft\.sft\.learning_rate: .*number/,
  );
  bad({ filters: { max_paragraph: 3 } }, /^r1\.yaml: filters: unknown field 'max_paragraph'$/);
  bad({ basemodel: 'x' }, /^r1\.yaml: unknown field 'basemodel'$/);
  bad({ stages: {} }, /stages: no stage/);
  bad({ language: 'klingon' }, /^r1\.yaml: language: .*'klingon'/);
  bad({ summary_template: 'no answer slot' }, /summary_template: must contain \{answer\}/);
  bad(
    { stages: { all_scenarios_rl: { general_rewards: [{ name: './r.ts#f' }] } } },
    /general_dataset: general_rewards need prompts/,
  );

  const file = join(root, 'typo.yaml');
  writeFileSync(
    file,
    `base_model: ${base}\ntask: arithmetic\nstages:\n  cold_start_sft: {}\n  reasoning_rl:\n    traning: {max_steps: 3}\n`,
  );
  assert.throws(
    () => loadPipelineRecipe(file),
    (e: unknown) => e instanceof AhaError && e.message === `${file}: stages.reasoning_rl: unknown field 'traning'`,
  );
  const ok = parsePipelineRecipe(stubRecipe(base), 'r1.yaml');
  assert.deepEqual(ok.stages.reasoning_rl!.rewards, { accuracy: 1, format: 1, language: 1 });
  assert.equal(ok.stages.rejection_sft!.max_per_prompt, 2);
});

test('unknown --stage, a recipe without that stage, and missing files fail before the run directory is touched', async () => {
  const out = join(root, 'never');
  const log: StubLog = { calls: [] };
  const run = (recipe: Record<string, unknown>, stage?: string) =>
    runR1Pipeline(recipe as never, { outDir: out, stage, runners: stubRunners(log), evaluate: evalStub, log: quiet });
  await assert.rejects(run(stubRecipe(base), 'rejection'), /--stage rejection: unknown stage \(stages: cold_start_sft/);
  await assert.rejects(
    run({ ...stubRecipe(base), stages: { reasoning_rl: {} } }, 'rejection_sft'),
    /--stage rejection_sft: recipe has no such stage/,
  );
  await assert.rejects(
    run({ ...stubRecipe(base), base_model: join(root, 'nope') }),
    /base_model: .*nope has no config\.json/,
  );
  await assert.rejects(
    run({ ...stubRecipe(base), stages: { rejection_sft: { non_reasoning_data: 'missing.jsonl' } } }),
    /stages\.rejection_sft\.non_reasoning_data: .*missing\.jsonl not found/,
  );
  assert.equal(existsSync(out), false);
  assert.equal(log.calls.length, 0);
});

test('a run that dies inside a stage keeps its finished stages; --resume continues the unfinished one', async () => {
  const out = join(root, 'crash');
  const log: StubLog = { calls: [] };
  await assert.rejects(
    runR1Pipeline(stubRecipe(base), {
      outDir: out,
      runners: stubRunners(log, { failIn: 'reasoning_rl' }),
      evaluate: evalStub,
      log: quiet,
    }),
    /killed inside reasoning_rl/,
  );
  assert.ok(readStageMarker(out, 'cold_start_sft'));
  assert.equal(readStageMarker(out, 'reasoning_rl'), null);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'cold_start_sft', 'eval.json'), 'utf8')).pass_at_1, 0.5);
  assert.equal(JSON.parse(readFileSync(join(out, 'base_eval.json'), 'utf8')).pass_at_1, 0.1);

  // Without --resume the run directory is refused, naming what to do.
  await assert.rejects(
    runR1Pipeline(stubRecipe(base), { outDir: out, runners: stubRunners(log), evaluate: evalStub, log: quiet }),
    /already holds an r1 run: pass --resume/,
  );
  await assert.rejects(
    runR1Pipeline(stubRecipe(base), {
      outDir: out,
      stage: 'reasoning_rl',
      runners: stubRunners(log),
      evaluate: evalStub,
      log: quiet,
    }),
    /stage reasoning_rl was interrupted: pass --resume/,
  );

  log.calls.length = 0;
  let evals = 0;
  const r = await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    resume: true,
    runners: stubRunners(log),
    evaluate: async (d, c) => {
      evals++;
      return evalStub(d, c);
    },
    log: quiet,
  });
  assert.equal(r.interrupted, false);
  assert.deepEqual(
    log.calls.map((c) => c.name),
    ['reasoning_rl', 'rejection_sft', 'all_scenarios_rl'],
    'cold_start_sft is not run again',
  );
  assert.deepEqual(
    log.calls.map((c) => [c.resume, c.sawPartial]),
    [
      [true, true],
      [false, false],
      [false, false],
    ],
  );
  assert.equal(evals, 3, 'no second base evaluation, none for the finished stage');
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['skipped', 'done', 'done', 'done'],
  );

  // Who starts from what: RL from the cold start; rejection sampling from RL, SFT from the base; stage 4 from stage 3.
  const ck = (s: string) => resolve(out, s, 'model');
  const [rl, rej, all] = log.calls;
  assert.equal(rl.inputModel, ck('cold_start_sft'));
  assert.equal(rej.previousCheckpoint, ck('reasoning_rl'));
  assert.equal(rej.inputModel, resolve(base));
  assert.equal(all.inputModel, ck('rejection_sft'));
  for (const s of STAGE_NAMES) {
    const m = readStageMarker(out, s)!;
    assert.equal(m.checkpoint, join(s, 'model'), 'relative to the run directory');
    assert.equal(m.eval!.pass_at_1, 0.5);
  }
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(
    summary.stages.map((s: { status: string }) => s.status),
    ['skipped', 'done', 'done', 'done'],
  );

  // Everything finished: a resume does nothing; --stage on a finished stage skips it.
  log.calls.length = 0;
  const again = await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    resume: true,
    runners: stubRunners(log),
    evaluate: evalStub,
    log: quiet,
  });
  assert.deepEqual(
    again.stages.map((s) => s.status),
    ['skipped', 'skipped', 'skipped', 'skipped'],
  );
  await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    stage: 'rejection_sft',
    runners: stubRunners(log),
    evaluate: evalStub,
    log: quiet,
  });
  assert.equal(log.calls.length, 0);
});

test('a run stopped between stages resumes at the next one; --stage needs the earlier stages finished', async () => {
  const out = join(root, 'between');
  const log: StubLog = { calls: [] };
  const ac = new AbortController();
  // The signal arrives while cold_start_sft is being evaluated: that stage still finishes, the next does not start.
  const r = await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    signal: ac.signal,
    runners: stubRunners(log),
    log: quiet,
    evaluate: async (d, c) => {
      if (c.stage === 'cold_start_sft') ac.abort();
      return evalStub(d, c);
    },
  });
  assert.equal(r.interrupted, true);
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['done', 'not_run', 'not_run', 'not_run'],
  );
  assert.deepEqual(
    log.calls.map((c) => c.name),
    ['cold_start_sft'],
  );

  await assert.rejects(
    runR1Pipeline(stubRecipe(base), {
      outDir: out,
      stage: 'rejection_sft',
      runners: stubRunners(log),
      evaluate: evalStub,
      log: quiet,
    }),
    /--stage rejection_sft: needs reasoning_rl finished first/,
  );
  log.calls.length = 0;
  const one = await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    stage: 'reasoning_rl',
    runners: stubRunners(log),
    evaluate: evalStub,
    log: quiet,
  });
  assert.deepEqual(
    log.calls.map((c) => c.name),
    ['reasoning_rl'],
  );
  assert.deepEqual(
    one.stages.map((s) => s.status),
    ['skipped', 'done', 'not_run', 'not_run'],
  );
  await assert.rejects(
    runR1Pipeline(stubRecipe(base), {
      outDir: join(root, 'empty'),
      resume: true,
      runners: stubRunners(log),
      evaluate: evalStub,
      log: quiet,
    }),
    /no r1 run to resume/,
  );
});

test('SIGKILL in the middle of a stage: the finished stage survives, the killed one continues on --resume', async () => {
  const out = join(root, 'kill9');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'pipelineStubs.ts'), out, base], {
    stdio: 'ignore',
  });
  const exited = new Promise((res) => child.on('exit', res));
  const hanging = join(out, 'reasoning_rl', 'hanging');
  for (let i = 0; i < 600 && !existsSync(hanging); i++) await sleep(50);
  assert.ok(existsSync(hanging), 'the child reached reasoning_rl');
  child.kill('SIGKILL');
  await exited;
  assert.ok(readStageMarker(out, 'cold_start_sft'));
  assert.equal(readStageMarker(out, 'reasoning_rl'), null);

  const log: StubLog = { calls: [] };
  const r = await runR1Pipeline(stubRecipe(base), {
    outDir: out,
    resume: true,
    runners: stubRunners(log),
    evaluate: evalStub,
    log: quiet,
  });
  assert.deepEqual(
    log.calls.map((c) => c.name),
    ['reasoning_rl', 'rejection_sft', 'all_scenarios_rl'],
  );
  assert.equal(log.calls[0].sawPartial, true);
  assert.deepEqual(
    r.stages.map((s) => s.status),
    ['skipped', 'done', 'done', 'done'],
  );
});
