import { z } from 'zod';
import { parseConfig } from '../config/configError.ts';
import type { GrpoLossOptions } from './grpoLoss.ts';

/**
 * GRPO hyper-parameters under Hugging Face TRL's GRPOConfig names, with TRL's defaults (trl/trainer/grpo_config.py),
 * so that a TRL recipe's values carry over unchanged. Unknown keys are rejected: a misspelt option silently
 * falling back to its default would change the experiment without a word.
 */
export const grpoOptionsSchema = z
  .object({
    /** G, completions sampled per prompt; TRL requires at least 2 for a group std. */
    num_generations: z.number().int().min(2).default(8),
    /** Longest completion in tokens; also the constant of the 'dr_grpo' loss. */
    max_completion_length: z.number().int().positive().default(256),
    /** Sampling temperature of the rollouts (R1-Zero: 1.0). */
    temperature: z.number().positive().default(1.0),
    /** Nucleus sampling of the rollouts (1: off). */
    top_p: z.number().gt(0).max(1).default(1),
    /** Keep the k most likely tokens when sampling rollouts (0: off). */
    top_k: z.number().int().min(0).default(0),
    /** KL coefficient; TRL's default 0 skips the reference model (R1-Zero used 0.001). */
    beta: z.number().min(0).default(0.0),
    /** Lower clip epsilon (and upper one unless epsilon_high is set). R1's first RL stage used 10. */
    epsilon: z.number().positive().default(0.2),
    /** Upper clip epsilon (DAPO clip-higher recommends 0.28); null means epsilon. */
    epsilon_high: z.number().positive().nullable().default(null),
    /** Loss aggregation, see LossType in grpoLoss.ts; TRL's default is 'dapo'. */
    loss_type: z.enum(['grpo', 'bnpo', 'dr_grpo', 'dapo']).default('dapo'),
    /** Advantage scaling; true/false are TRL's legacy spellings of 'group'/'none'. */
    scale_rewards: z
      .union([z.enum(['group', 'batch', 'none']), z.boolean()], {
        error: `expected 'group', 'batch', 'none', true or false`,
      })
      .transform((v): 'group' | 'batch' | 'none' => (v === true ? 'group' : v === false ? 'none' : v))
      .default('group'),
    /** Policy updates per generated batch (mu); above 1 the sampling policy's logps must be kept as oldLogp. */
    num_iterations: z.number().int().min(1).default(1),
    /** Exclude completions that hit max_completion_length without EOS from the loss (DAPO). */
    mask_truncated_completions: z.boolean().default(false),
    /** One weight per reward function; null weighs each reward 1. */
    reward_weights: z.array(z.number()).nullable().default(null),
  })
  .strict();

/** Options as written in a config file (every key optional). */
export type GrpoOptionsInput = z.input<typeof grpoOptionsSchema>;
/** Options with defaults applied and scale_rewards normalised to a string. */
export type GrpoOptions = z.output<typeof grpoOptionsSchema>;

/**
 * Validate raw options (from YAML/JSON/CLI), applying TRL's defaults. Throws AhaError naming the source and the
 * first offending field on one line.
 */
export function parseGrpoOptions(raw: unknown, source = 'grpo options'): GrpoOptions {
  return parseConfig(grpoOptionsSchema, raw ?? {}, source, { noun: 'option' });
}

/** The defaults, for display and for code that needs one value without a config. */
export const defaultGrpoOptions: GrpoOptions = grpoOptionsSchema.parse({});

/** The upper clip epsilon actually used (epsilon_high, or epsilon when unset), as TRL resolves it. */
export function resolvedEpsilonHigh(o: GrpoOptions): number {
  return o.epsilon_high ?? o.epsilon;
}

/** The subset of the options that {@link grpoLoss} takes, in its camelCase names. */
export function toGrpoLossOptions(o: GrpoOptions): GrpoLossOptions {
  return {
    lossType: o.loss_type,
    epsilon: o.epsilon,
    epsilonHigh: resolvedEpsilonHigh(o),
    beta: o.beta,
    maxCompletionLength: o.max_completion_length,
  };
}
