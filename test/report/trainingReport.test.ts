import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  chartsFor,
  escapeHtml,
  formatNumber,
  loadTrainingRun,
  writeTrainingReport,
} from '../../src/report/trainingReport.ts';
import { AhaError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-report-'));
after(() => rmSync(root, { recursive: true, force: true }));

function runDir(name: string, files: Record<string, (object | string)[]>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, lines] of Object.entries(files))
    writeFileSync(join(dir, file), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return dir;
}

/** The inline chart ids of a report, in page order, and whether each holds an <svg>. */
function inlineCharts(html: string): { id: string; hasSvg: boolean }[] {
  return [...html.matchAll(/<div class="chart[^"]*" id="chart-([a-z-]+)">(<svg[^>]*>)?/g)].map((m) => ({
    id: m[1],
    hasSvg: !!m[2],
  }));
}

// 20 RL steps with accuracy rising linearly (step/20) and "wait" spiking in the second half.
const rlMetrics = Array.from({ length: 20 }, (_, i) => {
  const step = i + 1;
  const wait = step > 10 ? 20 : 2;
  return {
    step,
    reward_mean: step / 10,
    reward_std: 0.5,
    rewards: { accuracy: { mean: step / 20, std: 0.1 }, format: { mean: 1, std: 0 } },
    accuracy: step / 20,
    format_rate: Math.min(1, 0.5 + step / 20),
    completion_length_mean: 100 + 10 * step,
    completion_length_max: 300 + 10 * step,
    clipped_ratio: 0.01,
    kl: 0.002 * step,
    entropy: 1 - 0.01 * step,
    clip_fraction: { low: 0.01, high: 0.02, total: 0.03 },
    grad_norm: 1.5,
    lr: 1e-6,
    zero_variance_groups: 2,
    tokens_per_s: 1000,
    time_sample_s: 20,
    time_score_s: 1,
    time_learn_s: 9,
    reflective: { per1000: { wait, verify: 1, check: 1, mistake: 0 }, total_per1000: wait + 2 },
  };
});

const RL_CHARTS = [
  'accuracy',
  'reward',
  'reward-components',
  'completion-length',
  'truncated',
  'reflective-words',
  'kl',
  'entropy',
  'clip-fraction',
  'grad-norm',
  'learning-rate',
  'zero-variance-groups',
  'throughput',
  'step-time',
];

