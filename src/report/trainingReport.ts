import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { REFLECTIVE_WORDS } from '../rewards/reflection.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { CHART_HOVER_CSS, CHART_HOVER_SCRIPT, chartHoverData, scriptJson } from './chartHover.ts';
import { prefixSvgIds, renderLineChartFramed, type LineChart, type Series, type SeriesPoint } from './charts.ts';
import { normalizeMetricRecord } from './metricNames.ts';

/** One parsed line of a run's JSONL file, with its 1-based line number. */
export interface RunLine {
  line: number;
  value: Record<string, unknown>;
}

/** What a run directory holds, as read by {@link loadTrainingRun}. */
export interface TrainingRun {
  runDir: string;
  /**
   * metrics.jsonl, one record per step under today's flat names (older runs' keys mapped by normalizeMetricRecord),
   * sorted by step; records of the same step are merged, later fields winning.
   */
  metrics: RunLine[];
  /** eval.jsonl rows in file order (empty when the file is absent). */
  evals: RunLine[];
  /** samples.jsonl rows in file order (empty when the file is absent). */
  samples: RunLine[];
  /** Lines that were skipped, each naming file:line and why. */
  warnings: string[];
}

/** Options of {@link writeTrainingReport}. */
export interface TrainingReportOptions {
  /**
   * Where the HTML goes (default <runDir>/report.html; an existing directory gets report.html inside it); charts go
   * to a charts/ folder beside it.
   */
  out?: string;
  /** Page title (default: "Training report: <run dir name>"). */
  title?: string;
  /** Moving-average window in logged values (default 5; 1 draws raw values only). */
  smoothing?: number;
  /** Sampled completions shown per stage (early, middle, late); default 2. */
  samplesPerStage?: number;
}

/** Result of {@link writeTrainingReport}. */
export interface TrainingReportResult {
  /** Path of the written report.html. */
  html: string;
  /** Paths of the standalone chart SVGs, in page order. */
  charts: string[];
  /** Skipped lines (file:line: why); also listed in the report. */
  warnings: string[];
}

/** Options of {@link loadTrainingRun}. */
export interface LoadTrainingRunOptions {
  /**
   * The run is still writing its files (a live report): a last line without its newline that is not yet valid
   * JSON is one being written, and is left out without a warning; the next read has it whole.
   */
  growing?: boolean;
}

/**
 * Reads a JSONL file leniently: a line that is not a JSON object is skipped with a warning naming file:line.
 * Skipping (rather than failing) is deliberate: a report is often made while training still appends to the
 * file, so the last line may be half-written, and one bad line should not hide a long run.
 */
function readJsonlLenient(
  path: string,
  warnings: string[],
  check?: (v: Record<string, unknown>) => string | undefined,
  growing = false,
): RunLine[] {
  const out: RunLine[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      // The text after the last newline is the line being written.
      if (growing && i === lines.length - 1) continue;
      warnings.push(`${path}:${i + 1}: skipped malformed JSON (${(e as Error).message})`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      warnings.push(`${path}:${i + 1}: skipped, not a JSON object`);
      continue;
    }
    const problem = check?.(value as Record<string, unknown>);
    if (problem) {
      warnings.push(`${path}:${i + 1}: skipped, ${problem}`);
      continue;
    }
    out.push({ line: i + 1, value: value as Record<string, unknown> });
  }
  return out;
}

/**
 * Reads metrics.jsonl (required), eval.jsonl and samples.jsonl (optional) from a run directory. Malformed lines
 * and metric records without a numeric `step` are skipped with a warning; a run with no usable metrics record
 * is an AhaError.
 */
