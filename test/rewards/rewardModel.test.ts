import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { parseHfConfig } from '../../src/model/hfConfig.ts';
import { initModel } from '../../src/model/initModel.ts';
import { readSafetensorsInto, readSafetensorsTensor, writeSafetensors } from '../../src/model/safetensors.ts';
import { loadClassifierDir, loadRewardModel } from '../../src/model/sequenceClassifier.ts';
import { RewardModelReward, RunningNorm, rewardModelFromOptions } from '../../src/rewards/rewardModel.ts';
import { hfExtras, loadPretrained } from '../../src/model/pretrained.ts';
import { buildRewards } from '../../src/rl/rewardRegistry.ts';
import { defaultGrpoOptions } from '../../src/rl/grpoOptions.ts';
import { referenceHidden } from '../support/referenceTransformer.ts';
import { gaussian, mulberry32, randomParams } from '../support/tinyConfigs.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-rm-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** A small Qwen2 / Llama decoder config (config.json form). */
function rawConfig(arch: 'Qwen2' | 'Llama', tied: boolean): Record<string, unknown> {
  return {
    architectures: [`${arch}ForCausalLM`],
    model_type: arch === 'Qwen2' ? 'qwen2' : 'llama',
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: tied,
    hidden_act: 'silu',
  };
}

interface Built {
  dir: string;
  engine: EngineConfig;
  params: Float32Array;
  score: Float64Array;
}

/**
 * A reward-model checkpoint with random weights of a useful size (scale 0.3, biases and norms random too):
 * initModel writes the tokenizer and the layout, then the weights are replaced.
 */
function buildClassifier(name: string, arch: 'Qwen2' | 'Llama', tied: boolean, seed: number, dtype?: 'BF16'): Built {
  const dir = join(root, name);
  const cfgPath = join(root, `${name}.config.json`);
  writeFileSync(cfgPath, JSON.stringify(rawConfig(arch, tied)));
  initModel({ config: cfgPath, tokenizer: 'chars', out: dir, rewardModel: true, seed });
  const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const { engine, hf } = parseHfConfig(
    { ...written, architectures: [`${arch}ForCausalLM`], tie_word_embeddings: true },
    'x',
  );
  const params = randomParams(engine, seed, 0.3);
  const normal = gaussian(mulberry32(seed + 1000));
  const score32 = Float32Array.from({ length: engine.hiddenSize }, () => 0.5 * normal());
  saveModelDir(dir, {
    config: engine,
    hf: hfExtras(hf),
    params,
    dtype,
    extraTensors: [{ name: 'score.weight', shape: [1, engine.hiddenSize], data: score32 }],
    configPatch: {
      architectures: [`${arch}ForSequenceClassification`],
      tie_word_embeddings: tied,
      num_labels: 1,
    },
  });
  // The weights as stored (16-bit rounding included), which the reference runs on.
  const files = [join(dir, 'model.safetensors')];
  const stored = new Float32Array(params.length);
  readSafetensorsInto(files, tensorLayout(engine), stored, dir, ['score.weight']);
  const score = Float64Array.from(readSafetensorsTensor(files, 'score.weight')!.data);
  return { dir, engine, params: stored, score };
}

function referenceScore(b: Built, ids: number[]): number {
  const h = referenceHidden(b.engine, b.params, ids);
  const last = h[h.length - 1];
  let s = 0;
  for (let i = 0; i < last.length; i++) s += last[i] * b.score[i];
  return s;
}

const completions = [
  '<think>\nadd 2 and 3</think>\n<answer>5</answer>',
  '<think>\nthe sum of 12 and 30 is 42, so the answer is 42</think>\nIt is 42.',
  'no reasoning block here at all',
  '<think>\nhmm</think>ok',
  '<think>\na much longer chain of thought, which goes on for a while to make lengths differ a lot</think>\n' +
    'The final summary, longer than the others.',
];
const example = { question: 'What is 2 + 3?', answer: '5' };
const prompt = 'User: What is 2 + 3?\nAssistant: ';