describe('writeTrainingReport: RL run', async () => {
  const dir = runDir('rl', {
    'metrics.jsonl': rlMetrics,
    'eval.jsonl': [
      { stage: 'before', pass_at_1: 0.125, format_rate: 0.3125, mean_length: 142.5 },
      { stage: 'after', pass_at_1: 0.6875, format_rate: 0.9375, mean_length: 371.25 },
    ],
    'samples.jsonl': [1, 1, 10, 20].map((step, k) => ({
      step,
      prompt: `What is ${k} + 4? <b>bold</b>`,
      completion:
        step === 20
          ? '<think>4 + 4 = 9. Wait, that is wrong.</think><answer>8</answer><script>alert("x")</script>'
          : `<think>${k} + 4</think><answer>${k + 4}</answer>`,
      rewards: { accuracy: 1, format: 1 },
    })),
  });
  const r = await writeTrainingReport(dir);
  const html = readFileSync(r.html, 'utf8');

  it('writes report.html into the run dir, with one inline <svg> per expected chart', () => {
    assert.equal(r.html, resolve(dir, 'report.html'));
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    const charts = inlineCharts(html);
    assert.deepEqual(
      charts.map((c) => c.id),
      RL_CHARTS,
    );
    assert.ok(charts.every((c) => c.hasSvg));
    assert.equal((html.match(/<svg /g) ?? []).length, RL_CHARTS.length);
    assert.deepEqual(r.warnings, []);
  });

  it('is self-contained: inline scripts only, no external resources, nothing fetched', () => {
    assert.ok(!/<link|<script[^>]*\ssrc=|src="http|href="http|fetch\(/i.test(html));
  });

  it('embeds every logged value of each chart as JSON, under its chart', () => {
    for (const id of RL_CHARTS) assert.ok(html.includes(`<script type="application/json" id="chart-data-${id}">`), id);
    const json = /<script type="application\/json" id="chart-data-accuracy">([^<]*)<\/script>/.exec(html)![1];
    const data = JSON.parse(json) as { series: { name: string; steps: number[]; values: number[] }[] };
    assert.deepEqual(
      data.series.map((s) => s.name),
      ['accuracy', 'format rate'],
    );
    assert.deepEqual(
      data.series[0].steps,
      rlMetrics.map((m) => m.step),
    );
    assert.deepEqual(
      data.series[0].values,
      rlMetrics.map((m) => m.accuracy),
    );
    assert.deepEqual(
      data.series[1].values,
      rlMetrics.map((m) => m.format_rate),
    );
  });

  it('writes each chart as a standalone SVG in charts/', () => {
    assert.deepEqual(
      r.charts,
      RL_CHARTS.map((id) => resolve(dir, 'charts', `${id}.svg`)),
    );
    for (const p of r.charts) {
      const svg = readFileSync(p, 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^]*<\/svg>$/);
    }
    const aha = readFileSync(join(dir, 'charts', 'reflective-words.svg'), 'utf8');
    for (const label of ['wait', 'verify', 'check', 'total', 'occurrences per 1000 words', 'step'])
      assert.ok(aha.includes(`>${label}<`), label);
    assert.ok(!aha.includes('>mistake<'), 'a word that is always 0 is left out');
  });

  it('shows the before/after eval numbers and their change, with readable names and shares in percent', () => {
    for (const n of ['12.5%', '68.75%', '31.25%', '93.75%', '142.5', '371.3', '+56.25 pp', '+62.5 pp', '+228.8'])
      assert.ok(html.includes(`>${n}</td>`), n);
    const head = /<table class="eval"><thead><tr>(.*?)<\/tr><\/thead>/.exec(html)![1];
    assert.equal(head, '<th>stage</th><th>pass@1</th><th>format</th><th>mean length (tokens)</th>');
    assert.ok(!/>0\.125</.test(html) && !html.includes('pass_at_1</th>'), 'no raw fractions or field names');
  });

  it('summarizes start and end as the mean of the first and last 5 values', () => {
    // accuracy = step/20: first 5 -> (1+..+5)/100 = 15%, last 5 -> (16+..+20)/100 = 90%
    assert.match(html, /<th>accuracy<\/th><td>15%<\/td><td>90%<\/td>/);
    // reflective total: steps 1-5 -> 4, steps 16-20 -> 22
    assert.match(html, /<th>reflective words per 1000<\/th><td>4<\/td><td>22<\/td>/);
    assert.match(html, /20 steps logged \(step 1 to 20\)/);
    assert.match(html, /duration 10m 00s/); // 20 steps x (20 + 1 + 9) s
  });

  it('shows early, middle and late samples with HTML escaped and reflective words marked', () => {
    assert.match(html, /early — step 1</);
    assert.match(html, /middle — step 10</);
    assert.match(html, /late — step 20</);
    assert.ok(!html.includes('<script>alert'));
    assert.ok(!html.includes('<b>bold'));
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
    assert.ok(html.includes('&lt;b&gt;bold&lt;/b&gt;'));
    assert.ok(html.includes('<mark>Wait</mark>, that is <mark>wrong</mark>.'));
  });
});

