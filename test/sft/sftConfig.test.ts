/** SFT options: defaults, layering (run config < --config file < flags), and one-line errors naming the field. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkResumeOptions,
  parseCliValue,
  resolveSftOptions,
  runConfigJson,
  SFT_DEFAULTS,
  SFT_OPTION_KINDS,
  sftOptionsSchema,
} from '../../src/sft/sftConfig.ts';
import { AhaError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-sft-cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AhaError, `expected an AhaError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const required = { model: 'm', data: 'd.jsonl', out: 'o' };

test('defaults follow TrainingArguments / SFTConfig', () => {
  const o = resolveSftOptions({ cli: required });
  assert.equal(o.learning_rate, 2e-5);
  assert.equal(o.per_device_train_batch_size, 8);
  assert.equal(o.gradient_accumulation_steps, 1);
  assert.equal(o.num_train_epochs, 3);
  assert.equal(o.max_steps, -1);
  assert.equal(o.lr_scheduler_type, 'linear');
  assert.equal(o.max_grad_norm, 1);
  assert.equal(o.adam_beta1, 0.9);
  assert.equal(o.adam_beta2, 0.999);
  assert.equal(o.adam_epsilon, 1e-8);
  assert.equal(o.weight_decay, 0);
  assert.equal(o.seed, 42);
  assert.equal(o.save_steps, 500);
  assert.equal(o.packing, false);
  assert.equal(o.resume_from_checkpoint, false);
  assert.deepEqual(
    Object.keys(SFT_OPTION_KINDS).sort(),
    Object.keys(sftOptionsSchema.shape).sort(),
    'every option has a command-line kind',
  );
  assert.equal(SFT_DEFAULTS.learning_rate, 2e-5);
});

test('a YAML config file, overridden by flags', () => {
  const f = join(dir, 'a.yaml');
  writeFileSync(
    f,
    'model: m\ndata: d.jsonl\nout: o\nlearning_rate: 1e-4\nlr_scheduler_type: cosine\nmax_steps: 100\npacking: true\n',
  );
  const o = resolveSftOptions({
    configFile: f,
    cli: { max_steps: parseCliValue('max_steps', '7'), learning_rate: parseCliValue('learning_rate', '3e-3') },
  });
  assert.equal(o.learning_rate, 3e-3);
  assert.equal(o.max_steps, 7);
  assert.equal(o.lr_scheduler_type, 'cosine');
  assert.equal(o.packing, true);
  // JSON is YAML.
  const j = join(dir, 'a.json');
  writeFileSync(j, JSON.stringify({ ...required, warmup_ratio: 0.1 }));
  assert.equal(resolveSftOptions({ configFile: j }).warmup_ratio, 0.1);
});

test('wrong fields in a config file: one line naming the file and each field', () => {
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'model: m\ndata: d.jsonl\nout: o\nlearning_rate: fast\n');
  rejects(() => resolveSftOptions({ configFile: f }), `${f}: learning_rate: must be a number (got "fast")`);
  writeFileSync(f, 'model: m\ndata: d.jsonl\nout: o\nper_device_train_batch_size: 0\nlr_scheduler_type: cosin\n');
  rejects(
    () => resolveSftOptions({ configFile: f }),
    `${f}: per_device_train_batch_size: must be >= 1 (got 0); ${f}: lr_scheduler_type: must be one of linear, cosine, constant (got "cosin")`,
  );
  writeFileSync(f, 'model: m\ndata: d.jsonl\nout: o\nlerning_rate: 0.1\n');
  rejects(
    () => resolveSftOptions({ configFile: f }),
    `${f}: lerning_rate: unknown option (did you mean learning_rate?)`,
  );
  writeFileSync(f, 'model: m\ndata: d.jsonl\nout: o\nmax_steps: 2.5\n');
  rejects(() => resolveSftOptions({ configFile: f }), `${f}: max_steps: must be an integer (got 2.5)`);
  writeFileSync(f, 'model: m\nout: o\n');
  rejects(() => resolveSftOptions({ configFile: f }), 'missing option data (--data or "data:" in the config file)');
  writeFileSync(f, 'model: m\ndata: [\n');
  rejects(() => resolveSftOptions({ configFile: f }), new RegExp(`^${f}:3: not valid YAML/JSON`));
  writeFileSync(f, '- 1\n- 2\n');
  rejects(
    () => resolveSftOptions({ configFile: f }),
    `${f}: expected a mapping of option names to values at the top level`,
  );
  rejects(
    () => resolveSftOptions({ configFile: join(dir, 'nope.yaml') }),
    `${join(dir, 'nope.yaml')}: config file not found`,
  );
  writeFileSync(f, 'model: m\ndata: d.jsonl\nout: o\neval_data: e.jsonl\neval_fraction: 0.1\n');
  rejects(
    () => resolveSftOptions({ configFile: f }),
    `${f}: eval_fraction: set either eval_data or eval_fraction, not both`,
  );
});

test('wrong flags name the flag', () => {
  rejects(() => parseCliValue('learning_rate', 'abc'), '--learning-rate: expected a number, got "abc"');
  rejects(() => parseCliValue('packing', 'maybe'), '--packing: expected true or false, got "maybe"');
  rejects(
    () => resolveSftOptions({ cli: { ...required, adam_beta2: parseCliValue('adam_beta2', '1') } }),
    '--adam-beta2: must be < 1 (got 1)',
  );
  assert.equal(parseCliValue('packing', true), true);
  assert.equal(parseCliValue('save_total_limit', 'none'), null);
  assert.equal(parseCliValue('resume_from_checkpoint', 'out/checkpoint-5'), 'out/checkpoint-5');
});

test('--resume takes the run directory config as the base; changed data-order options are refused', () => {
  const out = join(dir, 'run');
  mkdirSync(out, { recursive: true });
  const started = resolveSftOptions({ cli: { ...required, out, seed: 3, learning_rate: 0.01 } });
  writeFileSync(join(out, 'config.json'), runConfigJson(started));
  const resumed = resolveSftOptions({ cli: { out, resume_from_checkpoint: true } });
  assert.equal(resumed.model, 'm');
  assert.equal(resumed.seed, 3);
  assert.equal(resumed.learning_rate, 0.01);
  assert.equal(resumed.resume_from_checkpoint, true);
  checkResumeOptions(resumed, out);
  const changed = resolveSftOptions({ cli: { out, resume_from_checkpoint: true, seed: 4 } });
  rejects(
    () => checkResumeOptions(changed, out),
    new RegExp(`^${join(out, 'config.json')}: seed was 3 when the run started, now 4`),
  );
  // Without --resume the run config is not read.
  rejects(() => resolveSftOptions({ cli: { out } }), /^missing option model/);
});
