import { seriesColors, type ChartFrame, type LineChart } from './charts.ts';

/**
 * What a report page knows about one chart to show values under the mouse, embedded in the page as JSON
 * (`<script type="application/json" id="chart-data-<id>">`): every logged value of every series, whatever was
 * thinned out of the drawn line, and where the plot lies in the chart's SVG.
 */
export interface ChartHoverData {
  id: string;
  title: string;
  /** The chart's d3 format of values; one with '%' marks shares, shown in percent. */
  yFormat: string | null;
  frame: ChartFrame;
  series: {
    name: string;
    color: string;
    /** Logged steps, ascending. */
    steps: number[];
    /** The value logged at each of `steps`. */
    values: number[];
  }[];
}

/** The hover data of a chart rendered with `frame`. */
export function chartHoverData(chart: LineChart, frame: ChartFrame): ChartHoverData {
  const series = chart.series.filter((s) => s.points.length > 0);
  const colors = seriesColors(series);
  return {
    id: chart.id,
    title: chart.title,
    yFormat: chart.yFormat ?? null,
    frame,
    series: series.map((s, k) => {
      const pts = [...s.points].sort((a, b) => a.step - b.step);
      return { name: s.name, color: colors[k], steps: pts.map((p) => p.step), values: pts.map((p) => p.value) };
    }),
  };
}

/** JSON for inside a <script> element: `<` escaped so no value can close the element or open a comment. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

// The two functions below run in the page as well: the script embeds their source (Function.prototype.toString),
// so they must stay self-contained, plain functions (no imports, no nested named functions, which the TypeScript
// loader would wrap in a helper the page lacks). test/report/chartHover.test.ts runs the embedded copies.

/**
 * The index of the step in ascending `steps` nearest to `x`; of two equally near, the earlier. -1 for no steps.
 */
export function nearestIndex(steps: readonly number[], x: number): number {
  if (steps.length === 0) return -1;
  let lo = 0;
  let hi = steps.length - 1;
  // Invariant: the nearest index is in [lo, hi]; ends when they are neighbours (or equal).
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(steps[hi] - x) < Math.abs(x - steps[lo]) ? hi : lo;
}

/**
 * A value as the tooltip shows it, to 4 significant digits: a share (`yFormat` holding '%') in percent ("12.5%"),
 * an integer as it is, a value under 1e-3 or from 1e6 on in exponent form without trailing zeros ("1.5e-6").
 */
export function formatHoverValue(v: number, yFormat: string | null): string {
  if (!Number.isFinite(v)) return String(v);
  const share = yFormat !== null && yFormat.indexOf('%') >= 0;
  const x = share ? 100 * v : v;
  const a = Math.abs(x);
  let text: string;
  if (Number.isInteger(x)) text = String(x);
  else if (a < 1e-3 || a >= 1e6) text = x.toExponential(3).replace(/\.?0+e/, 'e');
  else text = String(Number(x.toPrecision(4)));
  return share ? text + '%' : text;
}

