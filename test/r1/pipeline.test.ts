import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStageMarker, runR1Pipeline } from '../../src/r1/pipeline.ts';
import { loadPipelineRecipe, parsePipelineRecipe, recipeStages, STAGE_NAMES } from '../../src/r1/pipelineRecipe.ts';
import { stageSettings } from '../../src/r1/pipelineProvenance.ts';
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
  // The stage finished by the first invocation is done (resumed), not "skipped".
  assert.deepEqual(
    r.stages.map((s) => [s.status, s.resumed === true]),
    [
      ['done', true],
      ['done', false],
      ['done', false],
      ['done', false],
    ],
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
    summary.stages.map((s: { status: string; resumed?: boolean; invocation: number }) => [
      s.status,
      s.resumed ?? false,
      s.invocation,
    ]),
    [
      ['done', true, 1],
      ['done', false, 2],
      ['done', false, 2],
      ['done', false, 2],
    ],
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
    again.stages.map((s) => [s.status, s.resumed]),
    [
      ['done', true],
      ['done', true],
      ['done', true],
      ['done', true],
    ],
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
    one.stages.map((s) => [s.status, s.resumed ?? false]),
    [
      ['done', true],
      ['done', false],
      ['not_run', false],
      ['not_run', false],
    ],
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
    ['done', 'done', 'done', 'done'],
  );
  assert.deepEqual(
    r.stages.map((s) => s.resumed === true),
    [true, false, false, false],
  );
});