for (const [arch, tied] of [
  ['Qwen2', true],
  ['Qwen2', false],
  ['Llama', false],
] as const) {
  test(`reward_model scores equal the float64 reference (${arch}, ${tied ? 'tied' : 'untied'} base, on: response and summary)`, async () => {
    const b = buildClassifier(`${arch}-${tied}`, arch, tied, 3 + Number(tied));
    const written = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
    assert.equal(written.tie_word_embeddings, tied);
    assert.deepEqual(written.architectures, [`${arch}ForSequenceClassification`]);
    for (const on of ['response', 'summary'] as const) {
      const r = rewardModelFromOptions({ model: b.dir, on, batch_size: 3 }, 'recipe.yaml: rewards[0]');
      const notes: string[] = [];
      const got = await Promise.all(
        completions.map((c) => r.reward(c, example, { prompt, note: (n) => notes.push(n) })),
      );
      const lengths = new Set<number>();
      for (let i = 0; i < completions.length; i++) {
        const ids = r.encode(completions[i], example, prompt);
        if (ids === null) {
          assert.equal(on, 'summary');
          assert.equal(got[i], 0);
          continue;
        }
        lengths.add(ids.length);
        const want = referenceScore(b, ids);
        assert.ok(Math.abs(got[i] - want) < 1e-4, `${on} #${i}: ${got[i]} vs reference ${want}`);
      }
      assert.ok(lengths.size >= 3, `sequences of different lengths: ${[...lengths]}`);
      if (on === 'summary') assert.deepEqual(notes, ['no_summary']);
      // The scores are not all alike (the test would pass on a constant otherwise).
      const real = got.filter((_, i) => r.encode(completions[i], example, prompt) !== null);
      assert.ok(Math.max(...real) - Math.min(...real) > 1e-2, `scores spread: ${real}`);
    }
  });
}

test('on: summary scores the text after </think> in the chat template; on: response the whole completion', async () => {
  const b = buildClassifier('summary', 'Qwen2', true, 9);
  const r = rewardModelFromOptions({ model: b.dir, on: 'summary' }, 'w');
  const ids = r.encode('<think>\nxyz</think>Summary.', example, prompt)!;
  const text = r.rm.tokenizer!.decode(ids);
  assert.ok(text.includes('Summary.') && !text.includes('xyz'), text);
  assert.ok(text.includes(example.question), text);
  const whole = rewardModelFromOptions({ model: b.dir, on: 'response' }, 'w');
  assert.ok(whole.rm.tokenizer!.decode(whole.encode('<think>\nxyz</think>Summary.', example, prompt)!).includes('xyz'));
});

test('16-bit weights stay 16-bit and still match the reference on the stored weights', async () => {
  const b = buildClassifier('bf16', 'Qwen2', false, 5, 'BF16');
  const rm = loadRewardModel(b.dir);
  assert.equal(rm.model.weightsDtype, 'bf16');
  // No pad token (transformers would not score it): ids of plain characters.
  const seqs = [[25, 29, 31, 22], [27, 27, 30, 31, 40, 41, 23, 32, 60], [20]];
  const got = await rm.scoreIds(seqs);
  // torch_dtype: float32 widens the same stored weights once: the same scores up to float rounding.
  const f32 = rewardModelFromOptions({ model: b.dir, torch_dtype: 'float32' }, 'w');
  assert.equal(f32.rm.model.weightsDtype, 'f32');
  const wide = await f32.scoreIds(seqs);
  seqs.forEach((_, i) => assert.ok(Math.abs(wide[i] - got[i]) < 1e-4));
  seqs.forEach((s, i) =>
    assert.ok(Math.abs(got[i] - referenceScore(b, s)) < 1e-4, `${got[i]} vs ${referenceScore(b, s)}`),
  );
});

test('trailing pad tokens are not scored (transformers scores the last non-pad token)', async () => {
  const b = buildClassifier('pad', 'Qwen2', true, 6);
  const rm = loadRewardModel(b.dir);
  assert.ok(rm.padTokenId !== null);
  const pad = rm.padTokenId!;
  const [a, c] = await rm.scoreIds([
    [5, 9, 11],
    [5, 9, 11, pad, pad],
  ]);
  assert.ok(Math.abs(a - c) < 1e-6);
  assert.ok(Math.abs(a - referenceScore(b, [5, 9, 11])) < 1e-4);
});

