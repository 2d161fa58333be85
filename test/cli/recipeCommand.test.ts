import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { recipeReference } from '../../src/config/recipeReference.ts';

const aha = (...args: string[]) => spawnSync(process.execPath, ['bin/aha.js', ...args], { encoding: 'utf8' });

test('aha recipe prints one command section of the generated reference; a bad name is one line', () => {
  const grpo = aha('recipe', 'grpo');
  assert.equal(grpo.status, 0, grpo.stderr);
  assert.match(grpo.stdout, /num_generations/);
  assert.match(grpo.stdout, /<a id="grpo-lora"><\/a>[^]*`target_modules`/);
  assert.doesNotMatch(grpo.stdout, /use_peft/, 'the sft section is not part of it');
  assert.ok(recipeReference().includes(grpo.stdout.trim()), 'a slice of the generated page');
  const sft = aha('recipe', 'sft');
  assert.match(sft.stdout, /use_peft/);
  const bad = aha('recipe', 'ppo');
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, "aha: recipe: unknown command 'ppo' (one of grpo, r1, sft)\n");
});