describe('writeTrainingReport: tolerance', () => {
  it('a run still writing (growing): a torn last line is left out without a warning, a torn middle line is not', () => {
    const dir = runDir('torn', {
      'metrics.jsonl': [{ step: 1, accuracy: 0.1 }, '{"step": 2, "ac', { step: 3, accuracy: 0.3 }],
    });
    const m = join(dir, 'metrics.jsonl');
    writeFileSync(m, readFileSync(m, 'utf8') + '{"step": 4, "accura');
    const live = loadTrainingRun(dir, { growing: true });
    assert.deepEqual(
      live.metrics.map((r) => r.value.step),
      [1, 3],
    );
    assert.equal(live.warnings.length, 1);
    assert.match(live.warnings[0], /metrics\.jsonl:2: skipped malformed JSON/);
    const done = loadTrainingRun(dir);
    assert.deepEqual(
      done.warnings.map((w) => /:(\d+): /.exec(w)![1]),
      ['2', '4'],
    );
  });

  it('skips malformed lines and records without a step with warnings naming file:line, and draws what is there', async () => {
    const dir = runDir('partial', {
      'metrics.jsonl': [
        { step: 1, accuracy: 0.1 },
        { step: 2, accuracy: 0.2, kl: 0.01 },
        '{"step": 3, "accur',
        { accuracy: 0.5 },
        '[1, 2]',
        { step: 4, accuracy: null, kl: 0.03, entropy: 'n/a' },
        { step: 5, accuracy: 0.5, reflective: { per1000: {} } },
      ],
    });
    const r = await writeTrainingReport(dir, { smoothing: 1 });
    const m = join(dir, 'metrics.jsonl');
    assert.equal(r.warnings.length, 3);
    assert.match(r.warnings[0], new RegExp(`^${m.replace(/[.\\/]/g, '\\$&')}:3: skipped malformed JSON`));
    assert.match(r.warnings[1], /metrics\.jsonl:4: skipped, field "step" missing/);
    assert.match(r.warnings[2], /metrics\.jsonl:5: skipped, not a JSON object/);
    const html = readFileSync(r.html, 'utf8');
    assert.deepEqual(
      inlineCharts(html).map((c) => c.id),
      ['accuracy', 'kl'],
    );
    assert.ok(html.includes('metrics.jsonl:3: skipped malformed JSON'));
    assert.match(html, /duration not logged/);
    assert.ok(!html.includes('<h2>Evaluation'));
    assert.ok(!html.includes('<h2>Sampled completions'));
    assert.deepEqual(readdirSync(join(dir, 'charts')).sort(), ['accuracy.svg', 'kl.svg']);
  });

  it('merges records of the same step, later values winning with a warning (resumed run), sorted by step', () => {
    const dir = runDir('resumed', {
      'metrics.jsonl': [
        { step: 1, kl: 1 },
        { step: 2, kl: 2 },
        { step: 3, kl: 3 },
        { step: 2, kl: 20 },
        { step: 3, kl: 30, entropy: 0.5 },
        { step: 3, eval_loss: 4 },
      ],
    });
    const run = loadTrainingRun(dir);
    assert.deepEqual(
      run.metrics.map((m) => m.value),
      [
        { step: 1, kl: 1 },
        { step: 2, kl: 20 },
        { step: 3, kl: 30, entropy: 0.5, eval_loss: 4 },
      ],
    );
    assert.equal(run.warnings.length, 1);
    assert.match(run.warnings[0], /metrics\.jsonl: 2 step\(s\) logged twice with different values/);
  });

  it('fails with an AhaError naming the file when nothing is usable or the run is missing', async () => {
    const empty = runDir('empty', { 'metrics.jsonl': ['{oops', { loss: 1 }] });
    await assert.rejects(
      writeTrainingReport(empty),
      (e: Error) => e instanceof AhaError && /empty[\\/]metrics\.jsonl: no metrics records/.test(e.message),
    );
    await assert.rejects(
      writeTrainingReport(join(root, 'nope')),
      (e: Error) => e instanceof AhaError && /nope: run directory not found/.test(e.message),
    );
    const noMetrics = runDir('no-metrics', { 'eval.jsonl': [{ stage: 'before' }] });
    await assert.rejects(
      writeTrainingReport(noMetrics),
      (e: Error) => e instanceof AhaError && /metrics\.jsonl: file not found/.test(e.message),
    );
    await assert.rejects(writeTrainingReport(noMetrics, { smoothing: 0 }), /smoothing must be an integer >= 1/);
  });
});

