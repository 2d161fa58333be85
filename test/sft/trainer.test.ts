/**
 * sftTrain end to end on a small char-level model: held-out loss falls, and a run stopped (gracefully, or killed
 * between checkpoints) then resumed ends exactly where an uninterrupted run with the same seed ends.
 */
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhaError } from '../../src/errors.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { loadSftDataset } from '../../src/sft/dataset.ts';
import { evaluateLoss } from '../../src/sft/loss.ts';
import { metricsLog } from '../../src/train/runDir.ts';
import { resolveSftOptions, type SftOptions } from '../../src/sft/sftConfig.ts';
import { sftTrain } from '../../src/sft/trainer.ts';
import { makeSmallModel, maxDiff, writeArithmeticCorpus } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-sft-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = makeSmallModel(dir, { seed: 1 });
const train = join(dir, 'train.jsonl');
const heldOut = join(dir, 'eval.jsonl');
writeArithmeticCorpus(train, 600, 11);
writeArithmeticCorpus(heldOut, 60, 12);

const options = (cli: Record<string, unknown>): SftOptions =>
  resolveSftOptions({ cli: { model: base.dir, data: train, ...cli } });

test('a short run drives held-out loss down (measured independently on the final model)', async () => {
  const out = join(dir, 'learn');
  const o = options({
    out,
    eval_data: heldOut,
    max_steps: 80,
    per_device_train_batch_size: 16,
    learning_rate: 3e-3,
    lr_scheduler_type: 'cosine',
    warmup_steps: 5,
    eval_on_start: true,
    eval_steps: 40,
    logging_steps: 10,
    save_steps: 1000,
  });
  const r = await sftTrain(o);
  assert.equal(r.status, 'completed');
  assert.equal(r.globalStep, 80);
  const evalOf = async (modelDir: string) => {
    const p = loadPretrained(modelDir, { requireTokenizer: true });
    const { examples } = loadSftDataset(heldOut, { tokenizer: p.tokenizer!, maxSeqLength: 256 });
    return (await evaluateLoss(p.model, examples, { maxSequences: 16 })).loss;
  };
  const before = await evalOf(base.dir);
  const afterLoss = await evalOf(join(out, 'final'));
  assert.ok(afterLoss < before - 1.5, `held-out loss ${before} → ${afterLoss}`);
  assert.ok(afterLoss < 2.5, `held-out loss after ${afterLoss}`);
  // The run's own records agree.
  const evals = metricsLog(out)
    .read()
    .filter((m) => 'eval_loss' in m);
  assert.deepEqual(
    evals.map((m) => m.step),
    [0, 40, 80],
  );
  assert.ok(Math.abs((evals[0].eval_loss as number) - before) < 1e-6);
  assert.ok(Math.abs((evals[2].eval_loss as number) - afterLoss) < 1e-6);
  assert.ok(Math.abs(r.evalLoss! - afterLoss) < 1e-6);
  const trainRecs = metricsLog(out)
    .read()
    .filter((m) => 'loss' in m);
  assert.deepEqual(
    trainRecs.map((m) => m.step),
    [10, 20, 30, 40, 50, 60, 70, 80],
  );
  for (const k of ['epoch', 'loss', 'learning_rate', 'grad_norm', 'tokens_per_second', 'num_tokens'])
    assert.ok(k in trainRecs[0], k);
  // final/ is a complete model directory with the tokenizer and its chat template.
  const fin = loadPretrained(join(out, 'final'), { requireTokenizer: true });
  assert.ok(fin.tokenizer && existsSync(join(out, 'final', 'tokenizer_config.json')));
  assert.match(readFileSync(join(out, 'final', 'tokenizer_config.json'), 'utf8'), /chat_template/);
  assert.ok(existsSync(join(out, 'checkpoint-80', 'optimizer.safetensors')));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).max_steps, 80);
});