export function loadTrainingRun(runDir: string, opts: LoadTrainingRunOptions = {}): TrainingRun {
  const growing = opts.growing === true;
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new AhaError(`${runDir}: run directory not found`);
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (!existsSync(metricsPath))
    throw new AhaError(`${metricsPath}: file not found (is ${runDir} a training run directory?)`);
  const warnings: string[] = [];
  const byStep = new Map<number, RunLine>();
  let repeated = 0;
  const hasStep = (v: Record<string, unknown>) =>
    finite(v.step) === undefined ? 'field "step" missing or not a number' : undefined;
  for (const raw of readJsonlLenient(metricsPath, warnings, hasStep, growing)) {
    // Older runs' nested or renamed keys under today's flat names (metricNames.ts).
    const rec = { line: raw.line, value: normalizeMetricRecord(raw.value) };
    const step = rec.value.step as number;
    const prev = byStep.get(step);
    if (!prev) {
      byStep.set(step, rec);
      continue;
    }
    // Records sharing a step are merged: the SFT trainer logs training and evaluation of one step on two lines.
    // A field logged twice with different values (a resumed run re-logging a step) keeps the later value.
    const clash = Object.keys(rec.value).some(
      (k) =>
        k !== 'step' &&
        k !== 'epoch' &&
        k in prev.value &&
        JSON.stringify(prev.value[k]) !== JSON.stringify(rec.value[k]),
    );
    if (clash) repeated++;
    byStep.set(step, { line: prev.line, value: { ...prev.value, ...rec.value } });
  }
  if (repeated > 0)
    warnings.push(
      `${metricsPath}: ${repeated} step(s) logged twice with different values (resumed run?); kept the later values`,
    );
  const metrics = [...byStep.values()].sort((a, b) => (a.value.step as number) - (b.value.step as number));
  if (metrics.length === 0) throw new AhaError(`${metricsPath}: no metrics records with a numeric "step"`);
  const optional = (name: string) => {
    const p = join(runDir, name);
    return existsSync(p) ? readJsonlLenient(p, warnings, undefined, growing) : [];
  };
  return { runDir, metrics, evals: optional('eval.jsonl'), samples: optional('samples.jsonl'), warnings };
}

// ---------------------------------------------------------------------------------------------------------------
// Pulling series out of records. Every accessor returns undefined for a missing or non-finite value, which the
// series builder drops: runs log different subsets of fields, and a field may start late (eval_loss every N steps).

type Get = (r: Record<string, unknown>) => number | undefined;

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const field =
  (name: string): Get =>
  (r) =>
    finite(r[name]);
/** A band of ± `get` around a series, kept inside [min, max] of the record (each may be undefined: no limit). */
interface Band {
  get: Get;
  min?: Get;
  max?: Get;
}

function series(metrics: RunLine[], name: string, get: Get, extra: Partial<Series> = {}, band?: Band): Series {
  const points: SeriesPoint[] = [];
  for (const { value: r } of metrics) {
    const v = get(r);
    if (v === undefined) continue;
    const p: SeriesPoint = { step: r.step as number, value: v };
    const b = band?.get(r);
    if (b !== undefined) {
      // mean ± std may leave the values' range (a reward in [0, 1] with mean 0.1 and std 0.3): never draw past it.
      const lo = band?.min?.(r);
      const hi = band?.max?.(r);
      p.lo = Math.max(v - b, lo ?? -Infinity);
      p.hi = Math.min(v + b, hi ?? Infinity);
    }
    points.push(p);
  }
  // A band is only drawn when every point has one; drop partial bands rather than draw a ragged one.
  if (points.some((p) => p.lo === undefined))
    for (const p of points) {
      delete p.lo;
      delete p.hi;
    }
  return { name, points, ...extra };
}

/** The names `re` captures from the records' keys, in first-seen order (reward components, reflective words). */
function keysMatching(metrics: RunLine[], re: RegExp): string[] {
  const seen = new Set<string>();
  for (const { value } of metrics)
    for (const k of Object.keys(value)) {
      const m = re.exec(k);
      if (m) seen.add(m[1]);
    }
  return [...seen];
}

/** A chart with its place on the page. */
export interface PlacedChart {
  section: 'Outcome' | 'The aha moment' | 'Optimization' | 'Throughput';
  chart: LineChart;
}