describe('writeTrainingReport: SFT run', () => {
  it('draws loss curves (train and eval) and no RL charts; honours --out and title', async () => {
    // As src/sft/trainer.ts logs: a training record per logging step, evaluation on its own line of the same step.
    const lines: object[] = [{ step: 0, epoch: 0, eval_loss: 3.5, eval_tokens: 900 }];
    for (let k = 1; k <= 12; k++) {
      lines.push({
        step: 10 * k,
        epoch: k / 12,
        loss: 3 / k,
        lr: 2e-5,
        grad_norm: 0.8,
        tokens_per_second: 5000,
        num_tokens: 1000 * k,
      });
      if (k % 4 === 0) lines.push({ step: 10 * k, epoch: k / 12, eval_loss: 3.2 / k, eval_tokens: 900 });
    }
    const dir = runDir('sft', { 'metrics.jsonl': lines });
    const out = join(root, 'site', 'sft.html');
    const r = await writeTrainingReport(dir, { out, title: 'SFT <warm-up>' });
    assert.equal(r.html, out);
    assert.ok(!existsSync(join(dir, 'report.html')));
    const html = readFileSync(out, 'utf8');
    assert.deepEqual(
      inlineCharts(html).map((c) => c.id),
      ['loss', 'grad-norm', 'learning-rate', 'throughput'],
    );
    assert.match(html, /<title>SFT &lt;warm-up&gt;<\/title>/);
    assert.match(html, /SFT run · 13 steps logged \(step 0 to 120\)/);
    assert.deepEqual(r.warnings, []);
    // train loss 3/k for k = 1..12: start = mean(3/1..3/5) = 1.37, end = mean(3/8..3/12) = 0.30621
    assert.match(html, /<th>train loss<\/th><td>1.37<\/td><td>0.3062<\/td>/);
    // eval loss 3.5 at step 0, then 3.2/k at k = 4, 8, 12 (4 values, so the window shrinks to 2):
    // start = (3.5 + 0.8) / 2 = 2.15, end = (0.4 + 0.26667) / 2 = 0.33333
    assert.match(html, /<th>eval loss<\/th><td>2.15<\/td><td>0.3333<\/td>/);
    const loss = readFileSync(join(root, 'site', 'charts', 'loss.svg'), 'utf8');
    for (const label of ['Loss', 'train loss', 'eval loss', 'loss (nats per token)'])
      assert.ok(loss.includes(`>${label}<`), label);
  });
});

describe("writeTrainingReport: the GRPO trainer's grouped schema (src/rl/metrics.ts)", () => {
  it('reads reward.mean, completion_length.*, clip_ratio, learning_rate, time.*, reflection.* and tokens_per_second.*', async () => {
    const metrics = Array.from({ length: 6 }, (_, i) => ({
      step: i + 1,
      epoch: (i + 1) / 10,
      rewards: { accuracy: { mean: i / 10, std: 0.1 } },
      reward: { mean: i / 10, std: 0.2 },
      accuracy: i / 10,
      format_rate: null,
      completion_length: { mean: 50 + i, min: 10, max: 90, clipped_ratio: 0 },
      kl: i < 3 ? null : 0.01,
      entropy: 0.9,
      clip_ratio: { low: 0, high: 0.01, total: 0.01 },
      grad_norm: 0.5,
      learning_rate: 1e-6,
      updates: 1,
      zero_variance_groups: 1,
      frac_reward_zero_std: 0.25,
      tokens_per_second: { sample: 300, learn: 2000 },
      time: { sample: 50, score: 2, learn: 8, total: 60 },
      reflection: { wait: i, verify: 0, check: 1, mistake: 0, however: 0, total: i + 1 },
      reward_errors: 0,
    }));
    const dir = runDir('grpo', { 'metrics.jsonl': metrics });
    const r = await writeTrainingReport(dir, { smoothing: 1 });
    const html = readFileSync(r.html, 'utf8');
    assert.deepEqual(
      inlineCharts(html).map((c) => c.id),
      RL_CHARTS,
    );
    assert.match(html, /RL run · 6 steps logged/);
    assert.match(html, /duration 6m 00s/); // 6 steps x time.total 60 s
    // smoothing 1: start/end are the first/last values; reward.mean 0 -> 0.5
    assert.match(html, /<th>reward \(mean\)<\/th><td>0<\/td><td>0.5<\/td>/);
    const svg = (id: string) => readFileSync(join(dir, 'charts', `${id}.svg`), 'utf8');
    for (const label of ['wait', 'check', 'total']) assert.ok(svg('reflective-words').includes(`>${label}<`), label);
    for (const label of ['sampling', 'learning']) assert.ok(svg('throughput').includes(`>${label}<`), label);
    for (const label of ['low', 'high', 'total']) assert.ok(svg('clip-fraction').includes(`>${label}<`), label);
    assert.ok(svg('zero-variance-groups').includes('>share of groups<'));
  });
});

