/**
 * examples/sft-arithmetic.yaml runs as it is (through `aha sft`, with the shipped base model and data), shortened
 * with --set; a resumed run with a --set that changes the data order is refused, as a changed flag would be;
 * --help points to the reference.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aha, root, sets } from './runAha.ts';

const config = 'examples/sft-arithmetic.yaml';
const dir = mkdtempSync(join(tmpdir(), 'aha-example-sft-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the SFT example runs as it is; --resume with a changed seed is refused', async () => {
  const out = join(dir, 'run');
  const short = sets({ max_steps: 3, eval_steps: 3, save_steps: 1, logging_steps: 1, out });
  const r = await aha(['sft', '--config', config, ...short]);
  assert.equal(r.code, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  assert.equal(last.status, 'completed');
  assert.equal(last.step, 3);
  assert.ok(Number.isFinite(last.loss) && Number.isFinite(last.eval_loss));
  assert.ok(existsSync(join(out, 'final', 'config.json')));
  // The example's paths resolved against its directory; its values where no --set says otherwise.
  const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(saved.model, join(root, 'models', 'demo-base'));
  assert.equal(saved.data, join(root, 'examples', 'data', 'arithmetic-sft.jsonl'));
  assert.equal(saved.learning_rate, 3e-4);
  assert.equal(saved.max_steps, 3);

  const refused = await aha(['sft', '--out', out, '--resume', '--set', 'seed=5']);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(
      `^aha: ${join(out, 'config.json')}: seed was 0 when the run started, now 5: resuming needs the same data order`,
    ),
  );
});

test('aha sft --help names the reference; a bad --set is one line', async () => {
  const h = await aha(['sft', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--set <key=value>/);
  assert.match(h.stdout, /docs\/recipes\.md#sft-top/);
  const bad = await aha(['sft', '--config', config, '--set', 'learning-rate=1']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "aha: --set learning-rate=1: unknown field 'learning-rate' (did you mean learning_rate?)\n");
  const value = await aha(['sft', '--config', config, '--set', 'learning_rate=fast', '--out', join(dir, 'never')]);
  assert.equal(value.code, 1);
  assert.equal(
    value.stderr,
    `aha: ${config}: learning_rate: must be a number (got "fast") (from --set learning_rate=fast)\n`,
  );
});