// Today's flat names (TRL's where TRL logs the quantity; src/rl/metrics.ts, src/sft/trainer.ts). Older runs are
// mapped to them on load (metricNames.ts).
const M = {
  rewardMean: field('reward'),
  rewardStd: field('reward_std'),
  lengthMean: field('completions/mean_length'),
  lengthMax: field('completions/max_length'),
  clipped: field('completions/clipped_ratio'),
  reflectiveWord: (w: string) => field(`reflection/${w}`),
  reflectiveTotal: field('reflection/total'),
  clip: (part: 'low_mean' | 'high_mean' | 'region_mean') => field(`clip_ratio/${part}`),
  lr: field('learning_rate'),
  tokensPerS: field('tokens_per_second'),
  time: (phase: 'sample' | 'score' | 'learn' | 'total') => field(`time/${phase}`),
};

/**
 * The reward band's limits: the step's observed reward range where it is logged (reward_min, reward_max); for an
 * older run without them, 0 from below when no reward it logged was ever negative (the usual 0/1 rule rewards).
 */
function rewardBand(metrics: RunLine[]): Band {
  const isReward = (k: string) => k === 'reward' || /^rewards\/.+\/mean$/.test(k);
  const nonNegative = metrics.every(({ value }) =>
    Object.entries(value).every(([k, v]) => !isReward(k) || typeof v !== 'number' || v >= 0),
  );
  return {
    get: M.rewardStd,
    min: (r) => finite(r.reward_min) ?? (nonNegative ? 0 : undefined),
    max: (r) => finite(r.reward_max),
  };
}

