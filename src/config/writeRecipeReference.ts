/**
 * Writes docs/recipes.md from the schemas (`npm run docs:recipes`); test/config/recipeReference.test.ts fails
 * until the file matches.
 */
import { writeFileAtomic } from '../util/fs.ts';
import { recipeReference, recipeReferenceFile } from './recipeReference.ts';

const file = recipeReferenceFile();
writeFileAtomic(file, recipeReference());
process.stdout.write(`wrote ${file}\n`);
