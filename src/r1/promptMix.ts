/**
 * The prompt order of stage 4 (all_scenarios_rl): every step holds the same number of general prompts, and each kind
 * is drawn in epochs (a seeded permutation each), so every general prompt is used once before any is used twice.
 * Drawing from the union instead gives general prompts their share of the union only on average, and a short run
 * never reaches some of them.
 */
import { Rng, fnv1a32 } from '../data/rng.ts';

/** Options of {@link mixedPromptOrder}. */
export interface PromptMixOptions {
  promptsPerStep: number;
  /** General prompts in each step (clamped to promptsPerStep; all of them when there is no reasoning prompt). */
  generalPerStep: number;
  seed: number;
  /** Permute each epoch of each kind (false: file order). */
  shuffle: boolean;
  /** Steps the order is made for at most (it then repeats); default: until each kind has had a full epoch. */
  maxSteps?: number;
}

/**
 * The default number of general prompts per step: their share of all prompts, rounded, at least 1 (and at most all
 * of the step's prompts).
 */
export function defaultGeneralPerStep(reasoning: number, general: number, promptsPerStep: number): number {
  if (general === 0) return 0;
  return Math.min(promptsPerStep, Math.max(1, Math.round((promptsPerStep * general) / (reasoning + general))));
}

/** Position `i` of a kind's stream: epoch after epoch, each a seeded permutation of the kind's items. */
function epochStream<T>(items: readonly T[], kind: string, seed: number, shuffle: boolean): (i: number) => T {
  let epoch = -1;
  let order: number[] = [];
  return (i) => {
    const e = Math.floor(i / items.length);
    if (e !== epoch) {
      epoch = e;
      order = items.map((_, j) => j);
      if (shuffle) new Rng(fnv1a32(`r1-mix:${kind}:${seed}:${e}`)).shuffle(order);
    }
    return items[order[i % items.length]];
  };
}

/**
 * Reasoning and general prompts in step-sized blocks of `promptsPerStep`, each with `generalPerStep` general prompts
 * spread evenly through it. The order has a whole number of blocks, so any `promptsPerStep` consecutive positions
 * (also across its end, where it starts over) hold exactly `generalPerStep` general prompts: a trainer that draws
 * extra prompts (dynamic sampling) keeps the mix. Made for enough steps that each kind completes an epoch, at most
 * `maxSteps`.
 */
export function mixedPromptOrder<T>(reasoning: readonly T[], general: readonly T[], o: PromptMixOptions): T[] {
  const P = o.promptsPerStep;
  let k = general.length === 0 ? 0 : Math.min(P, Math.max(1, o.generalPerStep));
  if (reasoning.length === 0) k = P;
  const r = P - k;
  if (general.length === 0 || k === 0) return reasoning.slice();
  let steps = Math.max(Math.ceil(general.length / k), r > 0 ? Math.ceil(reasoning.length / r) : 0);
  if (o.maxSteps !== undefined) steps = Math.max(1, Math.min(steps, o.maxSteps));
  const g = epochStream(general, 'general', o.seed, o.shuffle);
  const q = reasoning.length > 0 ? epochStream(reasoning, 'reasoning', o.seed, o.shuffle) : null;
  const out: T[] = [];
  let gi = 0,
    qi = 0;
  for (let s = 0; s < steps; s++) {
    for (let j = 0; j < P; j++) {
      // Slot j is general when the running count of k per P steps up there (Bresenham): evenly spread.
      const isGeneral = Math.floor(((j + 1) * k) / P) > Math.floor((j * k) / P);
      out.push(isGeneral || !q ? g(gi++) : q(qi++));
    }
  }
  return out;
}
