/**
 * The `reward_model` reward: a local sequence-classification checkpoint (src/model/sequenceClassifier.ts) scores the
 * chat-rendered prompt and completion at the last token, as DeepSeek-R1's last stage scores general data
 * (helpfulness on the final summary, `on: summary`; harmlessness on the whole response, `on: response`).
 *
 * Calls arriving together (scoreCompletions scores a whole group at once) are gathered into engine batches of
 * `batch_size` sequences, packed without padding.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { parseConfig } from '../config/configError.ts';
import { AhaError } from '../errors.ts';
import { hasChatTemplate, renderChat } from '../model/chatTemplate.ts';
import { weightsFromTorchDtype } from '../model/pretrained.ts';
import { loadRewardModel, type RewardModel } from '../model/sequenceClassifier.ts';
import { judgedText } from './llmJudge.ts';
import type { Example, RewardContext, RewardFn } from './types.ts';

/** The `reward_model` reward's recipe options. */
export const rewardModelOptionsSchema = z
  .object({
    /** The sequence-classification checkpoint's directory (relative: against the recipe's directory). */
    model: z.string().min(1),
    /** 'response': the whole completion; 'summary': the text after the reasoning block (`</think>`). */
    on: z.enum(['summary', 'response']).default('response'),
    /** Raw scores as they are (absent), standardised by a running mean/std, or mapped by scale * x + shift. */
    normalize: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('running') }).strict(),
        z
          .object({ type: z.literal('affine'), scale: z.number().finite(), shift: z.number().finite().default(0) })
          .strict(),
      ])
      .optional(),
    /** Sequences per engine pass. */
    batch_size: z.number().int().positive().default(32),
    /** How the weights are held: auto keeps them as stored (bf16/f16 stay 16-bit); float32 is faster on CPUs. */
    torch_dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
  })
  .strict();

export type RewardModelConfig = z.input<typeof rewardModelOptionsSchema>;

/** Turns raw scores into rewards. */
export type ScoreNormalizer = { type: 'running' } | { type: 'affine'; scale: number; shift: number };

/**
 * Running standardisation (Welford): each batch's raw scores join the statistics first, then are mapped to
 * (x - mean) / std over every score seen so far (population std; while it is 0, x - mean).
 */
export class RunningNorm {
  private n = 0;
  private mean = 0;
  private m2 = 0;
  /** Adds `xs` to the statistics and returns them standardised. */
  apply(xs: readonly number[]): number[] {
    for (const x of xs) {
      this.n++;
      const d = x - this.mean;
      this.mean += d / this.n;
      this.m2 += d * (x - this.mean);
    }
    const std = this.n > 0 ? Math.sqrt(this.m2 / this.n) : 0;
    return xs.map((x) => (std > 0 ? (x - this.mean) / std : x - this.mean));
  }
  get stats(): { count: number; mean: number; std: number } {
    return { count: this.n, mean: this.mean, std: this.n > 0 ? Math.sqrt(this.m2 / this.n) : 0 };
  }
}

/** Options of {@link RewardModelReward}. */
export interface RewardModelRewardOptions {
  on?: 'summary' | 'response';
  normalize?: ScoreNormalizer;
  batchSize?: number;
}

interface Pending {
  ids: number[];
  resolve: (v: number) => void;
  reject: (e: unknown) => void;
}

/** A loaded reward model as a reward function, batching concurrent calls. */
export class RewardModelReward {
  readonly on: 'summary' | 'response';
  readonly batchSize: number;
  private readonly norm: ScoreNormalizer | undefined;
  private readonly running = new RunningNorm();
  private readonly chat: boolean;
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    readonly rm: RewardModel,
    o: RewardModelRewardOptions = {},
  ) {
    if (!rm.tokenizer) throw new AhaError(`${rm.dir}: tokenizer.json missing (the reward model reads text)`);
    this.on = o.on ?? 'response';
    this.batchSize = o.batchSize ?? 32;
    this.norm = o.normalize;
    this.chat = hasChatTemplate(rm.dir);
  }

  /**
   * The token ids scored for a completion: with the reward model's chat template, a user turn (the example's
   * `question`, else the prompt) and an assistant turn (the scored text); without one, the prompt as the policy saw
   * it followed by the scored text. null: `on: summary` and no `</think>`.
   */
  encode(completion: string, example: Example, prompt: string): number[] | null {
    const text = judgedText(completion, this.on);
    if (text === null) return null;
    const tok = this.rm.tokenizer!;
    if (this.chat) {
      const question = typeof example.question === 'string' ? example.question : prompt;
      const rendered = renderChat(this.rm.dir, [
        { role: 'user', content: question },
        { role: 'assistant', content: text },
      ]);
      return tok.encode(rendered, { addSpecialTokens: false });
    }
    return tok.encode(prompt + text);
  }

  /** The reward function: 0 with note 'no_summary' when `on: summary` finds no reasoning block's end. */
  readonly reward: RewardFn<Example> = (completion: string, example: Example, ctx: RewardContext) => {
    const ids = this.encode(completion, example, ctx.prompt);
    if (ids === null) {
      ctx.note?.('no_summary');
      return 0;
    }
    const maxPos = this.rm.model.config.maxPositionEmbeddings;
    if (ids.length === 0) throw new AhaError('reward_model: the scored text is empty');
    if (ids.length > maxPos)
      throw new AhaError(
        `reward_model: ${ids.length} tokens, over the reward model's max_position_embeddings ${maxPos}`,
      );
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ ids, resolve, reject });
      if (this.pending.length >= this.batchSize) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  };

  /** Scores token sequences as the reward does (normalisation included), in batches of batch_size. */
  async scoreIds(seqs: readonly (readonly number[])[]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < seqs.length; i += this.batchSize) {
      out.push(...this.normalize(await this.rm.scoreIds(seqs.slice(i, i + this.batchSize))));
    }
    return out;
  }

  private normalize(raw: number[]): number[] {
    const n = this.norm;
    if (!n) return raw;
    if (n.type === 'affine') return raw.map((x) => n.scale * x + n.shift);
    return this.running.apply(raw);
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.batchSize);
      try {
        const scores = await this.scoreIds(batch.map((p) => p.ids));
        batch.forEach((p, i) => p.resolve(scores[i]));
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
  }
}

/**
 * The `reward_model` reward from a recipe's options: validated (messages name `where`.options.x), the model
 * directory resolved against `baseDir` and loaded (16-bit weights stay 16-bit).
 */
export function rewardModelFromOptions(value: unknown, where: string, o: { baseDir?: string } = {}): RewardModelReward {
  const c = parseConfig(rewardModelOptionsSchema, value ?? {}, where, {
    prefix: ['options'],
    noun: 'option',
    sourceIsPath: true,
  });
  const dir = isAbsolute(c.model) ? c.model : join(o.baseDir ?? '.', c.model);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new AhaError(`${where}.options.model: ${dir} is not a directory`);
  const rm = loadRewardModel(dir, { weights: weightsFromTorchDtype(c.torch_dtype) });
  return new RewardModelReward(rm, {
    on: c.on,
    batchSize: c.batch_size,
    normalize: c.normalize && (c.normalize.type === 'affine' ? { ...c.normalize } : { type: 'running' }),
  });
}
