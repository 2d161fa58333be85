// Sampling with a 16-bit KV cache (kvCacheDtype bf16 / f16): every sampled token's log-prob against the float64
// reference transformer whose keys and values are rounded the same way, and the size of the effect of that
// rounding against the float32 cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../src/engine/model.ts';
import type { EngineConfig } from '../../src/engine/types.ts';
import { AhaError } from '../../src/errors.ts';
import { TINY_CONFIGS, randomParams, mulberry32 } from '../support/tinyConfigs.ts';
import { logSoftmax, referenceLogits } from '../support/referenceTransformer.ts';

/** x rounded to float32, then to bf16 or f16, nearest even (float64 arithmetic, independent of the engine). */
function roundTo16(x: number, dtype: 'bf16' | 'f16'): number {
  const f = Math.fround(x);
  if (f === 0 || !Number.isFinite(f)) return f;
  const a = Math.abs(f);
  // bf16 keeps 8 significant bits at every exponent float32 has; f16 keeps 11 down to 2^-14, then a fixed 2^-24 step.
  const e = Math.floor(Math.log2(a));
  const ulp = dtype === 'bf16' ? 2 ** (e - 7) : 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp,
    fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return Math.sign(f) * r * ulp;
}

function makeModel(config: EngineConfig, seed: number): Model {
  const m = new Model(config);
  m.params.set(randomParams(config, seed, 0.3));
  return m;
}

/** Log-prob of each sampled token under the reference, keys and values rounded by round (if given) everywhere. */
function referenceLogprobs(
  cfg: EngineConfig,
  params: Float32Array,
  prompt: number[],
  tokens: number[],
  round?: (x: number) => number,
) {
  return tokens.map((tok, j) => {
    const seq = [...prompt, ...tokens.slice(0, j)];
    const logits = referenceLogits(cfg, params, seq, { roundKv: round });
    return logSoftmax(logits[logits.length - 1])[tok];
  });
}

for (const dtype of ['bf16', 'f16'] as const) {
  test(`a ${dtype} KV cache: sampled log-probs equal the float64 reference with ${dtype}-rounded keys and values`, async (t) => {
    const cfg = { ...TINY_CONFIGS.allFeatures, maxPositionEmbeddings: 64 };
    const m = makeModel(cfg, 5);
    const r = mulberry32(3);
    const prompts = [3, 6, 1].map((n) => Array.from({ length: n }, () => Math.floor(r() * cfg.vocabSize)));
    const out = await m.generate(prompts, { maxNewTokens: 10, temperature: 1, seed: 7, kvCacheDtype: dtype });
    let maxRounded = 0,
      maxPlain = 0;
    prompts.forEach((p, i) => {
      const toks = out[i].tokens;
      const rounded = referenceLogprobs(cfg, m.params, p, toks, (x) => roundTo16(x, dtype));
      const plain = referenceLogprobs(cfg, m.params, p, toks);
      toks.forEach((_, j) => {
        maxRounded = Math.max(maxRounded, Math.abs(out[i].logprobs[j] - rounded[j]));
        maxPlain = Math.max(maxPlain, Math.abs(out[i].logprobs[j] - plain[j]));
      });
    });
    // float32 arithmetic against float64 (as model.test.ts allows for the float32 cache); a key or value that the
    // engine's float32 and the reference's float64 round to neighbouring 16-bit values would show here too.
    assert.ok(maxRounded <= 1e-5, `max |engine - rounded reference| = ${maxRounded}`);
    t.diagnostic(
      `${dtype} cache: max |engine - rounded ref| ${maxRounded.toExponential(2)}, vs float32-cache ref ${maxPlain.toExponential(2)}`,
    );
    // The rounding itself moves log-probs by far more than that, so the check above sees it.
    assert.ok(maxPlain > 10 * maxRounded, `rounding effect ${maxPlain} vs agreement ${maxRounded}`);
  });
}

test('kvCacheDtype: anything but f32, bf16 or f16 is an error', async () => {
  const m = makeModel(TINY_CONFIGS.allFeatures, 1);
  await assert.rejects(
    // @ts-expect-error: a value outside the type, as JavaScript callers can pass
    () => m.generate([[1, 2]], { maxNewTokens: 2, kvCacheDtype: 'f8' }),
    (e: unknown) => e instanceof AhaError && /kvCacheDtype/.test(e.message),
  );
});
