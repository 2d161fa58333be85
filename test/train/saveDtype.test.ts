/**
 * save_dtype and final/: a finished run's final/ holds the model alone (no trainer or optimizer state), in the type
 * the base came in (bf16 here) or the one save_dtype names, each weight the round-to-nearest-even of the float32
 * weight the trainer ended with; the last step's checkpoint keeps float32 weights and the state, so a finished run
 * resumed for more steps matches a run that never stopped. Files are read with the test's own safetensors reader, and
 * the rounding is checked against a nearest-value search over every 16-bit pattern (not the bit tricks of
 * src/model/safetensors.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { makeSmallModel, writeArithmeticCorpus } from '../sft/helpers.ts';
import type { Model } from '../../src/engine/model.ts';
import { AhaError } from '../../src/errors.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { loadPretrained, savePretrained } from '../../src/model/pretrained.ts';
import { sourceDtype } from '../../src/model/saveDtype.ts';
import { writeSafetensors } from '../../src/model/safetensors.ts';
import { grpoTrain } from '../../src/rl/grpoTrainer.ts';
import { parseRecipe, type RecipeInput } from '../../src/rl/recipe.ts';
import { parseCliValue, resolveSftOptions } from '../../src/sft/sftConfig.ts';
import { sftTrain } from '../../src/sft/trainer.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-savedtype-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A safetensors file read from its definition: u64 header length, JSON header, little-endian data. */
function readTensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, {
      dtype: e.dtype,
      shape: e.shape,
      bytes: buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]),
    });
  }
  return out;
}

/** Every finite non-negative value of a 16-bit format by its bit pattern, decoded from the format's definition. */
function finiteValues(format: 'bf16' | 'f16'): { bits: number; value: number }[] {
  const [expBits, manBits, bias] = format === 'bf16' ? [8, 7, 127] : [5, 10, 15];
  const out: { bits: number; value: number }[] = [];
  for (let bits = 0; bits < 0x8000; bits++) {
    const e = bits >> manBits;
    const m = bits & ((1 << manBits) - 1);
    if (e === (1 << expBits) - 1) continue; // infinities and NaNs
    const value = e === 0 ? m * 2 ** (1 - bias - manBits) : (1 + m / 2 ** manBits) * 2 ** (e - bias);
    out.push({ bits, value });
  }
  return out.sort((a, b) => a.value - b.value);
}
const TABLES = { bf16: finiteValues('bf16'), f16: finiteValues('f16') };

