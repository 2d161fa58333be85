#!/usr/bin/env node
// Entry point of the `aha` command. It runs the compiled JavaScript in dist/ when that was built from exactly the
// sources in src/ (`npm run build`, which `npm ci` runs; see bin/freshDist.js): that skips the TypeScript loader,
// most of a short command's start-up. Otherwise (not built, or sources edited since) it runs src/ through tsx's
// loader, as the tests do. AHA_FROM_SOURCE=1 always runs src/.
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshDist } from './freshDist.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = process.env.AHA_FROM_SOURCE ? null : freshDist(root, 'cli/main.js');
if (dist) {
  // A user's TypeScript reward module gets tsx's loaders when it is imported (src/util/typescriptImports.ts).
  await import(pathToFileURL(dist).href);
} else {
  const { register } = await import('tsx/esm/api');
  const { register: registerCjs } = await import('tsx/cjs/api');
  // Both loaders: a user's reward module (rewards.ts beside a recipe, with no package.json saying "module") is
  // loaded as CommonJS-or-ESM by Node's rules, and either path must understand TypeScript.
  register();
  registerCjs();
  await import('../src/cli/main.ts');
}
