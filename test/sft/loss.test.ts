/**
 * The SFT loss on the engine: only target tokens carry gradient, accumulation over micro-batches gives the
 * gradient of the whole batch, and the gradient is that of the masked mean NLL (checked by a directional finite
 * difference, which the all-token loss fails).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSftRecord, type SftEncodeContext, type SftExample } from '../../src/sft/dataset.ts';
import { accumulateBatchGradient, evaluateLoss, nllLogprobGrad } from '../../src/sft/loss.ts';
import { makeSmallModel, maxDiff } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-sft-loss-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const {
  model,
  tokenizer,
  dir: modelDir,
} = makeSmallModel(dir, { alphabet: 'abehinoqrstuy:AU \n', hidden: 32, layers: 2, seed: 3 });
const ctx: SftEncodeContext = { tokenizer, chatTemplate: modelDir };
const ex = (value: Record<string, unknown>): SftExample => ({ ...encodeSftRecord(value, ctx, 't:1'), line: 1 });
const chat = (last: string): SftExample =>
  ex({
    messages: [
      { role: 'user', content: 'hi there' },
      { role: 'assistant', content: 'yo boss' },
      { role: 'user', content: last },
    ],
  });

async function gradOf(
  batch: SftExample[],
  micro: number[][] = [batch.map((_, i) => i)],
): Promise<{ g: Float32Array; loss: number }> {
  model.zeroGrad();
  const r = await accumulateBatchGradient(model, batch, micro);
  return { g: Float32Array.from(model.grads), loss: r.loss };
}

test('dL/dlogprob is -1/T at targets and exactly 0 elsewhere', () => {
  const e = ex({ prompt: 'ab', completion: 'ba' });
  assert.deepEqual([...nllLogprobGrad(e, 4)], [0, -0.25, -0.25, -0.25]);
});

test('a sequence with no targets gives the engine a zero gradient, alone or batched with another', async () => {
  const e = chat('so');
  const none: SftExample = { ...e, mask: new Uint8Array(e.ids.length) };
  model.zeroGrad();
  await model.forward([none.ids], { train: true });
  await model.backward([nllLogprobGrad(none, 1)]);
  assert.ok(
    model.grads.every((x) => x === 0),
    'all-zero gradient',
  );
  const alone = await gradOf([e]);
  const withNone = await gradOf([e, none]);
  const { diff, scale } = maxDiff(withNone.g, alone.g);
  assert.ok(scale > 0 && diff <= 1e-6 * scale, `masked-out sequence changed the gradient by ${diff} (scale ${scale})`);
  assert.ok(Math.abs(withNone.loss - alone.loss) < 1e-6);
});

test('tokens after the last assistant turn (masked out, context of nothing) do not change the gradient; a target does', async () => {
  const a = await gradOf([chat('so')]);
  const b = await gradOf([chat('a question')]);
  const d = maxDiff(a.g, b.g);
  assert.ok(d.diff <= 1e-6 * d.scale, `trailing user turn changed the gradient by ${d.diff}`);
  const c = await gradOf([
    ex({
      messages: [
        { role: 'user', content: 'hi there' },
        { role: 'assistant', content: 'yo bass' },
        { role: 'user', content: 'so' },
      ],
    }),
  ]);
  assert.ok(maxDiff(a.g, c.g).diff > 1e-3 * d.scale, 'changing an assistant token changes the gradient');
});

test('gradient accumulation over micro-batches equals the one-batch gradient (normalised by all targets)', async () => {
  const batch = [
    ex({ text: 'a bee sits' }),
    ex({ prompt: 'hi', completion: 'there you are' }),
    chat('so'),
    ex({ prompt: 'United', completion: 'States' }),
    ex({ text: 'ha' }),
    ex({ text: 'rather not\nyes' }),
  ];
  const whole = await gradOf(batch);
  const split = await gradOf(batch, [[0, 1], [2], [3, 4, 5]]);
  const d = maxDiff(split.g, whole.g);
  assert.ok(d.diff <= 2e-6 * d.scale, `accumulated gradient off by ${d.diff} (scale ${d.scale})`);
  assert.ok(Math.abs(split.loss - whole.loss) < 1e-6);
  // The reported loss is the mean target NLL, computed independently from a plain forward pass.
  const r = await model.forward(batch.map((e) => e.ids));
  let nll = 0;
  let n = 0;
  batch.forEach((e, s) => {
    for (let t = 1; t < e.ids.length; t++)
      if (e.mask[t]) {
        nll -= r.logprobs[s][t - 1];
        n++;
      }
  });
  assert.ok(Math.abs(whole.loss - nll / n) < 1e-6, `${whole.loss} vs ${nll / n}`);
  const ev = await evaluateLoss(model, batch, { maxSequences: 4 });
  assert.equal(ev.targetTokens, n);
  assert.ok(Math.abs(ev.loss - nll / n) < 1e-6);
});

test('the gradient is that of the masked mean NLL: directional finite difference', async () => {
  const batch = [ex({ prompt: 'hi there', completion: 'yo' }), chat('so')];
  const { g } = await gradOf(batch);
  let norm = 0;
  for (const x of g) norm += x * x;
  norm = Math.sqrt(norm);
  const p0 = Float32Array.from(model.params);
  const eps = 1e-2;
  const lossAt = async (sign: number, allTokens: boolean) => {
    for (let i = 0; i < p0.length; i++) model.params[i] = p0[i] + (sign * eps * g[i]) / norm;
    const seqs = allTokens ? batch.map((e) => ({ ...e, mask: new Uint8Array(e.ids.length).fill(1) })) : batch;
    return (await evaluateLoss(model, seqs, { maxSequences: 8 })).loss;
  };
  const fd = ((await lossAt(1, false)) - (await lossAt(-1, false))) / (2 * eps);
  const fdAll = ((await lossAt(1, true)) - (await lossAt(-1, true))) / (2 * eps);
  model.params.set(p0);
  // d/de L(p + e g/|g|) = |g| for the loss the gradient belongs to.
  assert.ok(Math.abs(fd - norm) < 0.05 * norm, `finite difference ${fd} vs |g| ${norm}`);
  assert.ok(Math.abs(fdAll - norm) > 0.2 * norm, `the all-token loss should not match (${fdAll} vs ${norm})`);
});