/** The charts a run's metrics support; a chart whose fields never appear is left out. */
export function chartsFor(metrics: RunLine[]): PlacedChart[] {
  const out: PlacedChart[] = [];
  const add = (section: PlacedChart['section'], chart: LineChart) => {
    chart.series = chart.series.filter((s) => s.points.length > 0);
    if (chart.series.length > 0) out.push({ section, chart });
  };
  const any = (key: string) => metrics.some((m) => m.value[key] !== undefined && m.value[key] !== null);

  add('Outcome', {
    id: 'accuracy',
    title: 'Accuracy and format rate',
    yTitle: 'share of completions',
    yFormat: '.0%',
    yDomain: [0, 1],
    subtitle: 'correct final answer; well-formed <think>…</think><answer>…</answer>',
    series: [series(metrics, 'accuracy', field('accuracy')), series(metrics, 'format rate', field('format_rate'))],
  });
  add('Outcome', {
    id: 'reward',
    title: 'Reward',
    yTitle: 'reward per completion',
    subtitle: "mean over the completions of a step; band: ± 1 standard deviation, within the step's reward range",
    series: [series(metrics, 'reward (mean)', M.rewardMean, {}, rewardBand(metrics))],
  });
  add('Outcome', {
    id: 'reward-components',
    title: 'Reward components',
    yTitle: 'mean reward',
    series: keysMatching(metrics, /^rewards\/(.+)\/mean$/).map((k) => series(metrics, k, field(`rewards/${k}/mean`))),
  });
  add('Outcome', {
    id: 'completion-length',
    title: 'Completion length',
    yTitle: 'tokens',
    yZero: true,
    series: [series(metrics, 'mean', M.lengthMean), series(metrics, 'max', M.lengthMax)],
  });
  add('Outcome', {
    id: 'truncated',
    title: 'Truncated completions',
    yTitle: 'share of completions',
    yFormat: '.0%',
    yZero: true,
    subtitle: 'completions that hit the length limit',
    series: [series(metrics, 'clipped ratio', M.clipped)],
  });

  const wordsLogged = keysMatching(metrics, /^reflection\/(.+)$/).filter((w) => w !== 'total');
  const words = [
    ...REFLECTIVE_WORDS.filter((w) => wordsLogged.includes(w)),
    ...wordsLogged.filter((w) => !REFLECTIVE_WORDS.includes(w)),
  ];
  const wordSeries = words
    .map((w) => series(metrics, w, M.reflectiveWord(w)))
    .filter((s) => s.points.some((p) => p.value !== 0)); // a word never used is legend clutter
  add('The aha moment', {
    id: 'reflective-words',
    title: 'Reflective words: the "aha moment"',
    yTitle: 'occurrences per 1000 words',
    yZero: true,
    wide: true,
    subtitle: 'how often completions say wait, verify, check, …; thick: all of them together',
    series: [...wordSeries, series(metrics, 'total', M.reflectiveTotal, { emphasis: true })],
  });

  add('Optimization', {
    id: 'loss',
    title: 'Loss',
    yTitle: 'loss (nats per token)',
    series: [series(metrics, 'train loss', field('loss')), series(metrics, 'eval loss', field('eval_loss'))],
  });
  add('Optimization', {
    id: 'kl',
    title: 'KL divergence to the reference model',
    yTitle: 'KL',
    yZero: true,
    series: [series(metrics, 'KL', field('kl'))],
  });
  add('Optimization', {
    id: 'entropy',
    title: 'Policy entropy',
    yTitle: 'entropy (nats per token)',
    yZero: true,
    series: [series(metrics, 'entropy', field('entropy'))],
  });
  const clipParts = any('clip_ratio/low_mean') || any('clip_ratio/high_mean');
  add('Optimization', {
    id: 'clip-fraction',
    title: 'Clip fraction',
    yTitle: 'share of tokens',
    yFormat: '.1%',
    yZero: true,
    subtitle: 'tokens whose probability ratio was clipped',
    series: clipParts
      ? [
          series(metrics, 'low', M.clip('low_mean')),
          series(metrics, 'high', M.clip('high_mean')),
          series(metrics, 'total', M.clip('region_mean'), { emphasis: true }),
        ]
      : [series(metrics, 'clip fraction', M.clip('region_mean'))],
  });
  add('Optimization', {
    id: 'grad-norm',
    title: 'Gradient norm',
    yTitle: 'global L2 norm',
    yZero: true,
    series: [series(metrics, 'grad norm', field('grad_norm'))],
  });
  add('Optimization', {
    id: 'learning-rate',
    title: 'Learning rate',
    yTitle: 'learning rate',
    yFormat: '.2~e',
    yZero: true,
    noSmoothing: true,
    series: [series(metrics, 'learning rate', M.lr)],
  });
  add(
    'Optimization',
    any('frac_reward_zero_std')
      ? {
          id: 'zero-variance-groups',
          title: 'Zero-variance groups',
          yTitle: 'share of groups',
          yFormat: '.0%',
          yDomain: [0, 1],
          subtitle: 'groups whose completions all got the same reward: no learning signal',
          series: [series(metrics, 'zero-variance groups', field('frac_reward_zero_std'))],
        }
      : {
          id: 'zero-variance-groups',
          title: 'Zero-variance groups',
          yTitle: 'groups',
          yZero: true,
          subtitle: 'groups whose completions all got the same reward: no learning signal',
          series: [series(metrics, 'zero-variance groups', field('zero_variance_groups'))],
        },
  );

  add('Throughput', {
    id: 'throughput',
    title: 'Throughput',
    yTitle: 'tokens per second',
    yZero: true,
    series: [
      series(metrics, 'tokens/s', M.tokensPerS),
      series(metrics, 'sampling', field('tokens_per_second/sample')),
      series(metrics, 'learning', field('tokens_per_second/learn')),
    ],
  });
  add('Throughput', {
    id: 'step-time',
    title: 'Time per step',
    yTitle: 'seconds',
    yZero: true,
    series: [
      series(metrics, 'sample', M.time('sample')),
      series(metrics, 'score', M.time('score')),
      series(metrics, 'learn', M.time('learn')),
    ],
  });
  return out;
}

