/**
 * How SFT sequences become optimizer steps. An optimizer batch is `per_device_train_batch_size ×
 * gradient_accumulation_steps` consecutive sequences of the epoch's shuffled order (the last one of an epoch may be
 * smaller). It is split into micro-batches, one engine forward/backward each, grouped by length: the engine runs
 * variable-length sequences unpadded, so grouping only bounds the tokens per call, and the gradient of the batch
 * does not depend on the split (the loss is normalised over the whole optimizer batch).
 */
import { Rng } from '../data/rng.ts';
import { AhaError } from '../errors.ts';
import type { SftExample } from './dataset.ts';

/**
 * The order in which epoch `epoch` visits `n` sequences: a Fisher-Yates shuffle drawn from `seed + epoch` alone, so
 * a resumed run replays exactly the order an uninterrupted one would use, whatever happened before.
 */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed + epoch) >>> 0).fork('sft-epoch-order');
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/** Optimizer steps in one epoch of `n` sequences (the last, partial batch is kept, as transformers does). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.ceil(n / batchSize);
}

/** Where step `step` (0-based) reads its batch: epoch, batch index in that epoch, and the sequence indices. */
export function optimizerBatch(
  n: number,
  batchSize: number,
  seed: number,
  step: number,
  order?: number[],
): { epoch: number; batch: number; indices: number[] } {
  const spe = stepsPerEpoch(n, batchSize);
  const epoch = Math.floor(step / spe);
  const batch = step % spe;
  const o = order ?? epochOrder(n, seed, epoch);
  return { epoch, batch, indices: o.slice(batch * batchSize, (batch + 1) * batchSize) };
}

/** Limits of one micro-batch. */
export interface MicroBatchLimits {
  /** Sequences per micro-batch (per_device_train_batch_size). */
  maxSequences: number;
  /** Tokens per micro-batch; a longer sequence goes alone. Undefined: no token limit. */
  maxTokens?: number;
}

/**
 * Splits sequences (given by their lengths) into micro-batches: longest first, each micro-batch filled in that
 * order until the next sequence would pass either limit. Returns positions into `lengths`; deterministic.
 */
export function splitMicroBatches(lengths: readonly number[], limits: MicroBatchLimits): number[][] {
  if (!(limits.maxSequences >= 1)) throw new AhaError('micro-batches need room for at least one sequence');
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const out: number[][] = [];
  let cur: number[] = [];
  let tokens = 0;
  for (const i of order) {
    const full =
      cur.length >= limits.maxSequences || (limits.maxTokens !== undefined && tokens + lengths[i] > limits.maxTokens);
    if (cur.length > 0 && full) {
      out.push(cur);
      cur = [];
      tokens = 0;
    }
    cur.push(i);
    tokens += lengths[i];
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Packing (TRL's "wrapped" strategy): the sequences, each ending in its eos, are concatenated in the given order and
 * cut into rows of `rowLength` tokens (the last row may be shorter); masks travel with their tokens, so a target
 * token at the start of a row is lost (it has no log-prob there). The engine attends across the whole row, so a row
 * mixes examples' contexts: the price of having no padding at all. Rows without a target token are dropped.
 */
export function packSequences(examples: readonly SftExample[], rowLength: number): SftExample[] {
  if (!(Number.isInteger(rowLength) && rowLength >= 2))
    throw new AhaError(`packing needs rows of at least 2 tokens (got ${rowLength})`);
  const rows: SftExample[] = [];
  let ids: number[] = [];
  let mask: number[] = [];
  let line = examples[0]?.line ?? 0;
  const flush = () => {
    let targets = 0;
    for (let t = 1; t < mask.length; t++) targets += mask[t];
    if (ids.length >= 2 && targets > 0) rows.push({ ids, mask: Uint8Array.from(mask), line });
    ids = [];
    mask = [];
  };
  for (const ex of examples) {
    for (let t = 0; t < ex.ids.length; t++) {
      if (ids.length === 0) line = ex.line;
      ids.push(ex.ids[t]);
      mask.push(ex.mask[t]);
      if (ids.length === rowLength) flush();
    }
  }
  flush();
  return rows;
}