test('resume provenance: pipeline.json keeps the recipe the run started with, every invocation is recorded, each finished stage keeps its settings', async () => {
  const out = join(root, 'provenance');
  const log: StubLog = { calls: [] };
  const ac = new AbortController();
  const recipeA = stubRecipe(base);
  // Invocation 1 stops after cold_start_sft (the signal arrives during its evaluation).
  await runR1Pipeline(recipeA, {
    outDir: out,
    signal: ac.signal,
    runners: stubRunners(log),
    log: quiet,
    argv: ['r1', '--config', 'a.yaml'],
    evaluate: async (d, c) => {
      if (c.stage === 'cold_start_sft') ac.abort();
      return evalStub(d, c);
    },
  });
  // Invocation 2: cold start's prompts and RL's steps changed; runs reasoning_rl only.
  const recipeB = {
    ...stubRecipe(base),
    stages: {
      cold_start_sft: { prompts: 100 },
      reasoning_rl: { training: { max_steps: 7 } },
      rejection_sft: {},
      all_scenarios_rl: {},
    },
  };
  const lines2: string[] = [];
  await runR1Pipeline(recipeB, {
    outDir: out,
    stage: 'reasoning_rl',
    runners: stubRunners(log),
    evaluate: evalStub,
    log: (l) => void lines2.push(l),
    argv: ['b'],
  });
  // Invocation 3: rejection sampling's prompts changed too; resumes the rest.
  const recipeC = { ...recipeB, stages: { ...recipeB.stages, rejection_sft: { prompts: 64 } } };
  const lines3: string[] = [];
  const r = await runR1Pipeline(recipeC, {
    outDir: out,
    resume: true,
    runners: stubRunners(log),
    evaluate: evalStub,
    log: (l) => void lines3.push(l),
    argv: ['c'],
  });
  assert.equal(r.interrupted, false);

  // pipeline.json is the first invocation's recipe (defaults applied), not the last one's.
  const manifest = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8'));
  assert.equal(manifest.recipe.stages.cold_start_sft.prompts, 256);
  assert.deepEqual(manifest.recipe.stages.reasoning_rl.training, {});
  assert.equal(manifest.recipe.stages.rejection_sft.prompts, 512);
  assert.match(manifest.recipe_hash, /^[0-9a-f]{16}$/);

  // One line per invocation: arguments, whether resumed, the stage asked for, the recipe and its hash.
  const inv = readFileSync(join(out, 'invocations.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    inv.map((x) => [x.invocation, x.argv, x.resume, x.stage]),
    [
      [1, ['r1', '--config', 'a.yaml'], false, null],
      [2, ['b'], false, 'reasoning_rl'],
      [3, ['c'], true, null],
    ],
  );
  assert.equal(inv[0].recipe_hash, manifest.recipe_hash);
  assert.equal(new Set(inv.map((x) => x.recipe_hash)).size, 3, 'three different recipes');
  assert.deepEqual(
    inv.map((x) => [x.recipe.stages.cold_start_sft.prompts, x.recipe.stages.rejection_sft.prompts]),
    [
      [256, 512],
      [100, 512],
      [100, 64],
    ],
  );

  // Messages compare with the recipe the run started with, and say so.
  assert.ok(
    lines3.includes(
      `r1: note: the recipe differs from the one this run started with (pipeline.json, ${inv[0].at}) in stages.cold_start_sft.prompts, stages.reasoning_rl.training.max_steps, stages.rejection_sft.prompts; finished stages are not redone`,
    ),
    lines3.join('\n'),
  );
  assert.ok(
    lines2.includes(
      "r1: note: cold_start_sft finished in invocation 1 with settings other than the recipe's now (its stage_done.json vs the recipe: stage.prompts); it is kept as it is",
    ),
    lines2.join('\n'),
  );

  // Each stage's marker holds the settings it ran with and the invocation that finished it.
  const cs = readStageMarker(out, 'cold_start_sft')!;
  assert.equal((cs.settings!.stage as { prompts: number }).prompts, 256);
  assert.equal(cs.settings!.base_model, base);
  assert.equal(cs.invocation, 1);
  assert.equal(cs.started_invocation, 1);
  const rl = readStageMarker(out, 'reasoning_rl')!;
  assert.deepEqual((rl.settings!.stage as { training: unknown }).training, { max_steps: 7 });
  assert.equal('filters' in rl.settings!, false, 'RL does not use the sample filters');
  assert.equal(rl.invocation, 2);
  const rej = readStageMarker(out, 'rejection_sft')!;
  assert.equal((rej.settings!.stage as { prompts: number }).prompts, 64);
  assert.equal(rej.invocation, 3);
  // The hash follows the settings: all_scenarios_rl's part is the same in all three recipes, cold start's is not.
  const stored = (x: Record<string, unknown>) => {
    const { baseDir: _b, source: _s, ...plain } = parsePipelineRecipe(x, 'r');
    return JSON.parse(JSON.stringify(plain));
  };
  assert.equal(
    readStageMarker(out, 'all_scenarios_rl')!.settings_hash,
    stageSettings(stored(recipeA), 'all_scenarios_rl').settings_hash,
  );
  assert.notEqual(cs.settings_hash, stageSettings(stored(recipeC), 'cold_start_sft').settings_hash);
  assert.equal(cs.settings_hash, stageSettings(stored(recipeA), 'cold_start_sft').settings_hash);
});

test('a stage continued with other settings than it started with is warned about, and its marker says so', async () => {
  const out = join(root, 'restarted');
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
  const started = JSON.parse(readFileSync(join(out, 'reasoning_rl', 'stage_started.json'), 'utf8'));
  assert.equal(started.invocation, 1);
  assert.deepEqual(started.settings.stage.training, {});
  const lines: string[] = [];
  const changed = { ...stubRecipe(base), stages: { ...stubRecipe(base).stages, reasoning_rl: { prompts: 5 } } };
  await runR1Pipeline(changed, {
    outDir: out,
    resume: true,
    runners: stubRunners(log),
    evaluate: evalStub,
    log: (l) => void lines.push(l),
  });
  assert.ok(
    lines.includes(
      'r1: warning: reasoning_rl: continuing with settings other than those it started with in invocation 1 (its stage_started.json vs the recipe: stage.prompts); work done so far is kept',
    ),
    lines.join('\n'),
  );
  const m = readStageMarker(out, 'reasoning_rl')!;
  assert.equal(m.started_invocation, 1);
  assert.equal(m.invocation, 2);
  assert.equal(m.started_settings_hash, started.settings_hash);
  assert.notEqual(m.settings_hash, started.settings_hash);
  assert.equal((m.settings!.stage as { prompts: number }).prompts, 5);
});

test('a stage written with no body (YAML null) takes all its defaults', () => {
  const file = join(root, 'null-stage.yaml');
  writeFileSync(file, `base_model: ${base}\ntask: arithmetic\nstages:\n  cold_start_sft:\n  reasoning_rl:\n`);
  const { recipe } = loadPipelineRecipe(file);
  assert.deepEqual(recipeStages(recipe), ['cold_start_sft', 'reasoning_rl']);
  assert.equal(recipe.stages.cold_start_sft!.prompts, 256);
  assert.equal(recipe.stages.cold_start_sft!.samples_per_prompt, 4);
  assert.deepEqual(recipe.stages.reasoning_rl!.rewards, { accuracy: 1, format: 1, language: 1 });
  assert.equal(recipe.stages.reasoning_rl!.max_failing_reward_steps, 3);
});

test('general_prompts_per_step: at most the prompts per step, and only with general prompts', () => {
  const withGeneral = (a: Record<string, unknown>) => ({
    ...stubRecipe(base),
    stages: {
      all_scenarios_rl: {
        general_dataset: { path: 'g.jsonl' },
        general_rewards: [{ name: './r.ts#f' }],
        training: { prompts_per_step: 4 },
        ...a,
      },
    },
  });
  assert.equal(
    parsePipelineRecipe(withGeneral({ general_prompts_per_step: 3 }), 'r1.yaml').stages.all_scenarios_rl!
      .general_prompts_per_step,
    3,
  );
  assert.throws(
    () => parsePipelineRecipe(withGeneral({ general_prompts_per_step: 5 }), 'r1.yaml'),
    (e: unknown) =>
      e instanceof AhaError &&
      e.message ===
        'r1.yaml: stages.all_scenarios_rl.general_prompts_per_step: 5 is more than the 4 prompts per step (training)',
  );
  assert.throws(
    () =>
      parsePipelineRecipe(
        { ...stubRecipe(base), stages: { all_scenarios_rl: { general_prompts_per_step: 1 } } },
        'r1.yaml',
      ),
    /^AhaError: r1\.yaml: stages\.all_scenarios_rl\.general_prompts_per_step: needs general_dataset$/,
  );
});

test('an RL stage takes LoRA options, checked with the recipe before any work', () => {
  const base = { base_model: 'm', task: 'arithmetic' };
  const r = parsePipelineRecipe({
    ...base,
    stages: { reasoning_rl: { lora: { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] } } },
  });
  assert.deepEqual(r.stages.reasoning_rl!.lora, { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] });
  assert.throws(
    () => parsePipelineRecipe({ ...base, stages: { reasoning_rl: { lora: { r: 8, target_modules: ['qkv'] } } } }),
    /stages\.reasoning_rl: lora\.target_modules: unknown module "qkv"/,
  );
});
