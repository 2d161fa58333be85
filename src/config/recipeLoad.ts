/**
 * Recipes as the commands load them: from the file, with any `--set` overrides applied before validation
 * (overrides.ts). Without overrides each command's own loader runs unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { AhaError } from '../errors.ts';
import { loadPipelineRecipe, parsePipelineRecipe, type PipelineRecipe } from '../r1/pipelineRecipe.ts';
import { loadRecipe, parseRecipe, type Recipe } from '../rl/recipe.ts';
import { readConfigFile } from '../sft/sftConfig.ts';
import { applySetOverrides, parseSetArgs, PATH_FIELDS, withSetContext, type SetOverride } from './overrides.ts';

/** A recipe file's content (YAML, or JSON for .json) and text; errors name the file and, for YAML, the line. */
export function readRecipeFile(path: string): { raw: unknown; text: string } {
  if (!existsSync(path)) throw new AhaError(`${path}: recipe not found`);
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) {
    try {
      return { raw: JSON.parse(text), text };
    } catch (e) {
      throw new AhaError(`${path}: invalid JSON (${(e as Error).message.replace(/\s*\n\s*/g, ' ')})`);
    }
  }
  try {
    return { raw: parseYaml(text), text };
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const line = e.linePos?.[0]?.line;
      throw new AhaError(`${path}${line ? `:${line}` : ''}: invalid YAML (${e.message.split('\n')[0]})`);
    }
    throw new AhaError(`${path}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
  }
}

/** The recipe text kept in a run directory, with the overrides it ran under appended as comments. */
export function recipeTextWithSets(text: string, command: string, sets: readonly SetOverride[]): string {
  if (sets.length === 0) return text;
  const lines = sets.map((s) => `#   --set ${s.arg.replace(/\n/g, '\\n')}`);
  return `${text}${text.endsWith('\n') ? '' : '\n'}\n# ${command} ran this recipe with:\n${lines.join('\n')}\n`;
}

/** `aha grpo`'s recipe from `path` with `--set` arguments applied (see src/rl/recipe.ts). */
export function loadGrpoRecipe(path: string, setArgs: readonly string[] = []): { recipe: Recipe; text: string } {
  if (setArgs.length === 0) return loadRecipe(path);
  const sets = parseSetArgs(setArgs, 'grpo');
  const { raw, text } = readRecipeFile(path);
  const recipe = withSetContext(sets, () =>
    parseRecipe(applySetOverrides(raw, sets, path), path, dirname(resolve(path))),
  );
  return { recipe, text: recipeTextWithSets(text, 'aha grpo', sets) };
}

/** `aha r1`'s recipe from `path` with `--set` arguments applied (see src/r1/pipelineRecipe.ts). */
export function loadR1Recipe(path: string, setArgs: readonly string[] = []): { recipe: PipelineRecipe; text: string } {
  if (setArgs.length === 0) return loadPipelineRecipe(path);
  const sets = parseSetArgs(setArgs, 'r1');
  const { raw, text } = readRecipeFile(path);
  const recipe = withSetContext(sets, () =>
    parsePipelineRecipe(applySetOverrides(raw, sets, path), path, dirname(resolve(path))),
  );
  return { recipe, text: recipeTextWithSets(text, 'aha r1', sets) };
}

/**
 * The config layer of `aha sft` (resolveSftOptions' `config`): the `--config` file, its relative paths resolved
 * against its directory as a recipe's are, with `--set` arguments applied; empty when neither is given.
 */
export function sftConfigLayer(
  configFile: string | undefined,
  setArgs: readonly string[] = [],
): { config?: Record<string, unknown>; configName?: string; sets: SetOverride[] } {
  const sets = parseSetArgs(setArgs, 'sft');
  if (configFile === undefined && sets.length === 0) return { sets };
  const config = configFile !== undefined ? readConfigFile(configFile) : {};
  if (configFile !== undefined) {
    const base = dirname(resolve(configFile));
    for (const k of [...PATH_FIELDS.sft, 'resume_from_checkpoint']) {
      const v = config[k];
      if (typeof v === 'string' && v !== '' && !isAbsolute(v)) config[k] = resolve(base, v);
    }
  }
  const merged = applySetOverrides(config, sets, configFile ?? '--set') as Record<string, unknown>;
  return { config: merged, configName: configFile ?? '--set', sets };
}
