import type { Command } from 'commander';
import { anchorOf, recipeReference } from '../config/recipeReference.ts';
import { RECIPE_KINDS, type RecipeKind } from '../config/recipeSchemas.ts';
import { AhaError } from '../errors.ts';
import { printLine } from './output.ts';

export function registerRecipe(program: Command): void {
  program
    .command('recipe')
    .description('print the recipe reference (every field: type, default, meaning, TRL name) of grpo, r1 or sft')
    .argument('[command]', `one of ${RECIPE_KINDS.join(', ')} (default: all)`)
    .action((kind?: string) => {
      const text = recipeReference();
      if (kind === undefined) return printLine(text.trimEnd());
      if (!(RECIPE_KINDS as readonly string[]).includes(kind))
        throw new AhaError(`recipe: unknown command '${kind}' (one of ${RECIPE_KINDS.join(', ')})`);
      // The reference is one page with a section per command, each opened by its anchor.
      const start = text.indexOf(`<a id="${anchorOf(kind as RecipeKind, '')}"></a>`);
      const ends = RECIPE_KINDS.filter((k) => k !== kind)
        .map((k) => text.indexOf(`<a id="${anchorOf(k, '')}"></a>`))
        .filter((i) => i > start);
      printLine(text.slice(start, ends.length ? Math.min(...ends) : undefined).trimEnd());
    });
}
