/**
 * What `aha r1` checks before any work (before the base model's evaluation): every dataset the recipe names loads
 * with its field settings, and every stage has prompts that fit the model's positions with the tokens the stage
 * generates after them. A wrong field or a prompt template too long for the model otherwise surfaces hours later,
 * when the stage that reads it starts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../errors.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { parseGrpoOptions } from '../rl/grpoOptions.ts';
import { recipeDatasetRows, type PipelineData } from './pipelineData.ts';
import { pipelinePath, type PipelineRecipe, type StageName } from './pipelineRecipe.ts';

/**
 * The prompts a stage samples after and the room it needs after them: GRPO leaves out prompts without room for
 * max_completion_length tokens (field); sampling and evaluation stop at the model's positions, so there a prompt
 * needs room for one token (no field).
 */
interface LengthCheck {
  where: string;
  prompts: string[];
  maxNew: number;
  field: string | null;
}

/**
 * Loads the datasets the stages read later (stage 4's general_dataset; the main ones are loaded by
 * preparePipelineData) and checks prompt lengths for `stages` and the evaluation. Throws an AhaError naming the
 * recipe field to change.
 */
export async function checkPipelineInputs(
  recipe: PipelineRecipe,
  data: PipelineData,
  stages: readonly StageName[],
): Promise<void> {
  const src = recipe.source;
  let general: string[] = [];
  const a = recipe.stages.all_scenarios_rl;
  if (a?.general_dataset && stages.includes('all_scenarios_rl')) {
    try {
      const rows = await recipeDatasetRows(recipe, a.general_dataset, false);
      general = rows.map((r) => data.render(r.question).text);
    } catch (e) {
      if (!(e instanceof AhaError)) throw e;
      throw new AhaError(`${src}: stages.all_scenarios_rl.general_dataset: ${e.message}`);
    }
  }

  // Prompt lengths need the base model's positions and tokenizer; without them (a stub base) there is nothing to check.
  const base = pipelinePath(recipe, recipe.base_model);
  let maxPositions: unknown;
  try {
    maxPositions = (JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>)
      .max_position_embeddings;
  } catch {
    return;
  }
  if (typeof maxPositions !== 'number' || !existsSync(join(base, 'tokenizer.json'))) return;
  const tokenizer = loadTokenizer(base);
  const train = data.train.map((p) => p.prompt);
  const checks: LengthCheck[] = [];
  const s = recipe.stages;
  const rl = (name: 'reasoning_rl' | 'all_scenarios_rl', extra: string[]) => {
    const grpo = parseGrpoOptions(s[name]!.grpo, `${src}: stages.${name}.grpo`);
    const field = `stages.${name}.grpo.max_completion_length`;
    checks.push({ where: `stages.${name}`, prompts: train, maxNew: grpo.max_completion_length, field });
    // General prompts are checked apart: none fitting would leave the stage without them, which is no run to make.
    checks.push({
      where: `stages.${name}.general_dataset`,
      prompts: extra,
      maxNew: grpo.max_completion_length,
      field,
    });
  };
  for (const name of stages) {
    if (name === 'cold_start_sft' && s.cold_start_sft!.data === undefined)
      checks.push({ where: 'stages.cold_start_sft', prompts: train, maxNew: 1, field: null });
    if (name === 'reasoning_rl') rl(name, []);
    if (name === 'rejection_sft')
      checks.push({ where: 'stages.rejection_sft', prompts: train, maxNew: 1, field: null });
    if (name === 'all_scenarios_rl') rl(name, general);
  }
  checks.push({ where: 'eval', prompts: data.eval.map((p) => p.prompt), maxNew: 1, field: null });
  const lengths = new Map<string, number>();
  const length = (p: string) => {
    let n = lengths.get(p);
    if (n === undefined) {
      n = tokenizer.encode(p, { addSpecialTokens: !data.chat }).length;
      lengths.set(p, n);
    }
    return n;
  };
  for (const c of checks) {
    if (c.prompts.length === 0) continue;
    let shortest = Infinity;
    for (const p of c.prompts) shortest = Math.min(shortest, length(p));
    if (shortest + c.maxNew <= maxPositions) continue;
    throw new AhaError(
      c.field === null
        ? `${src}: ${c.where}: every prompt is too long: the shortest is ${shortest} tokens, which fills the model's ${maxPositions} positions (max_position_embeddings): shorten prompt (the template)`
        : `${src}: ${c.where}: every prompt is too long: the shortest is ${shortest} tokens, + ${c.field} ${c.maxNew} > the model's ${maxPositions} positions (max_position_embeddings): shorten prompt (the template) or lower ${c.field}`,
    );
  }
}
