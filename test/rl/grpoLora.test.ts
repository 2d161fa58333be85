import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { loadPretrained, savePretrained } from '../../src/model/pretrained.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { grpoTrain } from '../../src/rl/grpoTrainer.ts';
import { parseRecipe, type RecipeInput } from '../../src/rl/recipe.ts';
import { LORA_MODULES } from '../../src/engine/lora.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-lora-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyModelDir(): string {
  return tinyCharModel(mkdtempSync(join(root, 'model-')), {
    alphabet: '0123456789 abc',
    seed: 1,
    // LoRA cannot touch the (tied, frozen) head: with the default 0.02 init the logits stay near-uniform whatever
    // the hidden state, so the toy reward has nothing to climb.
    config: { initializer_range: 0.3 },
  }).dir;
}

const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length);
const questions = (n: number) => Array.from({ length: n }, (_, i) => ({ question: `q${i}`, answer: '7' }));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function recipe(model: string, over: Partial<RecipeInput> & { training?: object } = {}): RecipeInput {
  return {
    model,
    dataset: questions(8),
    prompt: '{question} ',
    rewards: [{ name: 'sevens', fn: sevens }],
    lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
    ...over,
    grpo: { num_generations: 8, max_completion_length: 12, beta: 0.04 },
    training: { learning_rate: 2e-2, max_steps: 20, prompts_per_step: 4, seed: 0, save_steps: 10, ...over.training },
  } as RecipeInput;
}

const modelDir = tinyModelDir();

