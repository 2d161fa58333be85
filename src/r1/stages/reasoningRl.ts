/** Stage 2 of `aha r1`, reasoning_rl: GRPO from stage 1's model with R1's rule rewards. */
import { runRlStep } from '../rlStep.ts';
import type { StageRunner } from '../stage.ts';

/** Stage 2: GRPO with accuracy, format and language-consistency rewards. */
export const runReasoningRlStage: StageRunner = (ctx) => runRlStep(ctx, ctx.recipe.stages.reasoning_rl!);
