/**
 * Sampling split across the ranks of a data-parallel job (`mpirun -np N aha r1`, `aha distill`): each rank samples
 * its share of the prompts and every rank gets every prompt's samples, in prompt order. Sample j of a prompt has
 * the seed one process would give it ({@link sampleSeed}: the prompt's id, not its position), so the samples are
 * the ones a one-process run draws, whichever rank draws them.
 */
import type { GenerateOptions, Generation, Generator } from '../eval/generators.ts';
import { dataParallel, type DataParallel } from './dataParallel.ts';

/**
 * Prompts each rank samples per round. The ranks meet after every round: the prompts of a round are saved
 * (`onPrompt`) together, and a stop or an error is seen by every rank at the same round; a round of a few prompts
 * per rank keeps both timely while keeping the engine's batches full.
 */
export const PROMPTS_PER_RANK_ROUND = 16;

/** What one rank reports after a round: the samples of its prompts that finished, and the error that stopped it. */
interface RoundPart {
  outputs: (Generation[] | null)[];
  error: string | null;
}

/**
 * A generator that splits every call across the ranks ({@link dataParallel}); `inner` itself in a one-process run.
 * `onPrompt` is called on every rank, in prompt order, after each round; a stop (`signal`, which should be agreed
 * on: {@link DataParallel.agree}) takes effect at the end of a round, and an error of any rank ends the call on
 * every rank with that error, after the round's finished prompts are passed to `onPrompt`.
 */
export function shardedGenerator(inner: Generator): Generator {
  const dp = dataParallel();
  return dp ? new ShardedGenerator(inner, dp) : inner;
}

class ShardedGenerator implements Generator {
  readonly description: string;
  constructor(
    private readonly inner: Generator,
    private readonly dp: DataParallel,
  ) {
    this.description = inner.description;
  }

  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    const ids = opts.ids ?? prompts.map((_, i) => String(i));
    const results: Generation[][] = new Array(prompts.length);
    const round = PROMPTS_PER_RANK_ROUND * this.dp.size;
    for (let start = 0; start < prompts.length; start += round) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const end = Math.min(prompts.length, start + round);
      const [lo, hi] = this.dp.share(end - start).map((x) => start + x);
      const part: RoundPart = { outputs: new Array(hi - lo).fill(null), error: null };
      try {
        if (hi > lo)
          part.outputs = await this.inner.generate(prompts.slice(lo, hi), {
            ...opts,
            ids: ids.slice(lo, hi),
            // A rank never stops alone mid-round (the others would wait for it): stops are seen between rounds.
            signal: undefined,
            onPrompt: (i, outputs) => void (part.outputs[i] = outputs.slice()),
          });
      } catch (e) {
        part.error = e instanceof Error ? e.message : String(e);
      }
      const parts = this.dp.allgather(part);
      const outputs = parts.flatMap((p) => p.outputs);
      for (let i = 0; i < outputs.length; i++) {
        const o = outputs[i];
        if (o === null) continue;
        results[start + i] = o;
        if (opts.onPrompt) await opts.onPrompt(start + i, o);
      }
      const failed = parts.find((p) => p.error !== null);
      if (failed) throw new Error(failed.error!);
    }
    return results;
  }
}