test('GRPO with LoRA raises the reward, trains only the adapters and saves PEFT adapters that load back', async () => {
  const out = join(root, 'run');
  const base = loadPretrained(modelDir).model.params.slice();
  const r = await grpoTrain(parseRecipe(recipe(modelDir)), { outDir: out, log: () => {} });
  const rewards = r.history.map((m) => m.reward);
  const first = mean(rewards.slice(0, 5)),
    last = mean(rewards.slice(-5));
  assert.ok(last > first + 0.3, `reward did not rise: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`);
  assert.ok(
    r.history[0].kl !== undefined && r.history[0].kl < 1e-6,
    'B = 0: the first policy is the base (the reference)',
  );
  assert.deepEqual(r.model.params, base, 'the base weights never move');
  assert.equal(r.model.numTrainable, 2 * (8 * (32 + 32) * 2 + 8 * (32 + 16) * 2 + 8 * (32 + 64) * 3));

  for (const dir of ['final', 'checkpoint-10']) {
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json'])
      assert.ok(existsSync(join(out, dir, f)), `${dir}/${f}`);
    assert.ok(!existsSync(join(out, dir, 'model.safetensors')), `${dir} holds no copy of the base`);
  }
  for (const f of ['trainer_state.json', 'optimizer.safetensors']) {
    assert.ok(existsSync(join(out, 'checkpoint-10', f)), `checkpoint-10/${f}`);
    assert.ok(!existsSync(join(out, 'final', f)), `final/${f} should not exist`);
  }

  const cfg = JSON.parse(readFileSync(join(out, 'final', 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.task_type, 'CAUSAL_LM');
  assert.equal(cfg.r, 8);
  assert.equal(cfg.lora_alpha, 16);
  assert.deepEqual(cfg.target_modules, [...LORA_MODULES]);
  assert.equal(cfg.bias, 'none');
  const names = [...readSafetensorsHeader(join(out, 'final', 'adapter_model.safetensors')).tensors.keys()];
  assert.equal(names.length, 2 * 7 * 2);
  assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
  assert.ok(names.includes('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight'));
  const header = readSafetensorsHeader(join(out, 'final', 'adapter_model.safetensors'));
  assert.deepEqual(header.tensors.get('base_model.model.model.layers.0.mlp.up_proj.lora_A.weight')!.shape, [8, 32]);
  assert.deepEqual(header.tensors.get('base_model.model.model.layers.0.mlp.up_proj.lora_B.weight')!.shape, [64, 8]);

  // The adapter directory loads as base + adapters, bit for bit, and scores like the trained model.
  const back = loadPretrained(join(out, 'final'));
  assert.deepEqual(back.model.adapters, r.model.adapters);
  const seqs = [
    [1, 5, 9, 9, 3, 7],
    [2, 7, 7],
  ];
  const a = await back.model.forward(seqs);
  const b = await r.model.forward(seqs);
  assert.deepEqual(a.logprobs, b.logprobs);
});

test('an interrupted LoRA run resumes to the adapters of an uninterrupted one', async () => {
  const rcp = parseRecipe(recipe(modelDir, { training: { max_steps: 6, save_steps: 3 } }));
  const full = await grpoTrain(rcp, { outDir: join(root, 'full'), log: () => {} });
  const out = join(root, 'cut');
  const ac = new AbortController();
  const a = await grpoTrain(rcp, {
    outDir: out,
    signal: ac.signal,
    log: () => {},
    onStep: (m) => {
      if (m.step === 4) ac.abort();
    },
  });
  assert.equal(a.step, 4);
  const b = await grpoTrain(rcp, { outDir: out, resume: true, log: () => {} });
  assert.equal(b.step, 6);
  let maxDiff = 0;
  for (let i = 0; i < full.model.adapters.length; i++)
    maxDiff = Math.max(maxDiff, Math.abs(b.model.adapters[i] - full.model.adapters[i]));
  assert.ok(maxDiff < 1e-5, `resumed adapters differ by ${maxDiff}`);
  // A recipe without lora refuses the adapter checkpoint in one line.
  const plain = parseRecipe({ ...recipe(modelDir, { training: { max_steps: 8 } }), lora: undefined });
  await assert.rejects(grpoTrain(plain, { outDir: out, resume: true, log: () => {} }), /holds LoRA adapters/);
});

test('a bf16 checkpoint stays bf16 under LoRA (torch_dtype auto) and trains; its adapters are saved in float32', async () => {
  const p = loadPretrained(modelDir);
  const bf = join(root, 'bf16');
  savePretrained(p, bf, { tokenizerFrom: modelDir, dtype: 'BF16' });
  const out = join(root, 'bf16-run');
  const r = await grpoTrain(parseRecipe(recipe(bf, { training: { max_steps: 3 } })), { outDir: out, log: () => {} });
  assert.equal(r.model.weightsDtype, 'bf16');
  assert.ok(r.model.adapters.some((x, i) => i >= 0 && x !== 0));
  // As PEFT keeps them (autocast_adapter_dtype): save_dtype auto is bf16 here, but it is the base's type.
  const header = readSafetensorsHeader(join(out, 'final', 'adapter_model.safetensors'));
  assert.deepEqual(new Set([...header.tensors.values()].map((e) => e.dtype)), new Set(['F32']));
  assert.throws(
    () => parseRecipe({ ...recipe(bf), lora: undefined, torch_dtype: 'bfloat16' }),
    /torch_dtype: bfloat16 weights are frozen/,
  );
  assert.throws(
    () => parseRecipe(recipe(bf, { lora: { r: 4, target_modules: ['q_proj', 'qkv_proj'] } })),
    /lora.target_modules: unknown module "qkv_proj"/,
  );
  assert.throws(() => parseRecipe(recipe(bf, { lora: { r: 0 } })), /lora.r/);
  // Full fine-tuning of the bf16 checkpoint trains float32 weights against a bf16 reference copy (ref_model_dtype
  // auto): the checkpoint itself, so the first step's KL is exactly 0; float32 asks for a float32 copy.
  const full = await grpoTrain(parseRecipe(recipe(bf, { lora: undefined, training: { max_steps: 2 } })), {
    log: () => {},
  });
  assert.equal(full.model.weightsDtype, 'f32');
  assert.equal(full.model.referenceDtype, 'bf16');
  assert.equal(full.history[0].kl, 0);
  assert.ok((full.history[1].kl ?? 0) > 0, 'the policy moved away from the reference');
  const f32 = await grpoTrain(
    parseRecipe(recipe(bf, { lora: undefined, ref_model_dtype: 'float32', training: { max_steps: 1 } })),
    { log: () => {} },
  );
  assert.equal(f32.model.referenceDtype, 'f32');
});
