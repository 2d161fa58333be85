/**
 * Stage 4 of `aha r1`, all_scenarios_rl: GRPO from stage 3's model on reasoning prompts (rule rewards) and general
 * prompts (the recipe's reward modules, which see only general prompts), general_prompts_per_step of them in every
 * step, in turn.
 */
import { parseGrpoOptions } from '../../rl/grpoOptions.ts';
import type { RewardSpec } from '../../rl/recipe.ts';
import { buildScopedRewardSpecs } from '../../rl/rewardRegistry.ts';
import { recipeDatasetRows } from '../pipelineData.ts';
import type { AllScenariosConfig, PipelineRecipe } from '../pipelineRecipe.ts';
import { isGeneralPrompt, runRlStep } from '../rlStep.ts';
import type { StageRunner } from '../stage.ts';

/** The general rewards of stage 4, loaded from their modules and scoring only general prompts. */
export async function generalRewards(recipe: PipelineRecipe, a: AllScenariosConfig): Promise<RewardSpec[]> {
  if (a.general_rewards.length === 0) return [];
  const grpo = parseGrpoOptions(a.grpo, `${recipe.source}: stages.all_scenarios_rl.grpo`);
  return buildScopedRewardSpecs(
    a.general_rewards.map((r) => ({ name: r.name, weight: r.weight, options: r.options, label: r.label })),
    {
      grpo: { ...grpo, reward_weights: null },
      baseDir: recipe.baseDir,
      source: `${recipe.source}: stages.all_scenarios_rl.general_rewards`,
    },
    isGeneralPrompt,
  );
}

/** Stage 4: GRPO on reasoning prompts (rule rewards) and general prompts (reward modules). */
export const runAllScenariosStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.all_scenarios_rl!;
  const rows: Record<string, unknown>[] = [];
  if (cfg.general_dataset) {
    const general = await recipeDatasetRows(ctx.recipe, cfg.general_dataset, false);
    for (const g of general) {
      const r = ctx.data.render(g.question);
      rows.push({ ...g.fields, question: g.question, prompt: r.text, id: g.source, kind: 'general' });
    }
  }
  return runRlStep(ctx, cfg, {
    general: rows,
    generalPerStep: cfg.general_prompts_per_step,
    rewards: await generalRewards(ctx.recipe, cfg),
  });
};
