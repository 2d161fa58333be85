/**
 * Reward-model throughput: scores per second of `RewardModel.scoreIds` (one `Model.lastHidden` pass over a packed
 * batch, then the score head in float64) at batch 32, on random weights of a model shape (src/bench/randomModel.ts):
 * the demo's `qwen2-27m` (float32) and Qwen2.5-0.5B's (bf16, as such checkpoints are stored). Sequences are
 * `--tokens` long on average (uniform in [tokens/2, 3*tokens/2], prompt and completion together).
 *
 * Run: `node --import tsx bench/rewardModel.ts [--shapes qwen2-27m,qwen2.5-0.5b] [--tokens 256] [--reps 3]
 * [--weights auto|f32|bf16|f16]`.
 * Prints the median time per batch, scores/s and tokens/s for each shape.
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { randomModel } from '../src/bench/randomModel.ts';
import { engineInfo } from '../src/engine/model.ts';
import { mulberry32 } from '../src/data/rng.ts';
import { RewardModel } from '../src/model/sequenceClassifier.ts';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'qwen2-27m,qwen2.5-0.5b' },
    tokens: { type: 'string', default: '256' },
    batch: { type: 'string', default: '32' },
    reps: { type: 'string', default: '3' },
    /** auto: float32 for qwen2-27m (the demo trains it in float32), bf16 otherwise (as such checkpoints ship). */
    weights: { type: 'string', default: 'auto' },
  },
});
const tokens = Number(values.tokens),
  batch = Number(values.batch),
  reps = Number(values.reps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const info = engineInfo();
console.log(
  `reward-model throughput: batch ${batch}, ~${tokens} tokens per sequence, ${reps} timed batches after one warm-up; ` +
    `${cpus().length} CPUs visible, ${info.blasThreads} BLAS threads (${info.coreName})`,
);
for (const shape of values.shapes.split(',')) {
  const weights =
    values.weights === 'auto' ? (shape === 'qwen2-27m' ? 'f32' : 'bf16') : (values.weights as 'f32' | 'bf16' | 'f16');
  const model = randomModel(shape, { weights, memory: { batchTokens: batch * tokens * 2 } });
  const rand = mulberry32(7);
  const C = model.config.hiddenSize,
    V = model.config.vocabSize;
  const score = Float64Array.from({ length: C }, () => (2 * rand() - 1) * 0.02);
  const rm = new RewardModel(shape, model, score, null);
  const makeBatch = () =>
    Array.from({ length: batch }, () =>
      Array.from({ length: Math.floor(tokens / 2 + rand() * tokens) }, () => Math.floor(rand() * V)),
    );
  await rm.scoreIds(makeBatch());
  const times: number[] = [];
  let toks = 0;
  for (let r = 0; r < reps; r++) {
    const b = makeBatch();
    toks += b.reduce((a, s) => a + s.length, 0);
    const t0 = performance.now();
    const s = await rm.scoreIds(b);
    times.push((performance.now() - t0) / 1000);
    if (!s.every(Number.isFinite)) throw new Error('non-finite score');
  }
  const t = median(times);
  console.log(
    `${shape} (${weights}, ${(model.numParams / 1e6).toFixed(1)}M params): ${t.toFixed(3)} s per batch of ${batch}, ` +
      `${(batch / t).toFixed(1)} scores/s, ${(toks / reps / t).toFixed(0)} tokens/s`,
  );
}
