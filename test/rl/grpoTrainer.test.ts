import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { grpoTrain, latestGrpoCheckpoint, grpoLearningRate } from '../../src/rl/grpoTrainer.ts';
import { parseRecipe, type RecipeInput } from '../../src/rl/recipe.ts';
import { rewardErrorCounts, rewardNames, rewardStats, type StepMetrics } from '../../src/rl/metrics.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh tiny character model (2 layers, width 32) over a 14-character alphabet plus specials and R1 tags. */
function tinyModelDir(): string {
  return tinyCharModel(mkdtempSync(join(root, 'aha-grpo-')), { alphabet: '0123456789 abc', seed: 1 }).dir;
}

/** Toy reward a random model can climb quickly: the share of completion characters that are the digit 7. */
const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length);

const questions = (n: number) => Array.from({ length: n }, (_, i) => ({ question: `q${i}`, answer: '7' }));

function recipe(
  model: string,
  over: { grpo?: object; training?: object; rewards?: RecipeInput['rewards']; [k: string]: unknown } = {},
): RecipeInput {
  return {
    model,
    dataset: questions(8),
    prompt: '{question} ',
    rewards: over.rewards ?? [{ name: 'sevens', fn: sevens }],
    ...Object.fromEntries(Object.entries(over).filter(([k]) => !['grpo', 'training', 'rewards'].includes(k))),
    grpo: { num_generations: 8, max_completion_length: 12, ...over.grpo },
    training: { learning_rate: 3e-3, max_steps: 10, prompts_per_step: 4, seed: 0, ...over.training },
  } as RecipeInput;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const modelDir = tinyModelDir();

test('a seeded short GRPO run raises the mean reward; the run directory holds metrics, samples and final/', async () => {
  const out = join(mkdtempSync(join(root, 'aha-run-')), 'run');
  const seen: number[] = [];
  const r = await grpoTrain(
    recipe(modelDir, { grpo: { beta: 0.04 }, training: { max_steps: 40, sample_log_steps: 20, save_steps: 20 } }),
    {
      outDir: out,
      onStep: (m) => void seen.push(m.step),
      log: () => {},
    },
  );
  assert.equal(r.step, 40);
  assert.equal(r.interrupted, false);
  assert.deepEqual(
    seen,
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const rewards = r.history.map((m) => m.reward);
  const first = mean(rewards.slice(0, 5)),
    last = mean(rewards.slice(-5));
  // A random model writes a 7 about once in 30 characters; GRPO should make most characters 7s within 40 steps.
  assert.ok(first < 0.1, `first steps' reward ${first}`);
  assert.ok(last > first + 0.3, `reward did not rise: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`);
  assert.ok(r.history[39].entropy < r.history[0].entropy, 'the policy sharpens');

  const m0 = r.history[0];
  assert.deepEqual(rewardNames(m0), ['sevens']);
  assert.equal(m0.groups_sampled, 4);
  assert.equal(m0.groups_used, 4);
  assert.equal(m0.updates, 1);
  assert.equal(m0.accuracy, undefined);
  assert.equal(m0.format_rate, undefined);
  assert.ok(m0.kl !== undefined && m0.kl >= 0 && m0.kl < 1e-6, 'the first step samples from the reference itself');
  assert.ok(r.history[39].kl! > 1e-3);
  assert.equal(m0['clip_ratio/region_mean'], 0, 'on-policy single update: ratio 1, nothing clipped');
  assert.ok(m0.grad_norm > 0 && m0.learning_rate === 3e-3);
  assert.ok(Number.isFinite(m0.loss));
  assert.ok(m0['completions/max_length'] <= 12 && m0['completions/min_length'] >= 1);
  assert.ok(m0['time/total'] >= m0['time/sample'] + m0['time/learn']);
  assert.deepEqual(
    Object.keys(m0).filter((k) => k.startsWith('reflection/')),
    [
      'reflection/total',
      'reflection/wait',
      'reflection/verify',
      'reflection/check',
      'reflection/mistake',
      'reflection/however',
    ],
  );
  // Flat records under TRL's names: no value is an object.
  for (const k of [
    'loss',
    'grad_norm',
    'learning_rate',
    'reward',
    'reward_std',
    'rewards/sevens/mean',
    'rewards/sevens/std',
    'completions/mean_length',
    'completions/clipped_ratio',
    'kl',
    'entropy',
    'clip_ratio/region_mean',
    'frac_reward_zero_std',
    'epoch',
    'step',
  ])
    assert.equal(typeof (m0 as Record<string, unknown>)[k], 'number', k);
  assert.ok(Object.values(m0).every((v) => typeof v === 'number'));

  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepMetrics);
  assert.deepEqual(
    lines.map((l) => l.step),
    seen,
  );
  assert.deepEqual(lines[5], r.history[5]);
  const samples = readFileSync(join(out, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(samples.map((s) => s.step))], [1, 20, 40]);
  assert.ok('completion' in samples[0] && 'prompt' in samples[0] && typeof samples[0].rewards.sevens === 'number');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    assert.ok(existsSync(join(out, 'final', f)), `final/${f}`);
  }
  // final/ is the model alone; the last step's checkpoint keeps what a further run needs.
  for (const f of ['trainer_state.json', 'optimizer.safetensors']) {
    assert.ok(!existsSync(join(out, 'final', f)), `final/${f} should not exist`);
    for (const ck of ['checkpoint-20', 'checkpoint-40']) assert.ok(existsSync(join(out, ck, f)), `${ck}/${f}`);
  }
  assert.ok(!readdirSync(out).some((n) => n.endsWith('.tmp')));
  assert.equal(JSON.parse(readFileSync(join(out, 'checkpoint-40', 'trainer_state.json'), 'utf8')).global_step, 40);
  assert.equal(latestGrpoCheckpoint(out)!.dir, join(out, 'checkpoint-40'));
  assert.equal(JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8')).grpo.beta, 0.04);
  // The final directory is a loadable model holding the trained weights.
  const saved = new Float32Array(r.model.params.length);
  loadModelDir(join(out, 'final')).loadParams(saved);
  assert.deepEqual(saved, r.model.params);
  // A second run into the same directory must not silently overwrite it.
  await assert.rejects(grpoTrain(recipe(modelDir), { outDir: out }), /already holds a run.*--resume/);
});

test('a reward that throws and one that hangs are reported by name and example; the run goes on', async () => {
  const lines: string[] = [];
  const r = await grpoTrain(
    recipe(modelDir, {
      rewards: [
        { name: 'sevens', fn: sevens },
        {
          name: 'broken',
          fn: () => {
            throw new Error('cannot parse the answer');
          },
        },
        { name: 'stuck', fn: () => new Promise<number>(() => {}) },
      ],
      reward_timeout_ms: 30,
      training: { max_steps: 2 },
    }),
    { log: (l) => lines.push(l) },
  );
  assert.equal(r.step, 2);
  assert.equal(r.history[0].reward_errors, 64, '32 completions x 2 failing rewards');
  assert.deepEqual(rewardStats(r.history[0], 'broken'), { mean: 0, std: 0 });
  assert.ok(r.history[0]['rewards/sevens/mean'] > 0);
  assert.deepEqual(rewardErrorCounts(r.history[0]), {
    broken: { errors: 32, calls: 32 },
    stuck: { errors: 32, calls: 32 },
  });
  assert.ok(
    lines.some((l) =>
      /step 1: reward 'broken' \(recipe: rewards\[1\]\) threw on completion 0 \(question "q\d+", completion ".*"\): cannot parse the answer/.test(
        l,
      ),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) =>
      /step 1: reward 'stuck' \(recipe: rewards\[2\]\) timed out on completion \d+ \(question "q\d+".*no result after 30 ms/.test(
        l,
      ),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /step 1: \.\.\. and 60 more reward errors \(of 32 completions: broken: 32, stuck: 32\)/.test(l)),
    lines.join('\n'),
  );
  assert.equal(r.history[1].step, 2);
});

test('recipe errors stop the run before any work, naming the field', async () => {
  const out = join(mkdtempSync(join(root, 'aha-bad-')), 'run');
  let steps = 0;
  const onStep = () => void steps++;
  const bad = async (rcp: unknown, re: RegExp) => {
    await assert.rejects(
      grpoTrain(rcp as RecipeInput, { outDir: out, onStep }),
      (e: unknown) => e instanceof AhaError && re.test(e.message) && !e.message.includes('\n'),
    );
  };
  await bad(recipe(modelDir, { training: { learning_rate: 'fast' } }), /^recipe: training\.learning_rate: /);
  await bad(recipe(modelDir, { grpo: { num_generation: 4 } }), /^recipe: grpo: unknown field 'num_generation'/);
  // Rewards and data are checked before the model is loaded (the model path here does not exist).
  await bad(
    recipe('/nonexistent/model', { rewards: [{ name: 'acuracy' }] }),
    /rewards\[0\]\.name: unknown reward 'acuracy'/,
  );
  await bad(
    { ...recipe('/nonexistent/model'), dataset: { path: '/nonexistent/data.jsonl' } },
    /data\.jsonl: dataset not found/,
  );
  await bad(recipe('/nonexistent/model'), /\/nonexistent\/model: model directory not found/);
  await bad(recipe(modelDir, { grpo: { max_completion_length: 70 } }), /every prompt is too long/);
  await assert.rejects(grpoTrain(recipe(modelDir), { outDir: out, resume: true }), /no checkpoint to resume from/);
  assert.equal(steps, 0);
  assert.ok(!existsSync(out), 'nothing was written');
});

test('interrupted run saves a checkpoint; resume continues to the same weights as an uninterrupted run', async () => {
  const base = mkdtempSync(join(root, 'aha-resume-'));
  // Exercise everything that state must survive: KL reference refreshed every 2 steps, mu = 2 passes,
  // 2 mini-batches per rollout (off-policy ratios), shuffled epochs (6 questions, 4 per step).
  const rcp = parseRecipe(
    recipe(modelDir, {
      dataset: questions(6),
      grpo: { num_generations: 4, beta: 0.04, num_iterations: 2 },
      training: {
        max_steps: 6,
        seed: 3,
        save_steps: 3,
        ref_model_sync_steps: 2,
        steps_per_generation: 2,
        micro_batch_tokens: 40,
      },
    }),
  );
  const full = await grpoTrain(rcp, { outDir: join(base, 'full'), log: () => {} });
  assert.ok(
    full.history.some((m) => m['clip_ratio/region_mean'] > 0),
    'off-policy updates clip some tokens',
  );
  assert.equal(full.history[0].updates, 4, '2 passes x 2 mini-batches');

  const out = join(base, 'run');
  const ac = new AbortController();
  const a = await grpoTrain(rcp, {
    outDir: out,
    signal: ac.signal,
    log: () => {},
    onStep: (m) => {
      if (m.step === 4) ac.abort();
    },
  });
  assert.equal(a.interrupted, true);
  assert.equal(a.step, 4);
  assert.equal(a.checkpoint, join(out, 'checkpoint-4'));
  assert.ok(existsSync(join(out, 'checkpoint-3')) && existsSync(join(out, 'reference-step-4.safetensors')));
  assert.ok(!existsSync(join(out, 'final')));
  const ck = latestGrpoCheckpoint(out)!;
  assert.equal(ck.dir, join(out, 'checkpoint-4'));
  assert.equal(ck.state.global_step, 4);
  assert.equal(ck.state.optimizer_step, 16);
  assert.equal(ck.state.prompts_consumed, 16);
  assert.equal(ck.state.ref_sync_step, 4);
  const saved = new Float32Array(a.model.params.length);
  loadModelDir(ck.dir).loadParams(saved);
  assert.deepEqual(saved, a.model.params, 'checkpoint weights are the weights at the interruption');

  const logs: string[] = [];
  const b = await grpoTrain(rcp, { outDir: out, resume: true, log: (l) => logs.push(l) });
  assert.ok(logs.some((l) => l.includes('resuming') && l.includes('from step 4')));
  assert.deepEqual(
    b.history.map((m) => m.step),
    [5, 6],
  );
  assert.equal(b.model.optimizerState().step, 24);
  // Equal up to float32 rounding: the engine adds RMSNorm weight gradients of accumulated micro-batches in thread
  // order, so runs differ in the last bits (one micro-batch per update is bit-exact on 2 threads).
  let maxDiff = 0;
  for (let i = 0; i < full.model.params.length; i++)
    maxDiff = Math.max(maxDiff, Math.abs(b.model.params[i] - full.model.params[i]));
  assert.ok(maxDiff < 1e-5, `resumed run ends with the uninterrupted run's weights (max diff ${maxDiff})`);
  assert.deepEqual(
    b.history.map((m) => m.reward),
    full.history.slice(4).map((m) => m.reward),
  );
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
});

test('dynamic sampling drops all-equal groups and samples more prompts; in-memory task with a check and prompt function', async () => {
  // Even-numbered questions get a constant reward (zero-variance groups), odd ones the 7s reward.
  const byQuestion = (c: string, ex: { question?: unknown }) =>
    Number(String(ex.question).slice(1)) % 2 === 0 ? 0.5 : sevens(c);
  const checked: string[] = [];
  const prompted = new Set<string>();
  const r = await grpoTrain(
    recipe(modelDir, {
      prompt: (ex: { question: string }) => (prompted.add(ex.question), `${ex.question} `),
      rewards: [
        { name: 'by_question', fn: byQuestion },
        { name: 'accuracy', check: (answer: string) => (checked.push(answer), answer === '7'), weight: 1 },
        { name: 'format' },
      ],
      grpo: { mask_truncated_completions: true },
      training: { max_steps: 3, dynamic_sampling: true, dynamic_sampling_max_batches: 4 },
    }),
    { log: () => {} },
  );
  for (const m of r.history) {
    assert.equal(m.groups_used, 4);
    assert.ok(m.rollout_batches >= 2, `step ${m.step}: ${m.rollout_batches} batches`);
    assert.equal(m.groups_sampled, 4 * m.rollout_batches);
    assert.ok(m.zero_variance_groups >= m.groups_sampled / 2 - 1);
    assert.ok(m.accuracy !== undefined && m.accuracy <= 0.1);
    assert.ok(m.format_rate !== undefined && m.format_rate <= 0.1);
  }
  assert.equal(prompted.size, 8, 'every question rendered by the prompt function');
  // The random model emits the <answer> tags now and then (they are single tokens): the check sees the inner text.
  assert.ok(checked.every((a) => typeof a === 'string' && !a.includes('<answer>')));
});

test("prompt 'chat' renders the model's chat template with the system prompt", async () => {
  const out = join(mkdtempSync(join(root, 'aha-chat-')), 'run');
  await grpoTrain(recipe(modelDir, { prompt: 'chat', system_prompt: 'be brief', training: { max_steps: 1 } }), {
    outDir: out,
    log: () => {},
  });
  const sample = JSON.parse(readFileSync(join(out, 'samples.jsonl'), 'utf8').split('\n')[0]);
  assert.match(sample.prompt, /^<\|system\|>be brief<\|endoftext\|><\|user\|>q\d<\|endoftext\|><\|assistant\|>$/);
});

test('learning-rate schedule: the shared one (transformers: warmup from 0), then constant, linear or cosine decay', () => {
  const t = (o: object) =>
    parseRecipe({
      model: 'm',
      dataset: [{ question: 'q' }],
      rewards: [{ name: 'format' }],
      training: { learning_rate: 1, max_steps: 10, ...o },
    }).training;
  assert.deepEqual(
    [1, 2, 3, 10].map((s) => grpoLearningRate(t({ warmup_steps: 2 }), s)),
    [0, 0.5, 1, 1],
  );
  [1, 0.9, 0.5, 0.1].forEach((want, k) =>
    assert.ok(Math.abs(grpoLearningRate(t({ lr_scheduler_type: 'linear' }), [1, 2, 6, 10][k]) - want) < 1e-12),
  );
  const cos = t({ lr_scheduler_type: 'cosine', warmup_ratio: 0.2 });
  assert.equal(grpoLearningRate(cos, 2), 0.5);
  assert.equal(grpoLearningRate(cos, 3), 1);
  assert.ok(Math.abs(grpoLearningRate(cos, 7) - 0.5) < 1e-12, 'halfway through the decay');
});

test('aha grpo: Ctrl-C saves a checkpoint, prints the resume command and exits 130; --resume finishes the run', async () => {
  const dir = mkdtempSync(join(root, 'aha-cli-'));
  writeFileSync(
    join(dir, 'train.jsonl'),
    questions(8)
      .map((q) => JSON.stringify(q))
      .join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'rewards.ts'),
    'export const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === "7").length / c.length);\n',
  );
  const yaml = (steps: number) =>
    [
      `model: ${modelDir}`,
      'dataset: { path: train.jsonl }',
      'prompt: "{question} "',
      'rewards: [{ name: "./rewards.ts#sevens" }]',
      'grpo: { num_generations: 4, max_completion_length: 12 }',
      `training: { learning_rate: 3.0e-3, max_steps: ${steps}, prompts_per_step: 2, save_steps: 0 }`,
      'output_dir: run',
    ].join('\n') + '\n';
  writeFileSync(join(dir, 'r.yaml'), yaml(100000));
  const main = join(dir, 'main.mts');
  writeFileSync(
    main,
    [
      `import { Command } from '${import.meta.resolve('commander')}';`,
      `import { registerGrpo } from '${resolve('src/cli/grpo.ts')}';`,
      'const p = new Command().exitOverride();',
      'registerGrpo(p);',
      'try { await p.parseAsync(process.argv); } catch (e) { process.stderr.write(`aha: ${(e as Error).message}\\n`); process.exit(1); }',
    ].join('\n'),
  );
  const run = (args: string[], onStderr?: (s: string, kill: () => void) => void) =>
    new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, 'grpo', ...args], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        onStderr?.(stderr, () => child.kill('SIGINT'));
      });
      child.on('close', (code) => done({ code, stderr }));
    });
  let sent = false;
  const a = await run(['--config', 'r.yaml'], (s, kill) => {
    // Without a terminal, one progress line per step: 'grpo 3/100000 step | reward ...'.
    if (!sent && /^grpo 3\/\d+ step \|/m.test(s)) {
      sent = true;
      kill();
    }
  });
  assert.equal(a.code, 130, a.stderr);
  assert.match(a.stderr, /resume with: aha grpo --config r\.yaml --out \S+run --resume/);
  const ck = latestGrpoCheckpoint(join(dir, 'run'))!;
  assert.ok(ck.state.global_step >= 3, `checkpoint at step ${ck.state.global_step}`);
  const stepsBefore = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n').length;
  assert.equal(stepsBefore, ck.state.global_step);

  writeFileSync(join(dir, 'r.yaml'), yaml(ck.state.global_step + 2));
  const b = await run(['--config', 'r.yaml', '--resume']);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stderr, /done, \d+ steps/);
  assert.equal(latestGrpoCheckpoint(join(dir, 'run'))!.dir, join(dir, 'run', `checkpoint-${ck.state.global_step + 2}`));
  assert.ok(existsSync(join(dir, 'run', 'final', 'model.safetensors')));
  const bad = await run(['--config', 'missing.yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^aha: missing\.yaml: recipe not found$/m);
});

