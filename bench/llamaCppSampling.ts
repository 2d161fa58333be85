/**
 * Sampling throughput side by side with llama.cpp on the same weights: a model of a real shape with random weights
 * (initialised as transformers does, written as a Hugging Face directory), sampled by aha from float32 and from bf16
 * weights, and by llama.cpp from the same model exported to GGUF F16 and BF16 (`aha export`), all greedy, the same
 * prompts, the same thread count. Runs are interleaved (aha f32, aha bf16, llama.cpp f16, llama.cpp bf16, repeat) and
 * the median of each is reported with its ratio to aha's float32.
 *
 * llama.cpp comes from npm's node-llama-cpp (its prebuilt CPU binaries), which is not a dependency of aha (about
 * 720 MB): `npm install --no-save node-llama-cpp`. Its batch of B sequences is one context with B sequences that
 * decode together, as aha's batch does.
 *
 * Run: `node --import tsx bench/llamaCppSampling.ts [--shape qwen2-27m] [--batch 1] [--prompt-len 32]
 * [--new-tokens 64] [--reps 3]`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { engineInfo } from '../src/engine/model.ts';
import { mulberry32 } from '../src/data/rng.ts';
import { exportGguf } from '../src/model/gguf/exportGguf.ts';
import { initModel } from '../src/model/initModel.ts';
import { MODEL_SHAPES } from '../src/model/modelShapes.ts';
import { loadPretrained } from '../src/model/pretrained.ts';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'qwen2-27m' },
    batch: { type: 'string', default: '1' },
    'prompt-len': { type: 'string', default: '32' },
    'new-tokens': { type: 'string', default: '64' },
    reps: { type: 'string', default: '3' },
  },
});
const B = Number(values.batch),
  P = Number(values['prompt-len']),
  N = Number(values['new-tokens']),
  reps = Number(values.reps);
// llama.cpp gets as many threads as aha's engine uses (its OpenMP threads: the cores, or OMP_NUM_THREADS).
const threads = engineInfo().ompThreads;

/** The part of node-llama-cpp's API used here (it is not a dependency, so its types may be absent). */
interface LlamaSequence {
  evaluate(tokens: number[], o: { temperature: number }): AsyncIterable<number>;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
interface LlamaModel {
  createContext(o: {
    contextSize: number;
    sequences: number;
    threads: number;
    batchSize: number;
  }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: Record<string, unknown>): Promise<{ loadModel(o: { modelPath: string }): Promise<LlamaModel> }>;
  LlamaLogLevel: Record<string, unknown>;
}

const shape = MODEL_SHAPES[values.shape];
if (!shape) throw new Error(`--shape: one of ${Object.keys(MODEL_SHAPES).join(', ')}`);
const moduleName = 'node-llama-cpp';
const nlc = (await import(moduleName).catch(() => {
  console.error('node-llama-cpp is not installed: npm install --no-save node-llama-cpp');
  process.exit(2);
})) as NodeLlamaCpp;

const dir = mkdtempSync(join(tmpdir(), 'aha-llamacpp-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'shape.json'), JSON.stringify(shape));
const modelDir = join(dir, 'model');
initModel({ config: join(dir, 'shape.json'), tokenizer: 'chars', out: modelDir, seed: 1 });
const gguf = { f16: join(dir, 'f16.gguf'), bf16: join(dir, 'bf16.gguf') };
for (const [dtype, out] of Object.entries(gguf)) await exportGguf({ model: modelDir, out, dtype: dtype as 'f16' });

const r = mulberry32(7);
// Printable characters of the char tokenizer (ids above its specials), distinct per prompt.
const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => 5 + Math.floor(r() * 80)));

async function ahaRun(weights: 'f32' | 'bf16'): Promise<() => Promise<number>> {
  const { model } = loadPretrained(modelDir, { weights });
  await model.generate(prompts, { maxNewTokens: 2, temperature: 0, stopTokenIds: [] });
  return async () => {
    const t0 = performance.now();
    const out = await model.generate(prompts, { maxNewTokens: N, temperature: 0, stopTokenIds: [] });
    const tokens = out.reduce((a, x) => a + x.tokens.length, 0);
    return tokens / ((performance.now() - t0) / 1000);
  };
}

const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
async function llamaRun(path: string): Promise<() => Promise<number>> {
  const model = await llama.loadModel({ modelPath: path });
  const once = async () => {
    const ctx = await model.createContext({ contextSize: B * (P + N + 8), sequences: B, threads, batchSize: B * P });
    const t0 = performance.now();
    const counts = await Promise.all(
      prompts.map(async (p) => {
        let n = 0;
        for await (const _ of ctx.getSequence().evaluate(p, { temperature: 0 })) if (++n === N) break;
        return n;
      }),
    );
    const s = (performance.now() - t0) / 1000;
    await ctx.dispose();
    return counts.reduce((a, b) => a + b, 0) / s;
  };
  await once();
  return once;
}

const runs: [string, () => Promise<number>][] = [
  ['aha f32', await ahaRun('f32')],
  ['aha bf16', await ahaRun('bf16')],
  ['llama.cpp F16', await llamaRun(gguf.f16)],
  ['llama.cpp BF16', await llamaRun(gguf.bf16)],
];
const got = new Map<string, number[]>(runs.map(([k]) => [k, []]));
for (let i = 0; i < reps; i++) for (const [k, run] of runs) got.get(k)!.push(await run());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(got.get('aha f32')!);
const info = engineInfo();
console.log(
  `${values.shape}, batch ${B}, prompt ${P}, ${N} new tokens (greedy), ${threads} threads (aha's BLAS: ${info.coreName}); ` +
    `median of ${reps} interleaved runs, tokens/s (all sequences), prefill included`,
);
for (const [k] of runs) {
  const xs = got.get(k)!;
  console.log(
    `  ${k.padEnd(15)} ${median(xs).toFixed(1).padStart(8)}  (${xs.map((x) => x.toFixed(1)).join(', ')})  ` +
      `${(median(xs) / base).toFixed(2)}x aha f32`,
  );
}
