// The one checkpoint format every trainer writes: a Hugging Face model dir plus trainer_state.json and the AdamW
// moments per parameter. Round trips are bit-exact; SFT and GRPO runs go through it in test/sft and test/rl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.ts';
import { AhaError } from '../../src/errors.ts';
import { initModel } from '../../src/model/initModel.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';
import { loadOptimizerState, saveOptimizerState } from '../../src/train/optimizerState.ts';
import {
  latestCheckpoint,
  listCheckpoints,
  loadCheckpointOptimizer,
  readTokenizerFiles,
  readTrainerState,
  saveCheckpoint,
  StepLog,
  TRAINER_STATE_FORMAT,
  type CheckpointState,
} from '../../src/train/runDir.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-rundir-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

async function trainedModel(dir: string): Promise<ReturnType<typeof loadPretrained>> {
  initModel({ config: 'tiny', tokenizer: 'chars', out: dir, seed: 4 });
  const p = loadPretrained(dir);
  const seqs = [
    [5, 9, 13, 7, 22, 40],
    [3, 8, 8, 2],
  ];
  for (let k = 0; k < 3; k++) {
    p.model.zeroGrad();
    await p.model.forward(seqs, { train: true });
    await p.model.backward(seqs.map((s) => new Float32Array(s.length - 1).fill(-0.1 * (k + 1))));
    await p.model.step({ lr: 1e-2 });
  }
  return p;
}

const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

for (const trainer of ['sft', 'grpo']) {
  test(`${trainer}: a checkpoint round-trips weights, moments, step and state bit for bit`, async () => {
    const dir = join(root, trainer);
    const p = await trainedModel(join(dir, 'base'));
    const state = {
      format: TRAINER_STATE_FORMAT,
      trainer,
      global_step: 3,
      optimizer_step: 3,
      extra: { a: [1, 2] },
    } as CheckpointState;
    const saved = { model: p.model, hf: p.hf, tokenizerFiles: readTokenizerFiles(p.dir) };
    const ckpt = saveCheckpoint(join(dir, 'run'), saved, state, null);
    assert.equal(ckpt, join(dir, 'run', 'checkpoint-3'));
    for (const f of [
      'config.json',
      'model.safetensors',
      'trainer_state.json',
      'optimizer.safetensors',
      'tokenizer.json',
    ]) {
      assert.ok(existsSync(join(ckpt, f)), f);
    }
    // Per-parameter moments, named as PyTorch's optimizer state names them.
    const names = [...readSafetensorsHeader(join(ckpt, 'optimizer.safetensors')).tensors.keys()];
    assert.equal(names.length, 2 * p.model.layout.length);
    assert.ok(names.includes('exp_avg.model.embed_tokens.weight') && names.includes('exp_avg_sq.model.norm.weight'));

    const back = loadPretrained(ckpt);
    const st = readTrainerState(ckpt, trainer);
    assert.deepEqual(st, state);
    loadCheckpointOptimizer(ckpt, back.model, st);
    assert.equal(back.model.optimizerState().step, 3);
    assert.equal(Buffer.compare(bytes(back.model.params), bytes(p.model.params)), 0);
    for (const b of ['adamM', 'adamV'] as const) {
      assert.equal(
        Buffer.compare(
          bytes(back.model.view(b, 0, back.model.numParams)),
          bytes(p.model.view(b, 0, p.model.numParams)),
        ),
        0,
        b,
      );
    }
    // The next step from the reloaded state equals the next step of the original.
    for (const m of [p.model, back.model]) {
      m.zeroGrad();
      await m.forward([[1, 2, 3, 4]], { train: true });
      await m.backward([new Float32Array([0.3, -0.2, 0.1])]);
      await m.step({ lr: 1e-2 });
    }
    assert.equal(Buffer.compare(bytes(back.model.params), bytes(p.model.params)), 0);
    const other = trainer === 'sft' ? 'grpo' : 'sft';
    assert.throws(
      () => readTrainerState(ckpt, other),
      (e: Error) =>
        e instanceof AhaError && new RegExp(`written by the ${trainer} trainer, not ${other}`).test(e.message),
    );
  });
}

test("save_total_limit keeps the newest checkpoints; latestCheckpoint sees an older run directory's final/ when asked", async () => {
  const dir = join(root, 'limit');
  const p = await trainedModel(join(dir, 'base'));
  const saved = { model: p.model, hf: p.hf, tokenizerFiles: new Map<string, Buffer>() };
  const out = join(dir, 'run');
  for (const step of [1, 2, 3])
    saveCheckpoint(
      out,
      saved,
      { format: TRAINER_STATE_FORMAT, trainer: 'grpo', global_step: step, optimizer_step: step },
      2,
    );
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [2, 3],
  );
  assert.equal(latestCheckpoint(out)?.step, 3);
  saveCheckpoint(
    out,
    saved,
    { format: TRAINER_STATE_FORMAT, trainer: 'grpo', global_step: 5, optimizer_step: 5 },
    2,
    'final',
  );
  assert.deepEqual(latestCheckpoint(out, { includeFinal: true }), { step: 5, dir: join(out, 'final') });
  assert.equal(latestCheckpoint(out)?.step, 3);
  writeFileSync(join(out, 'checkpoint-3', 'trainer_state.json'), '{"global_step": 3}');
  assert.throws(() => readTrainerState(join(out, 'checkpoint-3'), 'grpo'), /not an aha trainer state/);
});

test('optimizer files of aha 0.1 (one flat m and v) still load', async () => {
  const p = await trainedModel(join(root, 'legacy-base'));
  const m = Float32Array.from(p.model.view('adamM', 0, p.model.numParams));
  const v = Float32Array.from(p.model.view('adamV', 0, p.model.numParams));
  const file = join(root, 'legacy-optimizer.safetensors');
  writeSafetensors(file, [
    { name: 'm', shape: [m.length], data: m },
    { name: 'v', shape: [v.length], data: v },
  ]);
  const fresh = new Model(p.model.config);
  loadOptimizerState(file, fresh, 7);
  assert.equal(fresh.optimizerState().step, 7);
  assert.equal(Buffer.compare(bytes(fresh.view('adamM', 0, fresh.numParams)), bytes(m)), 0);
  assert.equal(Buffer.compare(bytes(fresh.view('adamV', 0, fresh.numParams)), bytes(v)), 0);
  // And the current format round-trips through a fresh model too.
  const now = join(root, 'now.safetensors');
  saveOptimizerState(now, p.model);
  const again = new Model(p.model.config);
  loadOptimizerState(now, again, 3);
  assert.equal(Buffer.compare(bytes(again.view('adamV', 0, again.numParams)), bytes(v)), 0);
  assert.throws(() => loadOptimizerState(join(root, 'nope.safetensors'), again, 1), /file not found/);
});

test('StepLog drops records past a step and lines torn by a kill', () => {
  const path = join(root, 'metrics.jsonl');
  const log = new StepLog(path);
  log.reset();
  log.append({ step: 1, x: 1 });
  log.appendAll([{ step: 2 }, { step: 3 }]);
  writeFileSync(path, readFileSync(path, 'utf8') + '{"step": 4, "x":');
  log.truncateAfter(2);
  assert.deepEqual(log.read(), [{ step: 1, x: 1 }, { step: 2 }]);
});
