#!/usr/bin/env node
// Entry point of the `aha` command: TypeScript sources run through tsx's loader, so there is no build step.
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

// Both loaders: a user's reward module (rewards.ts beside a recipe, with no package.json saying "module") is
// loaded as CommonJS-or-ESM by Node's rules, and either path must understand TypeScript.
register();
registerCjs();
await import('../src/cli/main.ts');
