import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { AhaError } from '../errors.ts';

/** One point of a series; `lo`/`hi` (both or neither) draw a shaded band, e.g. mean ± std. */
export interface SeriesPoint {
  step: number;
  value: number;
  lo?: number;
  hi?: number;
}

/** A named line on a chart. `emphasis` draws it thicker (the "total" line among per-word lines). */
export interface Series {
  name: string;
  points: SeriesPoint[];
  emphasis?: boolean;
  /** Fixed colour (CSS); otherwise taken from the palette in series order. */
  color?: string;
}

/** What to draw: a line chart over training steps. */
export interface LineChart {
  /** File-name-safe id: the standalone SVG is written as charts/<id>.svg. */
  id: string;
  title: string;
  /** Shown under the title, wrapped to lines that keep the chart's width ({@link SUBTITLE_LINE_CHARS}). */
  subtitle?: string;
  yTitle: string;
  series: Series[];
  /** d3-format string for the y axis ('.0%' for rates, '.1e' for learning rates). */
  yFormat?: string;
  /** Fixed y domain (rates are [0, 1]); otherwise fitted to the data. */
  yDomain?: [number, number];
  /** Whether the fitted y domain must include zero (true for non-negative quantities like KL). */
  yZero?: boolean;
  /** Draw raw values only, whatever the smoothing (a learning-rate schedule is exact, averaging only distorts it). */
  noSmoothing?: boolean;
  /** Full page width and taller (the headline chart). */
  wide?: boolean;
}

// Tableau 10: distinguishable, and readable on white. "total"-style lines get near-black instead.
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/**
 * Trailing moving average over the last `window` points of a series (fewer at its start), so a smoothed value at a
 * step never uses later steps, like a live training dashboard. `window` <= 1 returns the values unchanged.
 */
export function movingAverage(values: readonly number[], window: number): number[] {
  if (!Number.isInteger(window) || window < 1)
    throw new AhaError(`smoothing window must be an integer >= 1 (got ${window})`);
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const lo = Math.max(0, i - window + 1);
    let sum = 0;
    for (let j = lo; j <= i; j++) sum += values[j];
    out.push(sum / (i - lo + 1));
  }
  return out;
}

/**
 * The indices of `values` to draw when a line has more than `maxPoints` of them: the first and the last (so the
 * line spans every step), and, with the values cut into `floor((maxPoints - 2) / 2)` runs of consecutive indices (as
 * equal as integer division allows), each run's smallest and largest value (the first of equal ones), in index
 * order. A spike survives, unlike with every k-th point, and a chart of 50 000 steps draws the same envelope at a
 * fiftieth of the path. All indices when there are at most `maxPoints`.
 */
export function drawnIndices(values: readonly number[], maxPoints: number): number[] {
  if (!Number.isInteger(maxPoints) || maxPoints < 2)
    throw new AhaError(`maxPoints must be an integer >= 2 (got ${maxPoints})`);
  const n = values.length;
  if (n <= maxPoints) return values.map((_, i) => i);
  const runs = Math.floor((maxPoints - 2) / 2);
  const keep = new Set([0, n - 1]);
  for (let r = 0; r < runs; r++) {
    const start = Math.floor((r * n) / runs);
    const end = Math.floor(((r + 1) * n) / runs);
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (values[i] < values[lo]) lo = i;
      if (values[i] > values[hi]) hi = i;
    }
    keep.add(lo).add(hi);
  }
  return [...keep].sort((a, b) => a - b);
}

/** Most points drawn per line: a smallest and a largest value per pixel of a chart's plot (510 pixels wide). */
export const MAX_DRAWN_POINTS = 1000;

/** The colour of each series of a chart, in order: its own, near-black for emphasis, else the next of the palette. */
export function seriesColors(series: readonly Series[]): string[] {
  let k = 0;
  return series.map((s) => s.color ?? (s.emphasis ? '#222222' : PALETTE[k++ % PALETTE.length]));
}

/**
 * Characters of a subtitle line on a chart of the usual width. Vega estimates text widths, and a line it thinks wider
 * than the chart shrinks the plot to make room (autosize fit-x): a 90-character line left a plot 352 of the 501
 * pixels it had without one, a 70-character line all of them.
 */
export const SUBTITLE_LINE_CHARS = 64;

/**
 * `text` cut into lines of at most `maxChars` characters at spaces (a single longer word gets a line of its own).
 */