describe("writeTrainingReport: today's flat records (TRL's names, src/rl/metrics.ts)", () => {
  // As grpoStepMetrics writes them: rewards in [0, 1.5], a low mean with a wide std early on.
  const metrics = Array.from({ length: 6 }, (_, i) => ({
    step: i + 1,
    epoch: (i + 1) / 10,
    loss: 0.01,
    grad_norm: 0.5,
    learning_rate: 1e-6,
    reward: 0.1 + i / 10,
    reward_std: 0.4,
    reward_min: 0,
    reward_max: i < 3 ? 0.3 : 1.5,
    'rewards/accuracy/mean': i / 10,
    'rewards/accuracy/std': 0.3,
    'rewards/format/mean': 1,
    'rewards/format/std': 0,
    frac_reward_zero_std: 0.25,
    accuracy: i / 10,
    format_rate: 1,
    'completions/mean_length': 50 + i,
    'completions/min_length': 10,
    'completions/max_length': 90,
    'completions/clipped_ratio': 0,
    kl: 0.01,
    entropy: 0.9,
    'clip_ratio/low_mean': 0,
    'clip_ratio/high_mean': 0.01,
    'clip_ratio/region_mean': 0.01,
    updates: 1,
    zero_variance_groups: 1,
    'tokens_per_second/sample': 300,
    'tokens_per_second/learn': 2000,
    'time/sample': 50,
    'time/score': 2,
    'time/learn': 8,
    'time/total': 60,
    'reflection/total': i + 1,
    'reflection/wait': i,
    'reflection/check': 1,
    reward_errors: 0,
  }));
  const dir = runDir('flat', { 'metrics.jsonl': metrics });

  it('draws every RL chart, with the summary and duration read from the flat keys', async () => {
    const r = await writeTrainingReport(dir, { smoothing: 1 });
    const html = readFileSync(r.html, 'utf8');
    assert.deepEqual(
      inlineCharts(html).map((c) => c.id),
      [...RL_CHARTS.slice(0, 6), 'loss', ...RL_CHARTS.slice(6)],
    );
    assert.match(html, /duration 6m 00s/);
    assert.match(html, /<th>reward \(mean\)<\/th><td>0.1<\/td><td>0.6<\/td>/);
    const svg = (id: string) => readFileSync(join(dir, 'charts', `${id}.svg`), 'utf8');
    for (const label of ['accuracy', 'format']) assert.ok(svg('reward-components').includes(`>${label}<`), label);
  });

  it("keeps the reward's ± std band inside the step's reward range", () => {
    const reward = chartsFor(loadTrainingRun(dir).metrics).find((c) => c.chart.id === 'reward')!.chart;
    const points = reward.series[0].points;
    // step 1: 0.1 ± 0.4 -> [-0.3, 0.5], clipped to [0, 0.3]; step 6: 0.6 ± 0.4 -> [0.2, 1.0], inside [0, 1.5]
    assert.deepEqual([points[0].lo, points[0].hi], [0, 0.3]);
    assert.ok(Math.abs(points[5].lo! - 0.2) < 1e-12 && Math.abs(points[5].hi! - 1) < 1e-12);
    assert.ok(points.every((p) => p.lo! >= 0));
  });

  it('an older run without reward_min clips the band at 0 when no reward it logged was negative', () => {
    const old = runDir('old-band', {
      'metrics.jsonl': [1, 2, 3].map((step) => ({ step, reward: { mean: 0.1, std: 0.5 } })),
    });
    const reward = chartsFor(loadTrainingRun(old).metrics).find((c) => c.chart.id === 'reward')!.chart;
    assert.deepEqual(
      reward.series[0].points.map((p) => [p.lo, p.hi]),
      [
        [0, 0.6],
        [0, 0.6],
        [0, 0.6],
      ],
    );
    const signed = runDir('signed-band', {
      'metrics.jsonl': [1, 2].map((step) => ({ step, reward: step === 1 ? -0.5 : 0.1, reward_std: 0.5 })),
    });
    const band = chartsFor(loadTrainingRun(signed).metrics).find((c) => c.chart.id === 'reward')!.chart.series[0];
    assert.equal(band.points[1].lo, 0.1 - 0.5, 'rewards that go negative are not clipped at 0');
  });
});

