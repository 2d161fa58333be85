/**
 * LoRA adapters on disk: PEFT's names and config, bit-exact reload, `aha merge` = W + (alpha/r) B A, and SFT with
 * LoRA end to end (loss falls, the checkpoint is an adapter, resume continues it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { writeAdapterFiles, readAdapterConfig } from '../../src/model/adapter.ts';
import { resolveLora } from '../../src/engine/lora.ts';
import { mulberry32 } from '../../src/data/rng.ts';
import { resolveSftOptions } from '../../src/sft/sftConfig.ts';
import { sftTrain } from '../../src/sft/trainer.ts';
import { makeSmallModel, writeArithmeticCorpus } from '../sft/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-adapter-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = makeSmallModel(dir, { seed: 3 });
const AHA = resolve('bin/aha.js');

test('an adapter saves with PEFT names, reloads bit for bit, and aha merge writes W + (alpha/r) B A', async () => {
  const lora = resolveLora({ r: 4, lora_alpha: 12, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
  const p = loadPretrained(base.dir, { lora, loraSeed: 5 });
  const rand = mulberry32(9);
  const a = p.model.adapters;
  for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * 0.2;
  const adapterDir = join(dir, 'adapter');
  mkdirSync(adapterDir);
  writeAdapterFiles(adapterDir, p.model, base.dir);

  const cfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 12);
  assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
  assert.equal(readAdapterConfig(adapterDir).baseModel, resolve(base.dir));
  const names = [...readSafetensorsHeader(join(adapterDir, 'adapter_model.safetensors')).tensors.keys()].sort();
  assert.deepEqual(
    names.filter((n) => n.includes('layers.0.')),
    [
      'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight',
      'base_model.model.model.layers.0.mlp.down_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
    ],
  );

  const back = loadPretrained(adapterDir);
  assert.deepEqual(back.model.adapters, p.model.adapters);
  assert.deepEqual(back.model.params, p.model.params);

  const merged = join(dir, 'merged');
  const r = spawnSync(process.execPath, [AHA, 'merge', '--adapter', adapterDir, '--out', merged], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /merged 6 adapted matrices/);
  const m = new Float32Array(p.model.numParams);
  loadModelDir(merged).loadParams(m);
  // The expected weights, from the formula in float64 (scale = alpha / r = 3).
  const W = p.model.params;
  const byName = new Map(p.model.adapterLayout.map((t) => [t.name, t]));
  let checked = 0;
  for (const t of p.model.layout) {
    const mod = /^model\.layers\.(\d+)\.(self_attn\.(q|v)_proj|mlp\.down_proj)\.weight$/.exec(t.name);
    if (!mod) {
      for (let i = 0; i < t.size; i++) assert.equal(m[t.offset + i], W[t.offset + i], `${t.name} is not adapted`);
      continue;
    }
    const A = byName.get(`base_model.model.${t.name.replace('.weight', '')}.lora_A.weight`)!;
    const B = byName.get(`base_model.model.${t.name.replace('.weight', '')}.lora_B.weight`)!;
    const [out, inF] = t.shape;
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[B.offset + o * 4 + k] * a[A.offset + k * inF + i];
        const want = Math.fround(W[t.offset + o * inF + i] + 3 * s);
        const got = m[t.offset + o * inF + i];
        assert.ok(Math.abs(got - want) <= 1e-7 * Math.max(1, Math.abs(want)), `${t.name}[${o},${i}] ${got} vs ${want}`);
        checked++;
      }
  }
  assert.ok(checked > 0);
  // The merged model scores like base + adapters.
  const seqs = [
    [3, 9, 12, 4, 4, 7, 1],
    [5, 2],
  ];
  const lm = await loadPretrained(merged).model.forward(seqs);
  const la = await back.model.forward(seqs);
  lm.logprobs.forEach((x, i) =>
    x.forEach((v, j) =>
      assert.ok(Math.abs(v - la.logprobs[i][j]) < 1e-5, `seq ${i} pos ${j}: ${v} vs ${la.logprobs[i][j]}`),
    ),
  );
  const bad = spawnSync(process.execPath, [AHA, 'merge', '--adapter', base.dir, '--out', join(dir, 'x')], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^aha: .*not an adapter directory \(no adapter_config.json\)\n$/);
  // --dtype f16 writes F16 weights (and says so in config.json); an unknown type is one line.
  const f16 = join(dir, 'merged-f16');
  const h = spawnSync(process.execPath, [AHA, 'merge', '--adapter', adapterDir, '--out', f16, '--dtype', 'f16'], {
    encoding: 'utf8',
  });
  assert.equal(h.status, 0, h.stderr);
  assert.equal(loadModelDir(f16).storedDtype(), 'F16');
  assert.equal(JSON.parse(readFileSync(join(f16, 'config.json'), 'utf8')).torch_dtype, 'float16');
  const q = spawnSync(
    process.execPath,
    [AHA, 'merge', '--adapter', adapterDir, '--out', join(dir, 'y'), '--dtype', 'q8'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(q.stderr, 'aha: --dtype: expected f32, bf16 or f16 (got "q8")\n');
});

test('SFT with LoRA (TRL flags): loss falls, checkpoints are adapters, resume continues them', async () => {
  const train = join(dir, 'train.jsonl');
  writeArithmeticCorpus(train, 200, 11);
  const out = join(dir, 'sft');
  const o = (extra: Record<string, unknown>) =>
    resolveSftOptions({
      cli: {
        model: base.dir,
        data: train,
        out,
        max_steps: 12,
        per_device_train_batch_size: 8,
        learning_rate: 1e-2,
        save_steps: 6,
        logging_steps: 1,
        use_peft: true,
        lora_r: 8,
        lora_alpha: 16,
        ...extra,
      },
    });
  const first = await sftTrain(o({}), { onStep: (s) => s.step === 6 });
  assert.equal(first.status, 'interrupted');
  assert.ok(existsSync(join(out, 'checkpoint-6', 'adapter_model.safetensors')));
  assert.ok(!existsSync(join(out, 'checkpoint-6', 'model.safetensors')));
  const second = await sftTrain(o({ resume_from_checkpoint: true }));
  assert.equal(second.status, 'completed');
  assert.equal(second.globalStep, 12);
  const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => typeof m.loss === 'number');
  // A freshly initialised base (std 0.02) has near-zero logits that adapters cannot scale (the head and the final
  // norm are frozen), so the loss can only fall so far: 4.10 -> 3.86 in 12 steps here.
  assert.ok(log[log.length - 1].loss < log[0].loss - 0.15, `loss ${log[0].loss} → ${log[log.length - 1].loss}`);
  const fin = loadPretrained(join(out, 'final'));
  assert.ok(fin.model.lora);
  assert.deepEqual(fin.model.params, loadPretrained(base.dir).model.params, 'the base is untouched');
});