export function wrapWords(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

interface Row {
  step: number;
  series: string;
  value: number;
  smooth: number;
  lo?: number;
  hi?: number;
  emph: boolean;
  single: boolean;
}

/**
 * The y domain for a series flat at `v`: v ± half of |v| (± 1 at 0), reaching 0 when the chart's domain must hold
 * zero, and within [0, 1] for a share.
 */
export function flatDomain(v: number, o: { zero?: boolean; share?: boolean } = {}): [number, number] {
  const pad = v === 0 ? 1 : Math.abs(v) / 2;
  let lo = v - pad;
  let hi = v + pad;
  if (o.zero) {
    lo = Math.min(0, v >= 0 ? 0 : lo);
    hi = Math.max(0, v <= 0 ? 0 : hi);
    if (lo === 0 && hi === 0) hi = 1;
  }
  if (o.share) {
    lo = Math.max(0, lo);
    hi = Math.min(1, hi);
    if (hi <= lo) [lo, hi] = [0, 1];
  }
  return [lo, hi];
}

/**
 * The Vega-Lite spec of a chart: with `smoothing` > 1 the moving average is the solid line and the raw values a
 * faint line under it; bands (mean ± std) are smoothed with the same window so they do not hide the line. A series
 * with less than half the points of the densest one on the chart is not smoothed.
 */
export function lineChartSpec(chart: LineChart, smoothing: number): TopLevelSpec {
  if (chart.noSmoothing) smoothing = 1;
  const rows: Row[] = [];
  const series = chart.series.filter((s) => s.points.length > 0);
  let hasBand = false;
  const densest = Math.max(0, ...series.map((s) => s.points.length));
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a.step - b.step);
    // A sparse series (eval loss every N steps) is already an average and a window of its points would span
    // many steps and lag: draw it raw.
    const w = 2 * pts.length < densest ? 1 : smoothing;
    const smooth = movingAverage(
      pts.map((p) => p.value),
      w,
    );
    const banded = pts.every((p) => p.lo !== undefined && p.hi !== undefined);
    const lo = banded
      ? movingAverage(
          pts.map((p) => p.lo as number),
          w,
        )
      : [];
    const hi = banded
      ? movingAverage(
          pts.map((p) => p.hi as number),
          w,
        )
      : [];
    hasBand ||= banded;
    // Thinned by the raw values after smoothing, so the average still sees every step.
    for (const i of drawnIndices(
      pts.map((p) => p.value),
      MAX_DRAWN_POINTS,
    )) {
      const p = pts[i];
      const row: Row = {
        step: p.step,
        series: s.name,
        value: p.value,
        smooth: smooth[i],
        emph: !!s.emphasis,
        single: pts.length === 1,
      };
      if (banded) {
        row.lo = lo[i];
        row.hi = hi[i];
      }
      rows.push(row);
    }
  }
  // A series that never moves would get the domain [v, v] and one lone tick ("0%"): give it room around v.
  const ys = rows.flatMap((r) => [r.value, r.smooth, r.lo, r.hi].filter((v): v is number => v !== undefined));
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const domain =
    chart.yDomain ??
    (ys.length > 0 && hi - lo <= 1e-9 * Math.max(1, Math.abs(hi))
      ? flatDomain(hi, { zero: chart.yZero, share: chart.yFormat?.includes('%') })
      : undefined);
  const range = seriesColors(series);
  const smoothed = smoothing > 1;
  const y = (field: string) => ({
    field,
    type: 'quantitative' as const,
    title: chart.yTitle,
    axis: chart.yFormat ? { format: chart.yFormat } : {},
    scale: domain ? { domain } : { zero: chart.yZero ?? false, nice: true },
  });
  const x = {
    field: 'step',
    type: 'quantitative' as const,
    title: 'step',
    axis: { format: 'd', tickMinStep: 1 },
    scale: { nice: false, zero: false },
  };
  const color = {
    field: 'series',
    type: 'nominal' as const,
    scale: { domain: series.map((s) => s.name), range },
    // Legend on top keeps every chart the same width, so the page grid lines up; long lists wrap into rows.
    legend:
      series.length > 1
        ? {
            title: null,
            orient: 'top' as const,
            columns: chart.wide ? series.length : Math.min(series.length, 5),
            symbolType: 'stroke',
            symbolStrokeWidth: 3,
            symbolOpacity: 1,
            labelLimit: 120,
          }
        : null,
  };
  const layer: object[] = [];
  if (hasBand)
    layer.push({
      mark: { type: 'area', opacity: 0.15 },
      transform: [{ filter: 'isValid(datum.lo)' }],
      encoding: { x, y: { ...y('lo'), stack: null }, y2: { field: 'hi' }, color },
    });
  if (smoothed)
    layer.push({ mark: { type: 'line', opacity: 0.3, strokeWidth: 1 }, encoding: { x, y: y('value'), color } });
  layer.push({
    mark: { type: 'line' },
    encoding: {
      x,
      y: y(smoothed ? 'smooth' : 'value'),
      color,
      strokeWidth: { condition: { test: 'datum.emph', value: 3 }, value: 2 },
    },
  });
  if (rows.some((r) => r.single))
    layer.push({
      mark: { type: 'point', filled: true, size: 50, opacity: 1 },
      transform: [{ filter: 'datum.single' }],
      encoding: { x, y: y('value'), color },
    });
  const lineChars = chart.wide ? 2 * SUBTITLE_LINE_CHARS : SUBTITLE_LINE_CHARS;
  const subtitle = [
    ...(chart.subtitle ? wrapWords(chart.subtitle, lineChars) : []),
    ...(smoothed ? [`solid: moving average of the last ${smoothing} values, faint: raw`] : []),
  ];
  return {
    // fit-x: every chart is exactly this wide whatever its axis labels and legend, so the page grid lines up.
    width: chart.wide ? 1180 : 580,
    autosize: { type: 'fit-x', contains: 'padding' },
    height: chart.wide ? 300 : 220,
    background: 'white',
    padding: 8,
    title: {
      text: chart.title,
      subtitle: subtitle.length ? subtitle : undefined,
      anchor: 'start',
      fontSize: 15,
      subtitleFontSize: 11,
      subtitleColor: '#555',
      subtitlePadding: 4,
      offset: 10,
    },
    data: { values: rows },
    layer,
    config: {
      font: 'Helvetica, Arial, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6', titleFontWeight: 'normal' },
      legend: { labelFontSize: 11 },
      view: { stroke: '#ccc' },
    },
  } as TopLevelSpec;
}