describe('helpers', () => {
  it('escapeHtml escapes the five HTML-special characters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
  it('formatNumber keeps integers, 4 significant digits otherwise, exponent for tiny/huge', () => {
    assert.deepEqual([42, 0.6875, 371.25, 0.123456, -0.5, 2e-5, 1234567.5].map(formatNumber), [
      '42',
      '0.6875',
      '371.3',
      '0.1235',
      '-0.5',
      '2.00e-5',
      '1.23e+6',
    ]);
  });
});

describe('aha report (CLI)', () => {
  it('writes the report and prints its path; a bad option is a one-line error', () => {
    const dir = runDir('cli', { 'metrics.jsonl': [{ step: 1, accuracy: 0.5 }, '{bad', { step: 2, accuracy: 0.75 }] });
    const script = `import { Command } from 'commander';
import { registerReport } from './src/cli/report.ts';
const p = new Command().exitOverride(); registerReport(p);
try { await p.parseAsync(process.argv, { from: 'node' }); } catch (e) { process.stderr.write('aha: ' + e.message + '\\n'); process.exit(1); }`;
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'x', 'report', ...args], {
        cwd: resolve(import.meta.dirname, '../..'),
        encoding: 'utf8',
      });
    const ok = run('--run', dir, '--smoothing', '1');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`report  ${join(dir, 'report.html').replace(/[.\\/]/g, '\\$&')}`));
    assert.match(ok.stdout, /charts {2}1 SVG files/);
    assert.match(ok.stderr, /aha: warning: .*metrics\.jsonl:2: skipped malformed JSON/);
    const bad = run('--run', dir, '--smoothing', 'x');
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr.trim(), 'aha: --smoothing must be a number (got "x")');
    const port = run('--run', dir, '--port', '8000');
    assert.equal(port.status, 1);
    assert.equal(port.stderr.trim(), 'aha: --port and --host go with --serve');
    const both = run('--run', dir, '--serve', '--out', join(dir, 'x.html'));
    assert.equal(both.status, 1);
    assert.equal(both.stderr.trim(), 'aha: --out writes a file and --serve serves the page: give one of them');
    const badPort = run('--run', dir, '--serve', '--port', '70000');
    assert.equal(badPort.status, 1);
    assert.equal(badPort.stderr.trim(), 'aha: --port must be <= 65535 (got 70000)');
  });
});