test('a run with no learning signal warns through the progress sink, and report_to writes metrics.csv and event files', async () => {
  const out = join(mkdtempSync(join(root, 'aha-nosignal-')), 'run');
  const events: unknown[] = [];
  const logged: string[] = [];
  const r = await grpoTrain(
    recipe(modelDir, {
      rewards: [{ name: 'constant', fn: () => 1 }],
      training: { max_steps: 2, report_to: ['csv', 'tensorboard'] },
    }),
    { outDir: out, progress: (e) => void events.push(e), log: (l) => logged.push(l) },
  );
  assert.equal(r.step, 2);
  const warnings = events.filter((e) => (e as { kind?: string }).kind === 'warning') as { message: string }[];
  assert.equal(warnings.length, 1, 'warned once, not every step');
  assert.match(warnings[0].message, /^step 1: no learning signal: all 4 groups have zero reward variance/);
  assert.ok(!logged.some((l) => /no learning signal/.test(l)), 'with a sink, warnings go to the sink');
  assert.deepEqual(
    r.history.map((m) => m.frac_reward_zero_std),
    [1, 1],
  );
  // Progress: the start, one event per step with its metrics, then the end.
  const steps = events.filter((e) => (e as { kind?: string }).kind !== 'warning') as {
    done: number;
    metrics?: object;
  }[];
  assert.deepEqual(
    steps.map((e) => e.done),
    [0, 1, 2, 2],
  );
  assert.ok(steps[1].metrics && 'reward' in steps[1].metrics && 'zero_std' in steps[1].metrics);
  const csv = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.ok(csv[0].startsWith('step,epoch,loss,grad_norm,learning_rate,reward,reward_std,'));
  const [tb] = readdirSync(join(out, 'runs'));
  assert.match(tb, /^events\.out\.tfevents\./);

  // Without a sink the warning is a log line.
  const quiet: string[] = [];
  await grpoTrain(recipe(modelDir, { rewards: [{ name: 'constant', fn: () => 0 }], training: { max_steps: 1 } }), {
    log: (l) => quiet.push(l),
  });
  assert.ok(quiet.some((l) => /^grpo: warning: step 1: no learning signal/.test(l)));
});