/** A linear scale: `domain[0]` maps to `range[0]`, `domain[1]` to `range[1]`. */
export interface LinearScale {
  domain: [number, number];
  range: [number, number];
}

/**
 * Where a rendered chart's plot lies in its SVG's user units (the viewBox): the plot rectangle and the scales from
 * step and value to pixels inside it, so a page script can map the mouse to a step and a value to a height.
 */
export interface ChartFrame {
  left: number;
  top: number;
  width: number;
  height: number;
  x: LinearScale;
  y: LinearScale;
}

/** A chart as SVG, with the frame of its plot. */
export interface RenderedChart {
  svg: string;
  frame: ChartFrame;
}

function linearScale(view: vega.View, name: string): LinearScale {
  const s = view.scale(name) as { type: string; domain(): number[]; range(): number[] };
  if (s.type !== 'linear') throw new Error(`chart scale ${name} is ${s.type}, not linear`);
  const [d0, d1] = s.domain();
  const [r0, r1] = s.range();
  return { domain: [d0, d1], range: [r0, r1] };
}

/**
 * Renders a Vega-Lite spec to an SVG string headlessly (no browser, no canvas: text widths are estimated), with the
 * frame of its plot. The spec must have one x and one y linear scale (every {@link lineChartSpec} has).
 */
export async function renderSvgFramed(spec: TopLevelSpec): Promise<RenderedChart> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // toSVG runs the view; the plot group sits at the view's origin, shifted by the padding the SVG adds around it.
    const [ox, oy] = view.origin();
    const pad = view.padding() as { left?: number; top?: number };
    return {
      svg,
      frame: {
        left: ox + (pad.left ?? 0),
        top: oy + (pad.top ?? 0),
        width: view.width(),
        height: view.height(),
        x: linearScale(view, 'x'),
        y: linearScale(view, 'y'),
      },
    };
  } finally {
    view.finalize();
  }
}

/** Renders a Vega-Lite spec to an SVG string headlessly (no browser, no canvas: text widths are estimated). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Prefixes the element ids of an SVG (and their url(#id) references) so several SVGs can share one HTML page. */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg.replace(/(\s)id="([^"]+)"/g, `$1id="${prefix}$2"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`);
}

/** Renders a {@link LineChart} to SVG; see {@link lineChartSpec}. */
export async function renderLineChart(chart: LineChart, smoothing: number): Promise<string> {
  return renderSvg(lineChartSpec(chart, smoothing));
}

/** Renders a {@link LineChart} to SVG with the frame of its plot; see {@link lineChartSpec}. */
export async function renderLineChartFramed(chart: LineChart, smoothing: number): Promise<RenderedChart> {
  return renderSvgFramed(lineChartSpec(chart, smoothing));
}