/** Seconds of training: the sum of each step's logged time (time/total, else its phases); undefined when none. */
function loggedSeconds(metrics: RunLine[]): number | undefined {
  let seconds = 0;
  let timed = false;
  for (const { value } of metrics) {
    let t = M.time('total')(value);
    if (t === undefined) {
      const parts = (['sample', 'score', 'learn'] as const)
        .map((phase) => M.time(phase)(value))
        .filter((v): v is number => v !== undefined);
      if (parts.length) t = parts.reduce((a, b) => a + b, 0);
    }
    if (t !== undefined) {
      seconds += t;
      timed = true;
    }
  }
  return timed ? seconds : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// HTML

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** A number for a table: integers as they are, others to 4 significant digits without trailing zeros. */
export function formatNumber(x: number): string {
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m ${String(r).padStart(2, '0')}s` : `${r}s`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Summary rows "metric: first → last", each end averaged over `window` points to see past step noise. */
function summaryRows(metrics: RunLine[], window: number): string {
  const rows: [string, Get, boolean][] = [
    ['accuracy', field('accuracy'), true],
    ['format rate', field('format_rate'), true],
    ['reward (mean)', M.rewardMean, false],
    ['completion length (mean tokens)', M.lengthMean, false],
    ['reflective words per 1000', M.reflectiveTotal, false],
    ['train loss', field('loss'), false],
    ['eval loss', field('eval_loss'), false],
  ];
  const html: string[] = [];
  for (const [label, get, pct] of rows) {
    const vals = metrics.map((m) => get(m.value)).filter((v): v is number => v !== undefined);
    if (vals.length === 0) continue;
    const w = Math.max(1, Math.min(window, Math.floor(vals.length / 2) || 1));
    const first = mean(vals.slice(0, w));
    const last = mean(vals.slice(-w));
    const fmt = (x: number) => (pct ? `${formatNumber(100 * x)}%` : formatNumber(x));
    html.push(`<tr><th>${escapeHtml(label)}</th><td>${fmt(first)}</td><td>${fmt(last)}</td></tr>`);
  }
  if (html.length === 0) return '';
  return `<table class="summary"><thead><tr><th></th><th>start</th><th>end</th></tr></thead><tbody>${html.join('')}</tbody></table>
<p class="note">start and end average the first and last ${window} logged values of each metric.</p>`;
}

/** How eval.jsonl's fields read in the table: a label, and whether the value is a share (shown in %). */
const EVAL_FIELDS: Record<string, { label: string; share?: boolean }> = {
  stage: { label: 'stage' },
  step: { label: 'after step' },
  problems: { label: 'problems' },
  samples: { label: 'samples per problem' },
  pass_at_1: { label: 'pass@1', share: true },
  cons_at_k: { label: 'cons@k', share: true },
  accuracy: { label: 'accuracy', share: true },
  format_rate: { label: 'format', share: true },
  language_consistency: { label: 'language consistency', share: true },
  mean_length: { label: 'mean length (tokens)' },
  reflective_per_1000_words: { label: 'reflective words per 1000' },
};

/** The label and kind of an eval field: known ones as above; others by name (pass_at_k, *_rate, *_share: %). */
export function evalField(key: string): { label: string; share: boolean } {
  const known = EVAL_FIELDS[key];
  if (known) return { label: known.label, share: known.share === true };
  const pass = /^pass_at_(\d+)$/.exec(key);
  if (pass) return { label: `pass@${pass[1]}`, share: true };
  return { label: key.replace(/_/g, ' '), share: /(_rate|_share|_fraction|_ratio)$/.test(key) };
}

/**
 * The eval.jsonl table, with readable column names and shares in percent as in the summary; for each before/after
 * pair (same non-numeric fields besides stage), a change row (shares in percentage points).
 */
function evalTable(evals: RunLine[]): string {
  if (evals.length === 0) return '';
  const rows = evals.map((e) => e.value);
  const cols: string[] = ['stage'];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const numeric = (k: string) => rows.some((r) => finite(r[k]) !== undefined);
  const groupKey = (r: Record<string, unknown>) =>
    JSON.stringify(cols.filter((c) => c !== 'stage' && !numeric(c)).map((c) => r[c] ?? null));
  const cell = (c: string, v: unknown) => {
    const n = finite(v);
    if (n !== undefined)
      return `<td class="num">${evalField(c).share ? `${formatNumber(100 * n)}%` : formatNumber(n)}</td>`;
    if (v === undefined || v === null) return '<td></td>';
    return `<td>${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td>`;
  };
  const body: string[] = [];
  for (const r of rows) {
    body.push(`<tr>${cols.map((c) => cell(c, r[c])).join('')}</tr>`);
    if (r.stage !== 'after') continue;
    const before = rows.find((b) => b.stage === 'before' && groupKey(b) === groupKey(r));
    if (!before) continue;
    const change = cols.map((c) => {
      if (c === 'stage') return '<td><em>change</em></td>';
      const a = finite(r[c]);
      const b = finite(before[c]);
      if (a === undefined || b === undefined) return numeric(c) ? '<td></td>' : cell(c, r[c]);
      const share = evalField(c).share;
      const d = share ? 100 * (a - b) : a - b;
      return `<td class="num ${d > 0 ? 'up' : d < 0 ? 'down' : ''}">${d > 0 ? '+' : ''}${formatNumber(d)}${share ? ' pp' : ''}</td>`;
    });
    body.push(`<tr class="change">${change.join('')}</tr>`);
  }
  return `<h2>Evaluation</h2>
<table class="eval"><thead><tr>${cols.map((c) => `<th>${escapeHtml(evalField(c).label)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>
<p class="note">shares in percent; changes in percentage points (pp).</p>`;
}

const MAX_COMPLETION_CHARS = 6000;

/** Escaped text with the reflective words highlighted; words are letters only, so they never match inside an entity. */
function highlightReflective(text: string): string {
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(${REFLECTIVE_WORDS.join('|')})(?![\\p{L}\\p{N}_])`, 'giu');
  return escapeHtml(text).replace(re, '<mark>$1</mark>');
}

function rewardText(v: unknown): string {
  const n = finite(v);
  if (n !== undefined) return `reward ${formatNumber(n)}`;
  const o = obj(v);
  if (!o) return '';
  return Object.entries(o)
    .map(([k, x]) => `${k} ${finite(x) !== undefined ? formatNumber(x as number) : JSON.stringify(x)}`)
    .join(', ');
}

/** Completions from the first, middle and last sampled steps, so the change in how the model reasons shows. */
function samplesSection(samples: RunLine[], perStage: number): string {
  const usable = samples.filter((s) => finite(s.value.step) !== undefined && typeof s.value.completion === 'string');
  if (usable.length === 0 || perStage <= 0) return '';
  const steps = [...new Set(usable.map((s) => s.value.step as number))].sort((a, b) => a - b);
  const picks: [string, number][] = [
    ['early', steps[0]],
    ['middle', steps[Math.floor((steps.length - 1) / 2)]],
    ['late', steps[steps.length - 1]],
  ];
  const seen = new Set<number>();
  const parts: string[] = [];
  for (const [stage, step] of picks) {
    if (seen.has(step)) continue;
    seen.add(step);
    const chosen = usable.filter((s) => s.value.step === step).slice(0, perStage);
    parts.push(`<h3>${stage} — step ${formatNumber(step)}</h3>`);
    for (const { value: s } of chosen) {
      let completion = s.completion as string;
      const cut = completion.length > MAX_COMPLETION_CHARS;
      if (cut) completion = completion.slice(0, MAX_COMPLETION_CHARS);
      const info = [
        s.answer !== undefined && s.answer !== null
          ? `gold answer ${typeof s.answer === 'string' ? s.answer : JSON.stringify(s.answer)}`
          : '',
        rewardText(s.rewards),
        finite(s.total) !== undefined ? `total ${formatNumber(s.total as number)}` : '',
        typeof s.finish_reason === 'string' ? `finish: ${s.finish_reason}` : '',
      ].filter(Boolean);
      const rewards = info.join(' · ');
      parts.push(`<div class="sample">
${typeof s.prompt === 'string' ? `<details><summary>prompt</summary><pre>${escapeHtml(s.prompt)}</pre></details>` : ''}
<pre class="completion">${highlightReflective(completion)}${cut ? `\n<span class="note">[… ${(s.completion as string).length - MAX_COMPLETION_CHARS} more characters]</span>` : ''}</pre>
${rewards ? `<p class="rewards">${escapeHtml(rewards)}</p>` : ''}
</div>`);
    }
  }
  return `<h2>Sampled completions</h2>
<p class="note">Reflective words are <mark>highlighted</mark>.</p>
${parts.join('\n')}`;
}

const CSS = `
body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1300px; padding: 24px; color: #222; background: #fafafa; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; background: white; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.change td { background: #f4f4f4; } td.up { color: #1a7f37; } td.down { color: #c0392b; }
.note { color: #666; font-size: 0.9em; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.chart { background: white; border: 1px solid #e3e3e3; border-radius: 4px; padding: 4px; }
.chart svg { max-width: 100%; height: auto; display: block; }
.aha { border: 2px solid #f28e2b; }
.warnings { background: #fff6e0; border: 1px solid #f0c36d; padding: 8px 12px; }
.sample { background: white; border: 1px solid #e3e3e3; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
pre { white-space: pre-wrap; word-break: break-word; font-size: 13px; margin: 4px 0; }
mark { background: #ffe08a; }
.rewards { color: #444; font-size: 0.9em; margin: 4px 0 0; }
`;

/** Options of {@link buildTrainingReport}. */
export interface TrainingReportPageOptions {
  /** Page title (default: "Training report: <run dir name>"). */
  title?: string;
  /** Moving-average window in logged values (default 5; 1 draws raw values only). */
  smoothing?: number;
  /** Sampled completions shown per stage (early, middle, late); default 2. */
  samplesPerStage?: number;
  /** Where the page will lie, for the relative path to metrics.jsonl it names (default: the run directory). */
  htmlDir?: string;
  /** The run is still writing (see {@link LoadTrainingRunOptions.growing}). */
  growing?: boolean;
  /** Extra HTML at the end of the body, outside the report's content (the live page's refresh script). */
  tail?: string;
}

/** A training report page, before it is written anywhere. */
export interface TrainingReportPage {
  html: string;
  /** Each chart's id and standalone SVG, in page order. */
  charts: { id: string; svg: string }[];
  warnings: string[];
}

/**
 * The HTML of a training report for a run directory (see {@link writeTrainingReport}), without writing it. The
 * report's content is the element `#report`, which a live page swaps for a newer one.
 */
export async function buildTrainingReport(
  runDir: string,
  opts: TrainingReportPageOptions = {},
): Promise<TrainingReportPage> {
  const smoothing = opts.smoothing ?? 5;
  if (!Number.isInteger(smoothing) || smoothing < 1)
    throw new AhaError(`smoothing must be an integer >= 1 (got ${smoothing})`);
  const run = loadTrainingRun(runDir, { growing: opts.growing });
  const htmlDir = resolve(opts.htmlDir ?? runDir);
  const title = opts.title ?? `Training report: ${resolve(runDir).split(/[\\/]/).pop()}`;

  const placed = chartsFor(run.metrics);
  const charts: TrainingReportPage['charts'] = [];
  const sections = new Map<string, string[]>();
  for (const { section, chart } of placed) {
    const { svg, frame } = await renderLineChartFramed(chart, smoothing);
    charts.push({ id: chart.id, svg });
    const inline = prefixSvgIds(svg, `${chart.id}-`);
    // Every logged value, for the hover tooltip and for anyone reading the page's data.
    const data = `<script type="application/json" id="chart-data-${chart.id}">${scriptJson(chartHoverData(chart, frame))}</script>`;
    const list = sections.get(section) ?? [];
    list.push(
      `<div class="chart${section === 'The aha moment' ? ' aha' : ''}" id="chart-${chart.id}">${inline}${data}</div>`,
    );
    sections.set(section, list);
  }

  const steps = run.metrics.map((m) => m.value.step as number);
  const isSft =
    run.metrics.some((m) => finite(m.value.loss) !== undefined) &&
    !run.metrics.some((m) => M.rewardMean(m.value) !== undefined || finite(m.value.accuracy) !== undefined);
  const seconds = loggedSeconds(run.metrics);
  const meta = [
    `${isSft ? 'SFT' : 'RL'} run`,
    `${run.metrics.length} steps logged (step ${formatNumber(steps[0])} to ${formatNumber(steps[steps.length - 1])})`,
    seconds !== undefined ? `duration ${formatDuration(seconds)} (sum of logged step times)` : 'duration not logged',
    `source ${escapeHtml(relative(htmlDir, resolve(runDir, 'metrics.jsonl')) || 'metrics.jsonl')}`,
  ];
  const warnings = run.warnings.length
    ? `<div class="warnings"><strong>${run.warnings.length} line(s) skipped:</strong><ul>${run.warnings
        .slice(0, 20)
        .map((w) => `<li>${escapeHtml(w)}</li>`)
        .join('')}${run.warnings.length > 20 ? `<li>… ${run.warnings.length - 20} more</li>` : ''}</ul></div>`
    : '';
  const chartHtml = [...sections.entries()]
    .map(([name, charts]) => `<h2>${escapeHtml(name)}</h2>\n<div class="charts">\n${charts.join('\n')}\n</div>`)
    .join('\n');

  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}${CHART_HOVER_CSS}</style>
</head>
<body>
<main id="report">
<h1>${escapeHtml(title)}</h1>
<p class="meta">${meta.join(' · ')}</p>
${warnings}
<h2>Summary</h2>
${summaryRows(run.metrics, smoothing)}
${evalTable(run.evals)}
${chartHtml}
${samplesSection(run.samples, opts.samplesPerStage ?? 2)}
</main>
<script>${CHART_HOVER_SCRIPT}</script>
${opts.tail ?? ''}
</body>
</html>
`;
  return { html, charts, warnings: run.warnings };
}

/**
 * Writes a self-contained HTML training report for a run directory (metrics.jsonl, optional eval.jsonl and
 * samples.jsonl): summary, before/after evaluation, line charts over steps (inline SVG rendered headlessly with
 * Vega-Lite, also written as standalone charts/<id>.svg beside the report for READMEs) and sampled completions.
 * RL runs get accuracy/reward/length/reflective-word/KL/entropy/clip charts, SFT runs loss curves; each chart is
 * drawn only when its fields appear. Each chart carries its logged values as JSON and a small inline script shows
 * them under the mouse (no network: the page opens offline). Malformed lines are skipped with a warning (returned,
 * and shown in the report). No PNG: rasterizing needs node-canvas or a native SVG renderer, and neither is a
 * dependency.
 */
export async function writeTrainingReport(
  runDir: string,
  opts: TrainingReportOptions = {},
): Promise<TrainingReportResult> {
  // An existing directory as --out gets report.html inside it, like the run directory does.
  const outArg =
    opts.out !== undefined && existsSync(opts.out) && statSync(opts.out).isDirectory()
      ? join(opts.out, 'report.html')
      : opts.out;
  const htmlPath = resolve(outArg ?? join(runDir, 'report.html'));
  const page = await buildTrainingReport(runDir, { ...opts, htmlDir: dirname(htmlPath) });
  const chartsDir = join(dirname(htmlPath), 'charts');
  const chartPaths: string[] = [];
  for (const { id, svg } of page.charts) {
    const p = join(chartsDir, `${id}.svg`);
    writeFileAtomic(p, svg);
    chartPaths.push(p);
  }
  writeFileAtomic(htmlPath, page.html);
  return { html: htmlPath, charts: chartPaths, warnings: page.warnings };
}