describe('stop and resume', () => {
  // 135 training sequences, 6 per step: the run crosses the epoch boundary at step 23.
  const common = {
    max_steps: 26,
    per_device_train_batch_size: 3,
    gradient_accumulation_steps: 2,
    micro_batch_tokens: 150,
    learning_rate: 2e-3,
    lr_scheduler_type: 'cosine',
    warmup_steps: 3,
    weight_decay: 0.01,
    eval_fraction: 0.1,
    eval_steps: 8,
    logging_steps: 3,
    save_steps: 5,
    seed: 7,
  };
  const small = join(dir, 'small.jsonl');
  writeArithmeticCorpus(small, 150, 5);
  const opts = (out: string, extra: Record<string, unknown> = {}) => options({ ...common, data: small, out, ...extra });
  const trainRecords = (out: string) =>
    metricsLog(out)
      .read()
      .map(({ tokens_per_second: _t, ...rest }) => rest);
  // The engine's gradient-norm reduction is threaded, so its last bits may differ from run to run.
  const sameRecords = (got: Record<string, unknown>[], want: Record<string, unknown>[]) => {
    assert.deepEqual(
      got.map((r) => Object.keys(r)),
      want.map((r) => Object.keys(r)),
    );
    got.forEach((r, i) => {
      for (const [k, v] of Object.entries(r)) {
        if (typeof v === 'number')
          assert.ok(Math.abs(v - (want[i][k] as number)) <= 1e-6, `record ${i} ${k}: ${v} vs ${want[i][k]}`);
        else assert.deepEqual(v, want[i][k]);
      }
    });
  };
  let reference: { lastLoss: number; evalLoss: number; params: Float32Array; metrics: Record<string, unknown>[] };

  test('uninterrupted reference run (save_total_limit keeps the newest checkpoints)', async () => {
    const out = join(dir, 'ref');
    const r = await sftTrain(opts(out, { save_total_limit: 2 }));
    assert.equal(r.status, 'completed');
    assert.deepEqual(
      readdirSync(out)
        .filter((n) => n.startsWith('checkpoint-'))
        .sort(),
      ['checkpoint-25', 'checkpoint-26'],
    );
    reference = {
      lastLoss: r.lastLoss!,
      evalLoss: r.evalLoss!,
      params: Float32Array.from(loadPretrained(join(out, 'final')).model.params),
      metrics: trainRecords(out),
    };
  });

  test('stopped by a hook after step 7 (as on SIGINT): checkpoint-7, then resume matches the reference', async () => {
    const out = join(dir, 'graceful');
    const first = await sftTrain(opts(out), { onStep: (s) => s.step === 7 });
    assert.equal(first.status, 'interrupted');
    assert.equal(first.globalStep, 7);
    assert.equal(first.checkpoint, join(out, 'checkpoint-7'));
    assert.ok(!existsSync(join(out, 'final')));
    const state = JSON.parse(readFileSync(join(out, 'checkpoint-7', 'trainer_state.json'), 'utf8'));
    assert.equal(state.global_step, 7);
    assert.equal(state.optimizer_step, 7);
    assert.equal(state.trainer, 'sft');
    assert.equal(state.seed, 7);
    const second = await sftTrain(opts(out, { resume_from_checkpoint: true }));
    assert.equal(second.status, 'completed');
    assert.ok(Math.abs(second.lastLoss! - reference.lastLoss) <= 1e-6, `${second.lastLoss} vs ${reference.lastLoss}`);
    assert.ok(Math.abs(second.evalLoss! - reference.evalLoss) <= 1e-6);
    const d = maxDiff(loadPretrained(join(out, 'final')).model.params, reference.params);
    assert.ok(d.diff <= 1e-6, `final weights differ by ${d.diff}`);
    sameRecords(trainRecords(out), reference.metrics);
  });

  test('killed between checkpoints (step 13, last checkpoint 10): resume redoes 11..13 and matches the reference', async () => {
    const out = join(dir, 'killed');
    await assert.rejects(
      sftTrain(opts(out), {
        onStep: (s) => {
          if (s.step === 13) throw new Error('killed');
        },
      }),
      /killed/,
    );
    assert.ok(existsSync(join(out, 'checkpoint-10')) && !existsSync(join(out, 'checkpoint-13')));
    assert.ok(
      metricsLog(out)
        .read()
        .some((m) => m.step === 12),
      'records past the checkpoint were written',
    );
    // Starting over without --resume is refused; so is resuming with another data order.
    await assert.rejects(
      sftTrain(opts(out)),
      (e: unknown) => e instanceof AhaError && /already holds a run: pass --resume/.test(e.message),
    );
    await assert.rejects(
      sftTrain(opts(out, { resume_from_checkpoint: true, seed: 8 })),
      (e: unknown) => e instanceof AhaError && /seed was 7 when the run started, now 8/.test(e.message),
    );
    // save_total_limit deletes checkpoint-10, the one the resumed run loaded, while the run still needs its files.
    const r = await sftTrain(opts(out, { resume_from_checkpoint: true, save_total_limit: 1 }));
    assert.equal(r.status, 'completed');
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith('checkpoint-')),
      ['checkpoint-26'],
    );
    assert.ok(Math.abs(r.lastLoss! - reference.lastLoss) <= 1e-6, `${r.lastLoss} vs ${reference.lastLoss}`);
    const d = maxDiff(loadPretrained(join(out, 'final')).model.params, reference.params);
    assert.ok(d.diff <= 1e-6, `final weights differ by ${d.diff}`);
    sameRecords(trainRecords(out), reference.metrics);
  });

  test('resuming with nothing to resume, and a changed data file, are errors', async () => {
    const out = join(dir, 'empty');
    await assert.rejects(
      sftTrain(opts(out, { resume_from_checkpoint: true })),
      (e: unknown) => e instanceof AhaError && /no checkpoint to resume from/.test(e.message),
    );
    const out2 = join(dir, 'changed');
    await sftTrain(opts(out2), { onStep: (s) => s.step === 2 });
    const copy = join(dir, 'small-changed.jsonl');
    writeFileSync(copy, readFileSync(small, 'utf8').replace(/\d/, '9'));
    writeFileSync(
      join(out2, 'config.json'),
      JSON.stringify({ ...JSON.parse(readFileSync(join(out2, 'config.json'), 'utf8')), data: copy }),
    );
    await assert.rejects(
      sftTrain(opts(out2, { data: copy, resume_from_checkpoint: true })),
      (e: unknown) => e instanceof AhaError && /training data differs/.test(e.message),
    );
  });
});

test('chat data with packing runs end to end', async () => {
  const data = join(dir, 'chat.jsonl');
  const lines = Array.from({ length: 20 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: `${i}+1` },
        { role: 'assistant', content: `${i + 1}` },
      ],
    }),
  );
  writeFileSync(data, lines.join('\n') + '\n');
  const out = join(dir, 'chat');
  const r = await sftTrain(
    options({
      data,
      out,
      packing: true,
      max_seq_length: 32,
      max_steps: 3,
      per_device_train_batch_size: 2,
      learning_rate: 1e-3,
    }),
  );
  assert.equal(r.status, 'completed');
  assert.equal(r.trainStats.byFormat.messages, 20);
  // 20 chats of 10-12 tokens ("<|user|>i+1<eos><|assistant|>j<eos>") → ceil(223 / 32) rows.
  assert.equal(r.trainSequences, Math.ceil(r.trainStats.tokens / 32));
});
