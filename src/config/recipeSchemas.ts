/**
 * The three recipes as trees of fields, read from the schemas that validate them: `aha grpo`'s recipe
 * (src/rl/recipe.ts, src/rl/grpoOptions.ts, src/data/datasetSpec.ts), `aha r1`'s (src/r1/pipelineRecipe.ts) and
 * `aha sft`'s options (src/sft/sftConfig.ts). Sections the top-level schema leaves open and validates later with a
 * schema of their own (a GRPO recipe's `grpo` and `training`, a pipeline stage's `grpo`, `training` and `sft`) are
 * put in place here, so that a tree holds every field a recipe may write.
 */
import { datasetSpecSchema } from '../data/datasetSpec.ts';
import { pipelineRecipeSchemas } from '../r1/pipelineRecipe.ts';
import { languageRewardOptionsSchema } from '../rewards/languageConsistency.ts';
import { grpoOptionsSchema } from '../rl/grpoOptions.ts';
import { loraOptionsSchema } from '../engine/lora.ts';
import { grpoRecipeSchemas } from '../rl/recipe.ts';
import { BUILTIN_REWARDS, REWARD_OPTION_SCHEMAS } from '../rl/rewardRegistry.ts';
import { sftOptionsSchema } from '../sft/sftConfig.ts';
import { describeSchema, graft, type SchemaNode } from './schemaFields.ts';

/** The commands that take a recipe. */
export const RECIPE_KINDS = ['grpo', 'r1', 'sft'] as const;
export type RecipeKind = (typeof RECIPE_KINDS)[number];

/** A section documented under another recipe: its fields are those of `kind`'s section at `path`. */
export interface SectionRef {
  kind: RecipeKind;
  /** Path of the section there, '' for the whole recipe. */
  path: string;
  /** Fields of that section a recipe may not write here (the pipeline sets them itself). */
  omit?: readonly string[];
}

/** A recipe as a tree, with where its borrowed sections are documented. */
export interface RecipeTree {
  kind: RecipeKind;
  root: SchemaNode;
  /** Sections (by path, array elements as `[]`) whose fields are those of a section of another recipe. */
  refs: Record<string, SectionRef>;
}

/** The options of each built-in reward, by name (a `rewards[i].options` mapping of a GRPO recipe). */
export function rewardOptionTrees(): Record<string, SchemaNode> {
  const schemas: Record<string, Parameters<typeof describeSchema>[0]> = {
    ...REWARD_OPTION_SCHEMAS,
    language: languageRewardOptionsSchema,
  };
  const out: Record<string, SchemaNode> = {};
  for (const name of BUILTIN_REWARDS) {
    if (!schemas[name]) throw new Error(`recipeSchemas: no options schema for the built-in reward '${name}'`);
    out[name] = describeSchema(schemas[name]);
  }
  return out;
}

function grpoTree(): RecipeTree {
  const root = describeSchema(grpoRecipeSchemas.recipe);
  graft(root, ['dataset'], describeSchema(datasetSpecSchema), { required: true });
  graft(root, ['grpo'], describeSchema(grpoOptionsSchema));
  graft(root, ['training'], describeSchema(grpoRecipeSchemas.training));
  graft(root, ['lora'], describeSchema(loraOptionsSchema));
  return { kind: 'grpo', root, refs: {} };
}

/** The fields of aha sft a pipeline stage's `sft` section may not set. */
export const STAGE_SFT_OMITTED = ['model', 'data', 'out', 'resume_from_checkpoint', 'overwrite_output_dir'] as const;

function r1Tree(): RecipeTree {
  const root = describeSchema(pipelineRecipeSchemas.pipeline);
  const refs: Record<string, SectionRef> = {};
  const grpo = describeSchema(grpoOptionsSchema);
  const training = describeSchema(grpoRecipeSchemas.training);
  const sft = describeSchema(pipelineRecipeSchemas.stageSft);
  for (const stage of ['reasoning_rl', 'all_scenarios_rl']) {
    graft(root, ['stages', stage, 'grpo'], grpo);
    graft(root, ['stages', stage, 'training'], training);
    graft(root, ['stages', stage, 'lora'], describeSchema(loraOptionsSchema));
    refs[`stages.${stage}.lora`] = { kind: 'grpo', path: 'lora' };
    refs[`stages.${stage}.grpo`] = { kind: 'grpo', path: 'grpo', omit: ['reward_weights'] };
    refs[`stages.${stage}.training`] = { kind: 'grpo', path: 'training' };
  }
  for (const stage of ['cold_start_sft', 'rejection_sft']) {
    graft(root, ['stages', stage, 'sft'], sft);
    refs[`stages.${stage}.sft`] = { kind: 'sft', path: '', omit: STAGE_SFT_OMITTED };
  }
  for (const p of ['dataset', 'eval_dataset', 'stages.all_scenarios_rl.general_dataset'])
    refs[p] = { kind: 'grpo', path: 'dataset' };
  return { kind: 'r1', root, refs };
}

function sftTree(): RecipeTree {
  return { kind: 'sft', root: describeSchema(sftOptionsSchema), refs: {} };
}

/** The tree of one recipe. */
export function recipeTree(kind: RecipeKind): RecipeTree {
  return kind === 'grpo' ? grpoTree() : kind === 'r1' ? r1Tree() : sftTree();
}

/** The segments of a documented path: `rewards[].name` → rewards, [], name. */
export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('.').flatMap((s) => s.split(/(?=\[\])/));
}

/** A documented path from its segments: rewards, [], name → `rewards[].name`. */
export function joinPath(segments: readonly string[]): string {
  return segments.reduce((p, s) => (s === '[]' ? `${p}[]` : p === '' ? s : `${p}.${s}`), '');
}

/** The node at a documented path (`training.learning_rate`, `rewards[].name`), or undefined. */
export function nodeAt(root: SchemaNode, path: string): SchemaNode | undefined {
  let n: SchemaNode | undefined = root;
  for (const seg of splitPath(path)) {
    if (!n) return undefined;
    n = seg === '[]' ? n.element : n.fields?.[seg];
  }
  return n;
}

/** Every field of a tree, depth first, as [documented path, node]; sections borrowed from elsewhere not entered. */
export function walkFields(tree: RecipeTree, from = ''): [string, SchemaNode][] {
  const out: [string, SchemaNode][] = [];
  const visit = (segs: string[], n: SchemaNode) => {
    const p = joinPath(segs);
    // A list's element is documented with the list, its fields (a list of mappings) each on their own.
    if (segs.length > 0 && segs[segs.length - 1] !== '[]') out.push([p, n]);
    if (tree.refs[p]) return;
    if (n.fields) for (const [k, c] of Object.entries(n.fields)) visit([...segs, k], c);
    if (n.element?.fields) visit([...segs, '[]'], n.element);
  };
  visit(splitPath(from), nodeAt(tree.root, from)!);
  return out;
}