/** The 16-bit pattern nearest to x, ties to the even pattern (the weights here are small: no overflow). */
function nearestBits(x: number, format: 'bf16' | 'f16'): number {
  const t = TABLES[format];
  const a = Math.abs(x);
  let lo = 0,
    hi = t.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (t[mid].value <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - t[lo].value,
    dHi = t[hi].value - a;
  const pick = dLo < dHi ? t[lo] : dHi < dLo ? t[hi] : (t[lo].bits & 1) === 0 ? t[lo] : t[hi];
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | pick.bits;
}

/** Asserts that `dir`'s model.safetensors holds `model`'s float32 weights in `dtype`, rounded to nearest even. */
function assertSavedAs(dir: string, model: Model, dtype: 'F32' | 'BF16' | 'F16'): void {
  const tensors = readTensors(join(dir, 'model.safetensors'));
  const params = model.params;
  let checked = 0;
  for (const t of model.layout) {
    const e = tensors.get(t.name);
    assert.ok(e, `${t.name} saved`);
    assert.equal(e.dtype, dtype, t.name);
    assert.deepEqual(e.shape, t.shape);
    for (let i = 0; i < t.size; i++) {
      const x = params[t.offset + i];
      if (dtype === 'F32') assert.equal(e.bytes.readFloatLE(4 * i), x, t.name);
      else {
        const got = e.bytes.readUInt16LE(2 * i);
        const want = nearestBits(x, dtype === 'BF16' ? 'bf16' : 'f16');
        if (got !== want)
          assert.fail(`${t.name}[${i}] = ${x}: saved 0x${got.toString(16)}, nearest even 0x${want.toString(16)}`);
      }
    }
    checked += t.size;
  }
  assert.equal(checked, model.numParams);
  assert.equal(tensors.size, model.layout.length, 'nothing but the weights');
}

const torchDtype = (dir: string) =>
  (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype;

test('16-bit saves round to nearest even, ties included, as a search over every 16-bit value says', () => {
  // Exact ties of each format (halfway between neighbours, both parities), their neighbours, subnormals, signs.
  const xs = Float32Array.from([
    1 + 2 ** -8, // bf16 tie, rounds down to even 1
    1 + 3 * 2 ** -8, // bf16 tie, rounds up to even
    1 + 2 ** -11, // f16 tie
    1 + 3 * 2 ** -11,
    -(1 + 2 ** -8 + 2 ** -20),
    2 ** -20, // f16 subnormal
    3 * 2 ** -25, // f16 subnormal tie
    1e-40, // float32 subnormal
    0,
    -0,
    0.1,
    -123.456,
    65504,
  ]);
  for (const [dtype, format] of [
    ['BF16', 'bf16'],
    ['F16', 'f16'],
  ] as const) {
    const path = join(root, `ties-${format}.safetensors`);
    writeSafetensors(path, [{ name: 'x', shape: [xs.length], data: xs }], { dtype });
    const e = readTensors(path).get('x')!;
    assert.equal(e.dtype, dtype);
    for (let i = 0; i < xs.length; i++)
      assert.equal(e.bytes.readUInt16LE(2 * i), nearestBits(xs[i], format), `${format} of ${xs[i]}`);
  }
});

test("save_dtype auto is the type a model came in: config.json's torch_dtype, else its stored weights'", () => {
  const base = tinyCharModel(join(root, 'source'), { alphabet: 'ab', seed: 2 });
  const bf = join(root, 'source-bf16');
  savePretrained(loadPretrained(base.dir), bf, { dtype: 'BF16', tokenizerFrom: base.dir });
  assert.equal(torchDtype(bf), 'bfloat16');
  assert.equal(sourceDtype(loadModelDir(bf)), 'BF16');
  const cfg = JSON.parse(readFileSync(join(bf, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete cfg.torch_dtype;
  writeFileSync(join(bf, 'config.json'), JSON.stringify(cfg));
  assert.equal(sourceDtype(loadModelDir(bf)), 'BF16', 'from the stored weights');
  writeFileSync(join(bf, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: 'float16' }));
  assert.equal(sourceDtype(loadModelDir(bf)), 'F16', 'the declared type wins, as in transformers');
  assert.equal(sourceDtype(loadModelDir(base.dir)), 'F32');
});

// GRPO on a bf16 base: full fine-tuning trains float32 weights; final/ goes back to bf16.
const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length);
const grpoBase = (() => {
  const f32 = tinyCharModel(join(root, 'grpo-base'), { alphabet: '0123456789 abc', seed: 1 });
  const dir = join(root, 'grpo-base-bf16');
  savePretrained(loadPretrained(f32.dir), dir, { dtype: 'BF16', tokenizerFrom: f32.dir });
  return dir;
})();
function grpoRecipe(training: Record<string, unknown>): RecipeInput {
  return {
    model: grpoBase,
    dataset: Array.from({ length: 8 }, (_, i) => ({ question: `q${i}`, answer: '7' })),
    prompt: '{question} ',
    rewards: [{ name: 'sevens', fn: sevens }],
    grpo: { num_generations: 4, max_completion_length: 8 },
    training: { learning_rate: 3e-3, max_steps: 3, prompts_per_step: 2, seed: 0, save_steps: 0, ...training },
  } as RecipeInput;
}

test('aha grpo: final/ of a bf16 base is bf16 (no state); the last checkpoint is float32 with the state; resuming the finished run matches an unbroken one', async () => {
  const out = join(root, 'grpo-run');
  const r = await grpoTrain(grpoRecipe({}), { outDir: out, log: () => {} });
  assert.equal(r.checkpoint, join(out, 'final'));
  assert.equal(r.model.weightsDtype, 'f32');
  const final = join(out, 'final');
  assertSavedAs(final, r.model, 'BF16');
  assert.equal(torchDtype(final), 'bfloat16');
  for (const f of ['trainer_state.json', 'optimizer.safetensors']) {
    assert.ok(!existsSync(join(final, f)), `final/${f}`);
    assert.ok(existsSync(join(out, 'checkpoint-3', f)), `checkpoint-3/${f}`);
  }
  assert.ok(existsSync(join(final, 'tokenizer.json')));
  assertSavedAs(join(out, 'checkpoint-3'), r.model, 'F32');
  assert.equal(torchDtype(join(out, 'checkpoint-3')), 'float32');
  // final/ loads back as the rounded weights.
  const back = loadPretrained(final);
  assert.equal(back.model.weightsDtype, 'bf16', 'an inference load keeps the stored bf16');

  // Resumed for two more steps: from checkpoint-3's float32 weights and moments, not from final/'s bf16 ones.
  const logs: string[] = [];
  const more = await grpoTrain(grpoRecipe({ max_steps: 5 }), { outDir: out, resume: true, log: (l) => logs.push(l) });
  assert.ok(
    logs.some((l) => l.includes(`from step 3 (${join(out, 'checkpoint-3')})`)),
    logs.join('\n'),
  );
  const unbroken = await grpoTrain(grpoRecipe({ max_steps: 5 }), {
    outDir: join(root, 'grpo-unbroken'),
    log: () => {},
  });
  let maxDiff = 0;
  for (let i = 0; i < unbroken.model.numParams; i++)
    maxDiff = Math.max(maxDiff, Math.abs(more.model.params[i] - unbroken.model.params[i]));
  assert.ok(maxDiff < 1e-6, `resumed run ends ${maxDiff} from the unbroken one`);
  assert.deepEqual(
    more.history.map((m) => m.reward),
    unbroken.history.slice(3).map((m) => m.reward),
  );
  assertSavedAs(final, more.model, 'BF16');
  assert.ok(existsSync(join(out, 'checkpoint-5', 'optimizer.safetensors')));

  // Resumed with nothing left to do: final/ is written again from checkpoint-5, which stays.
  const again = await grpoTrain(grpoRecipe({ max_steps: 5 }), { outDir: out, resume: true, log: () => {} });
  assert.equal(again.history.length, 0);
  assertSavedAs(final, more.model, 'BF16');
  // A finished run is not started over by accident.
  await assert.rejects(grpoTrain(grpoRecipe({}), { outDir: out }), /already holds a run/);
});

test("aha grpo: save_dtype float32 keeps final/ float32; save_total_limit 1 keeps the last step's checkpoint", async () => {
  const out = join(root, 'grpo-f32');
  const r = await grpoTrain(grpoRecipe({ save_dtype: 'float32', save_steps: 1, save_total_limit: 1 }), {
    outDir: out,
    log: () => {},
  });
  assertSavedAs(join(out, 'final'), r.model, 'F32');
  assert.equal(torchDtype(join(out, 'final')), 'float32');
  assert.ok(existsSync(join(out, 'checkpoint-3', 'optimizer.safetensors')));
  assert.ok(!existsSync(join(out, 'checkpoint-2')));
});

test('a bad save_dtype is a one-line error naming the field (recipe, sft option, --save-dtype)', () => {
  assert.throws(
    () => parseRecipe(grpoRecipe({ save_dtype: 'bf16' })),
    (e: unknown) =>
      e instanceof AhaError && /^recipe: training\.save_dtype: .*bfloat16/.test(e.message) && !e.message.includes('\n'),
  );
  const sft = (v: string, cli: boolean) =>
    resolveSftOptions(
      cli
        ? { cli: { model: 'm', data: 'd', out: 'o', save_dtype: parseCliValue('save_dtype', v) } }
        : { cli: { model: 'm', data: 'd', out: 'o' }, config: { save_dtype: v }, configName: 'cfg.yaml' },
    );
  assert.throws(
    () => sft('fp16', true),
    (e: unknown) => e instanceof AhaError && /^--save-dtype: .*float16.*\(got "fp16"\)$/.test(e.message),
  );
  assert.throws(
    () => sft('half', false),
    (e: unknown) => e instanceof AhaError && /^cfg\.yaml: save_dtype: .*\(got "half"\)$/.test(e.message),
  );
  assert.equal(sft('float16', true).save_dtype, 'float16');
  assert.equal(sft('auto', false).save_dtype, 'auto');
});

test('aha sft: final/ in the base type (bf16) by default, float16 when asked; the last checkpoint keeps float32 and the state', async () => {
  const f32 = makeSmallModel(join(root, 'sft-base'), { seed: 3 });
  const bf = join(root, 'sft-base-bf16');
  savePretrained(loadPretrained(f32.dir), bf, { dtype: 'BF16', tokenizerFrom: f32.dir });
  const data = join(root, 'sft.jsonl');
  writeArithmeticCorpus(data, 40, 5);
  for (const [save, dtype] of [
    [undefined, 'BF16'],
    ['float16', 'F16'],
  ] as const) {
    const out = join(root, `sft-${dtype}`);
    const o = resolveSftOptions({
      cli: {
        model: bf,
        data,
        out,
        max_steps: 4,
        save_steps: 3,
        per_device_train_batch_size: 4,
        learning_rate: 1e-3,
        ...(save ? { save_dtype: save } : {}),
      },
    });
    const r = await sftTrain(o);
    assert.equal(r.status, 'completed');
    assert.equal(r.checkpoint, join(out, 'checkpoint-4'));
    // The trainer's float32 weights, as the last checkpoint holds them (the same bits: checked against final/).
    const model = loadPretrained(join(out, 'checkpoint-4')).model;
    assert.equal(model.weightsDtype, 'f32');
    assertSavedAs(join(out, 'final'), model, dtype);
    assert.equal(torchDtype(join(out, 'final')), dtype === 'BF16' ? 'bfloat16' : 'float16');
    for (const f of ['trainer_state.json', 'optimizer.safetensors']) {
      assert.ok(!existsSync(join(out, 'final', f)), `final/${f}`);
      assert.ok(existsSync(join(out, 'checkpoint-4', f)), `checkpoint-4/${f}`);
    }
    assert.equal(torchDtype(join(out, 'checkpoint-4')), 'float32');
  }
});
