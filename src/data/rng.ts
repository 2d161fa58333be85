import { AhaError } from '../errors.ts';

/**
 * mulberry32: a 32-bit-state PRNG (Tommy Ettinger's public-domain generator). Returns floats in [0, 1) with 32 bits
 * of randomness. Chosen because it is tiny, fast and identical on every JS engine, so a seed reproduces a data set
 * bit for bit anywhere; it is not cryptographic and does not need to be.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `text`. Used to assign questions to train/test splits by content, so the
 * split of a question never depends on the seed or on the order in which questions were drawn.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A seeded random stream with the few draws the data generators need. Same seed, same sequence. */
export class Rng {
  private readonly u: () => number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new AhaError(`seed must be an integer, got ${seed}`);
    this.u = mulberry32(seed);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.u();
  }

  /** Uniform integer in [lo, hi], both ends included. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new AhaError(`Rng.int needs integers lo <= hi, got ${lo}, ${hi}`);
    }
    return lo + Math.floor(this.u() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u() < p;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new AhaError('Rng.pick on an empty list');
    return items[Math.floor(this.u() * items.length)];
  }

  /** An index drawn with probability proportional to its (non-negative) weight. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new AhaError(`Rng.weighted: bad weight ${w}`);
      total += w;
    }
    if (total <= 0) throw new AhaError('Rng.weighted: all weights are zero');
    let r = this.u() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    // Rounding can leave r a hair above 0: fall back to the last index with weight.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    return weights.length - 1;
  }

  /** Fisher-Yates shuffle, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.u() * (i + 1));
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /**
   * An independent child stream named by `label`. Lets one part of a generator draw more or fewer numbers without
   * shifting every draw of the other parts.
   */
  fork(label: string): Rng {
    return new Rng((fnv1a32(label) ^ Math.floor(this.u() * 4294967296)) >>> 0);
  }
}