// The page script: for every chart with hover data, a crosshair at the step nearest the mouse, a dot on each line,
// and a tooltip with the step and each series' logged value there (a series not logged at that step shows its
// nearest step's value, with that step). It works in the SVG's user units, so a chart scaled to fit the window
// still maps the mouse right. `window.ahaCharts.init()` (re)attaches it, for a page whose content was replaced.
const MAIN = `
function ahaChartsInit() {
  var SVGNS = 'http://www.w3.org/2000/svg';
  var boxes = document.querySelectorAll('.chart');
  for (var b = 0; b < boxes.length; b++) {
    var box = boxes[b];
    var svg = box.querySelector('svg');
    var json = document.getElementById('chart-data-' + box.id.replace(/^chart-/, ''));
    if (!svg || !json || box.getAttribute('data-hover') === 'on') continue;
    box.setAttribute('data-hover', 'on');
    attach(box, svg, JSON.parse(json.textContent));
  }
  function attach(box, svg, data) {
    var f = data.frame;
    var layer = document.createElementNS(SVGNS, 'g');
    layer.setAttribute('pointer-events', 'none');
    layer.setAttribute('visibility', 'hidden');
    layer.setAttribute('transform', 'translate(' + f.left + ',' + f.top + ')');
    var line = document.createElementNS(SVGNS, 'line');
    line.setAttribute('y1', '0');
    line.setAttribute('y2', String(f.height));
    line.setAttribute('stroke', '#555');
    line.setAttribute('stroke-dasharray', '3,3');
    layer.appendChild(line);
    var dots = data.series.map(function (s) {
      var c = document.createElementNS(SVGNS, 'circle');
      c.setAttribute('r', '3.5');
      c.setAttribute('fill', s.color);
      c.setAttribute('stroke', 'white');
      layer.appendChild(c);
      return c;
    });
    svg.appendChild(layer);
    var tip = document.createElement('div');
    tip.className = 'chart-tooltip';
    tip.hidden = true;
    box.appendChild(tip);
    var toPx = function (sc, v) {
      return sc.range[0] + ((v - sc.domain[0]) / (sc.domain[1] - sc.domain[0] || 1)) * (sc.range[1] - sc.range[0]);
    };
    var hide = function () {
      layer.setAttribute('visibility', 'hidden');
      tip.hidden = true;
    };
    svg.addEventListener('mouseleave', hide);
    svg.addEventListener('mousemove', function (ev) {
      var ctm = svg.getScreenCTM();
      if (!ctm) return;
      var p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
      var px = p.x - f.left;
      var py = p.y - f.top;
      if (px < -4 || px > f.width + 4 || py < -4 || py > f.height + 4) return hide();
      var x = f.x.domain[0] + ((px - f.x.range[0]) / (f.x.range[1] - f.x.range[0])) * (f.x.domain[1] - f.x.domain[0]);
      var step = NaN;
      data.series.forEach(function (s) {
        var i = nearestIndex(s.steps, x);
        if (i >= 0 && !(Math.abs(s.steps[i] - x) >= Math.abs(step - x))) step = s.steps[i];
      });
      if (!Number.isFinite(step)) return hide();
      var sx = toPx(f.x, step);
      line.setAttribute('x1', String(sx));
      line.setAttribute('x2', String(sx));
      tip.textContent = '';
      var head = document.createElement('div');
      head.className = 'tip-step';
      head.textContent = 'step ' + step;
      tip.appendChild(head);
      data.series.forEach(function (s, k) {
        var i = nearestIndex(s.steps, step);
        var dot = dots[k];
        if (i < 0) return dot.setAttribute('visibility', 'hidden');
        var y = Math.min(f.height, Math.max(0, toPx(f.y, s.values[i])));
        dot.setAttribute('visibility', 'inherit');
        dot.setAttribute('cx', String(toPx(f.x, s.steps[i])));
        dot.setAttribute('cy', String(y));
        var row = document.createElement('div');
        row.className = 'tip-row';
        row.setAttribute('data-series', s.name);
        var key = document.createElement('span');
        key.className = 'tip-key';
        key.style.background = s.color;
        var name = document.createElement('span');
        name.textContent = s.name + ' ';
        var val = document.createElement('b');
        val.className = 'tip-value';
        val.textContent = formatHoverValue(s.values[i], data.yFormat);
        row.appendChild(key);
        row.appendChild(name);
        row.appendChild(val);
        if (s.steps[i] !== step) {
          var at = document.createElement('span');
          at.className = 'tip-at';
          at.textContent = ' (step ' + s.steps[i] + ')';
          row.appendChild(at);
        }
        tip.appendChild(row);
      });
      layer.setAttribute('visibility', 'visible');
      tip.hidden = false;
      var r = box.getBoundingClientRect();
      var left = ev.clientX - r.left + 14;
      if (left + tip.offsetWidth > r.width) left = ev.clientX - r.left - 14 - tip.offsetWidth;
      tip.style.left = Math.max(0, left) + 'px';
      tip.style.top = Math.max(0, ev.clientY - r.top + 14) + 'px';
    });
  }
}
window.ahaCharts = { init: ahaChartsInit, nearestIndex: nearestIndex, formatHoverValue: formatHoverValue };
ahaChartsInit();
`;

/** The page's hover script: {@link nearestIndex} and {@link formatHoverValue} as compiled, then the code using them. */
export const CHART_HOVER_SCRIPT = `(function () {
${nearestIndex.toString()}
${formatHoverValue.toString()}
${MAIN}
})();`;

/** CSS of the tooltip (the chart boxes are its positioning context). */
export const CHART_HOVER_CSS = `
.chart { position: relative; }
.chart-tooltip { position: absolute; z-index: 2; pointer-events: none; background: rgba(255,255,255,0.96); border: 1px solid #bbb; border-radius: 4px; padding: 4px 8px; font-size: 12px; line-height: 1.5; white-space: nowrap; box-shadow: 0 1px 4px rgba(0,0,0,0.15); }
.chart-tooltip .tip-step { font-weight: bold; }
.chart-tooltip .tip-key { display: inline-block; width: 10px; height: 3px; vertical-align: middle; margin-right: 5px; }
.chart-tooltip .tip-value { font-variant-numeric: tabular-nums; }
.chart-tooltip .tip-at { color: #777; }
`;
