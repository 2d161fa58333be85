/** Small models and corpora for the SFT tests. */
import { writeFileSync } from 'node:fs';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import type { Model } from '../../src/engine/model.ts';
import type { Tokenizer } from '../../src/model/tokenizer.ts';
import { buildPretrainCorpus, corpusAlphabet } from '../../src/data/tasks/corpus.ts';
import { arithmeticTask } from '../../src/data/tasks/arithmetic.ts';

/** A Qwen2-layout model small enough for many optimizer steps a second on 2 cores, with a char tokenizer. */
export function makeSmallModel(
  dir: string,
  opts: { alphabet?: string; seed?: number; hidden?: number; layers?: number } = {},
): { dir: string; model: Model; tokenizer: Tokenizer } {
  const hidden = opts.hidden ?? 64;
  return tinyCharModel(dir, {
    alphabet: opts.alphabet ?? corpusAlphabet(arithmeticTask()),
    seed: opts.seed ?? 0,
    config: {
      hidden_size: hidden,
      intermediate_size: 2 * hidden,
      num_hidden_layers: opts.layers ?? 2,
      max_position_embeddings: 256,
    },
  });
}

/** Writes `size` documents of the synthetic arithmetic pre-training corpus as {"text"} lines. */
export function writeArithmeticCorpus(path: string, size: number, seed: number): void {
  const samples = buildPretrainCorpus(arithmeticTask(), { seed, size });
  writeFileSync(path, samples.map((s) => JSON.stringify({ text: s.text })).join('\n') + '\n');
}

/** Largest |a - b| and largest |a|. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return { diff, scale };
}