test('normalize: affine maps scale * x + shift; running standardises over every score seen', async () => {
  const b = buildClassifier('norm', 'Qwen2', true, 7);
  const raw = rewardModelFromOptions({ model: b.dir }, 'w');
  const aff = rewardModelFromOptions({ model: b.dir, normalize: { type: 'affine', scale: 2, shift: -1 } }, 'w');
  const run = rewardModelFromOptions({ model: b.dir, normalize: { type: 'running' } }, 'w');
  const ctx = { prompt };
  const x = await Promise.all(completions.map((c) => raw.reward(c, example, ctx)));
  const y = await Promise.all(completions.map((c) => aff.reward(c, example, ctx)));
  x.forEach((v, i) => assert.ok(Math.abs(y[i] - (2 * v - 1)) < 1e-9));
  const z = await Promise.all(completions.map((c) => run.reward(c, example, ctx)));
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const std = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length);
  x.forEach((v, i) => assert.ok(Math.abs(z[i] - (v - mean) / std) < 1e-9));
  const n = new RunningNorm();
  assert.deepEqual(n.apply([3]), [0]);
  assert.deepEqual(n.apply([5]), [1]);
  assert.deepEqual(n.stats, { count: 2, mean: 4, std: 1 });
});

test('loading refuses a checkpoint without score.weight, or with num_labels other than 1, in one line', () => {
  const b = buildClassifier('bad', 'Qwen2', true, 8);
  const cfg = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
  const oneLine = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => e instanceof AhaError && re.test(e.message) && !e.message.includes('\n'));
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...cfg, num_labels: 2 }));
  oneLine(() => loadClassifierDir(b.dir), /num_labels is 2 .*needs num_labels 1/);
  const { num_labels: _, ...noLabels } = cfg;
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...noLabels, id2label: { 0: 'a', 1: 'b' } }));
  oneLine(() => loadClassifierDir(b.dir), /num_labels is 2 \(from id2label\)/);
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...cfg, architectures: ['Qwen2ForCausalLM'] }));
  oneLine(() => loadClassifierDir(b.dir), /not a sequence classifier/);
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify(cfg));
  // The same weights without the score head.
  const file = join(b.dir, 'model.safetensors');
  const layout = tensorLayout(b.engine);
  writeSafetensors(
    file,
    layout.map((t) => ({ name: t.name, shape: t.shape, data: b.params.slice(t.offset, t.offset + t.size) })),
  );
  oneLine(() => loadClassifierDir(b.dir), /no score\.weight in the weights/);
  oneLine(() => rewardModelFromOptions({ model: b.dir }, 'recipe.yaml: rewards[0]'), /no score\.weight in the weights/);
});

test('reward_model is a built-in reward of the registry; bad options are one-line errors', async () => {
  const b = buildClassifier('registry', 'Qwen2', true, 10);
  const [r] = await buildRewards([{ name: 'reward_model', options: { model: b.dir, batch_size: 2 } }], {
    grpo: defaultGrpoOptions,
    baseDir: root,
    source: 'recipe.yaml',
  });
  assert.equal(r.kind, 'reward_model');
  const v = await r.fn(completions[0], example, { prompt });
  assert.ok(Number.isFinite(v) && v !== 0);
  await assert.rejects(
    buildRewards([{ name: 'reward_model', options: { model: b.dir, on: 'all' } }], {
      grpo: defaultGrpoOptions,
      baseDir: root,
      source: 'recipe.yaml',
    }),
    (e: Error) => /rewards\[0\]\.options\.on/.test(e.message) && !e.message.includes('\n'),
  );
});

test('init-model --reward-model writes a classifier that loads and scores like the reference', async () => {
  const dir = join(root, 'init');
  initModel({ config: 'tiny', tokenizer: 'chars', out: dir, rewardModel: true, seed: 1 });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['Qwen2ForSequenceClassification']);
  assert.equal(cfg.num_labels, 1);
  const c = loadClassifierDir(dir);
  assert.equal(c.score.length, c.md.config.hiddenSize);
  const params = new Float32Array(tensorLayout(c.md.config).reduce((a, t) => a + t.size, 0));
  c.md.loadParams(params);
  const r = new RewardModelReward(loadRewardModel(dir));
  const ids = r.encode(completions[1], example, prompt)!;
  const [got] = await r.scoreIds([ids]);
  const want = referenceScore({ dir, engine: c.md.config, params, score: c.score }, ids);
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
});

test('aha init-model --reward-model writes a classifier that loads as one, and not as a causal LM', () => {
  const out = join(root, 'cli-rm');
  const r = spawnSync(
    process.execPath,
    ['bin/aha.js', 'init-model', '--config', 'tiny', '--reward-model', '--out', out],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const c = loadClassifierDir(out);
  assert.equal(c.score.length, c.md.config.hiddenSize);
  // Read as a causal LM, it is refused in one line (its architecture is a classifier's).
  assert.throws(
    () => loadPretrained(out),
    (e: Error) => e instanceof AhaError && /unsupported architecture Qwen2ForSequenceClassification/.test(e.message),
  );
});
