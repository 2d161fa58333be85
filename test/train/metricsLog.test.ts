// A run's metrics writer: metrics.jsonl always, metrics.csv and TensorBoard event files as report_to says.
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  DEFAULT_REPORT_TO,
  MetricsLog,
  removeMetricsFiles,
  reportToSchema,
  tensorboardTag,
  toCsv,
} from '../../src/train/metricsLog.ts';
import { readEventFile } from './tfeventsReader.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-metrics-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(root, `run${n++}`);
  mkdirSync(d);
  return d;
};

const eventFiles = (out: string) =>
  existsSync(join(out, 'runs')) ? readdirSync(join(out, 'runs')).map((f) => join(out, 'runs', f)) : [];

describe('MetricsLog', () => {
  it('by default writes metrics.jsonl and TensorBoard scalars named as transformers names them; no csv', () => {
    const out = freshDir();
    const log = new MetricsLog(out);
    log.reset();
    log.append({ step: 1, loss: 2.5, learning_rate: 1e-4, 'rewards/accuracy/mean': 0.25, note: 'text' });
    log.append({ step: 1, eval_loss: 2.75 });
    log.append({ step: 2, loss: 2, learning_rate: 1e-4, 'rewards/accuracy/mean': 0.5 });
    assert.deepEqual(
      log.read().map((r) => r.step),
      [1, 1, 2],
    );
    assert.ok(!existsSync(join(out, 'metrics.csv')));
    const files = eventFiles(out);
    assert.equal(files.length, 1);
    const events = readEventFile(files[0]);
    assert.equal(events[0].fileVersion, 'brain.Event:2');
    assert.deepEqual(
      events.slice(1).map((e) => [e.step, e.scalars]),
      [
        [1, { 'train/loss': 2.5, 'train/learning_rate': Math.fround(1e-4), 'train/rewards/accuracy/mean': 0.25 }],
        [1, { 'eval/loss': 2.75 }],
        [2, { 'train/loss': 2, 'train/learning_rate': Math.fround(1e-4), 'train/rewards/accuracy/mean': 0.5 }],
      ],
    );
  });

  it("report_to csv: a header of every key, widened when a new key appears; 'none' writes metrics.jsonl alone", () => {
    const out = freshDir();
    const log = new MetricsLog(out, ['csv']);
    log.reset();
    log.append({ step: 1, loss: 1.5 });
    log.append({ step: 2, loss: 1.25 });
    assert.equal(readFileSync(join(out, 'metrics.csv'), 'utf8'), 'step,loss\n1,1.5\n2,1.25\n');
    log.append({ step: 2, eval_loss: 1.75, note: 'a, "b"' });
    log.append({ step: 3, loss: 1 });
    assert.equal(
      readFileSync(join(out, 'metrics.csv'), 'utf8'),
      'step,loss,eval_loss,note\n1,1.5,,\n2,1.25,,\n2,,1.75,"a, ""b"""\n3,1,,\n',
    );
    assert.deepEqual(eventFiles(out), []);
    const none = freshDir();
    const plain = new MetricsLog(none, reportToSchema.parse('none'));
    plain.append({ step: 1, loss: 1 });
    assert.deepEqual(readdirSync(none), ['metrics.jsonl']);
  });

  it('a resume drops the records past the checkpoint from jsonl and csv, and the new event file purges them', () => {
    const out = freshDir();
    const first = new MetricsLog(out, ['csv', 'tensorboard']);
    first.reset();
    for (let s = 1; s <= 5; s++) first.append({ step: s, loss: 10 - s });
    // Killed after step 5; the last checkpoint is at step 3.
    writeFileSync(join(out, 'metrics.jsonl'), readFileSync(join(out, 'metrics.jsonl'), 'utf8') + '{"step": 6, "lo');
    const again = new MetricsLog(out, ['csv', 'tensorboard']);
    again.resumeAt(3);
    assert.deepEqual(
      again.read().map((r) => r.step),
      [1, 2, 3],
    );
    assert.equal(readFileSync(join(out, 'metrics.csv'), 'utf8'), 'step,loss\n1,9\n2,8\n3,7\n');
    again.append({ step: 4, loss: 5 });
    const files = eventFiles(out);
    assert.equal(files.length, 2);
    const newest = files.map(readEventFile).find((events) => events.some((e) => e.sessionStatus !== undefined))!;
    assert.deepEqual(
      newest.slice(1).map((e) => [e.step, e.sessionStatus ?? e.scalars]),
      [
        [4, 1],
        [4, { 'train/loss': 5 }],
      ],
    );
  });

  it('reset and removeMetricsFiles remove only what metrics were written to', () => {
    const out = freshDir();
    mkdirSync(join(out, 'runs'));
    writeFileSync(join(out, 'runs', 'mine.txt'), 'keep');
    const log = new MetricsLog(out, ['csv', 'tensorboard']);
    log.append({ step: 1, loss: 1 });
    log.reset();
    assert.deepEqual(readdirSync(join(out, 'runs')), ['mine.txt'], "a runs/ folder's other files stay");
    assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), '');
    assert.ok(!existsSync(join(out, 'metrics.csv')));
    rmSync(join(out, 'runs', 'mine.txt'));
    log.append({ step: 1, loss: 1 });
    removeMetricsFiles(out);
    assert.deepEqual(readdirSync(out), []);
  });
});

describe('helpers', () => {
  it('report_to takes a list, one name, a comma-separated string or none', () => {
    assert.deepEqual(reportToSchema.parse(['jsonl', 'csv', 'tensorboard']), ['jsonl', 'csv', 'tensorboard']);
    assert.deepEqual(reportToSchema.parse('csv, tensorboard'), ['csv', 'tensorboard']);
    assert.deepEqual(reportToSchema.parse('none'), []);
    assert.deepEqual(reportToSchema.parse([]), []);
    assert.throws(() => reportToSchema.parse(['wandb']));
    assert.deepEqual(DEFAULT_REPORT_TO, ['jsonl', 'tensorboard']);
  });
  it('tensorboardTag follows transformers: eval_x -> eval/x, the rest under train/', () => {
    assert.deepEqual(['eval_loss', 'loss', 'rewards/format/std', 'evaluation'].map(tensorboardTag), [
      'eval/loss',
      'train/loss',
      'train/rewards/format/std',
      'train/evaluation',
    ]);
  });
  it('toCsv quotes what RFC 4180 needs and writes objects as JSON', () => {
    assert.equal(toCsv([]), '');
    assert.equal(toCsv([{ a: 'x\ny', b: { c: 1 } }]), 'a,b\n"x\ny","{""c"":1}"\n');
  });
});
