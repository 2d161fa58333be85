import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  MAX_DRAWN_POINTS,
  drawnIndices,
  flatDomain,
  lineChartSpec,
  movingAverage,
  prefixSvgIds,
  renderLineChart,
  renderLineChartFramed,
  wrapWords,
  type LineChart,
} from '../../src/report/charts.ts';
import { AhaError } from '../../src/errors.ts';

describe('movingAverage', () => {
  it('is a trailing mean over the last `window` points, shorter at the start', () => {
    // window 3 on 1,2,3,4,10: [1], [1,2], [1,2,3], [2,3,4], [3,4,10] -> 1, 1.5, 2, 3, 17/3
    assert.deepEqual(movingAverage([1, 2, 3, 4, 10], 3), [1, 1.5, 2, 3, 17 / 3]);
    assert.deepEqual(movingAverage([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5]);
  });
  it('window 1 is the identity; a window longer than the series is the running mean', () => {
    assert.deepEqual(movingAverage([3, -1, 7], 1), [3, -1, 7]);
    assert.deepEqual(movingAverage([2, 4, 6], 10), [2, 3, 4]);
    assert.deepEqual(movingAverage([], 5), []);
  });
  it('rejects a window that is not a positive integer', () => {
    assert.throws(() => movingAverage([1], 0), AhaError);
    assert.throws(() => movingAverage([1], 2.5), /integer >= 1/);
  });
});

const chart: LineChart = {
  id: 'reward',
  title: 'Reward',
  yTitle: 'reward per completion',
  series: [
    {
      name: 'reward (mean)',
      points: [
        { step: 3, value: 3, lo: 2, hi: 4 },
        { step: 1, value: 1, lo: 0, hi: 2 },
        { step: 2, value: 2, lo: 1, hi: 3 },
      ],
    },
    { name: 'total', points: [{ step: 1, value: 5 }], emphasis: true },
  ],
};

type Rows = {
  step: number;
  series: string;
  value: number;
  smooth: number;
  lo?: number;
  hi?: number;
  emph: boolean;
  single: boolean;
}[];

describe('lineChartSpec', () => {
  it('sorts points by step and smooths values and band with the same window', () => {
    const spec = lineChartSpec(chart, 2) as unknown as { data: { values: Rows }; layer: unknown[] };
    const rows = spec.data.values.filter((r) => r.series === 'reward (mean)');
    assert.deepEqual(
      rows.map((r) => r.step),
      [1, 2, 3],
    );
    assert.deepEqual(
      rows.map((r) => r.smooth),
      [1, 1.5, 2.5],
    );
    assert.deepEqual(
      rows.map((r) => r.lo),
      [0, 0.5, 1.5],
    );
    assert.deepEqual(
      rows.map((r) => r.hi),
      [2, 2.5, 3.5],
    );
    const total = spec.data.values.filter((r) => r.series === 'total');
    assert.deepEqual(total, [{ step: 1, series: 'total', value: 5, smooth: 5, emph: true, single: true }]);
    // band, faint raw line, smoothed line, and a point layer for the one-point series
    assert.equal(spec.layer.length, 4);
  });
  it('does not smooth a series with less than half the points of the densest (eval loss every N steps)', () => {
    const loss: LineChart = {
      id: 'loss',
      title: 'Loss',
      yTitle: 'loss',
      series: [
        { name: 'train', points: [1, 2, 3, 4, 5].map((step) => ({ step, value: step })) },
        {
          name: 'eval',
          points: [
            { step: 2, value: 10 },
            { step: 4, value: 20 },
          ],
        },
      ],
    };
    const rows = (lineChartSpec(loss, 5) as unknown as { data: { values: Rows } }).data.values;
    assert.deepEqual(
      rows.filter((r) => r.series === 'train').map((r) => r.smooth),
      [1, 1.5, 2, 2.5, 3],
    );
    assert.deepEqual(
      rows.filter((r) => r.series === 'eval').map((r) => r.smooth),
      [10, 20],
    );
  });
  it('draws raw values only with smoothing 1 or a noSmoothing chart', () => {
    const one = lineChartSpec({ ...chart, series: [chart.series[0]] }, 1) as unknown as { layer: unknown[] };
    assert.equal(one.layer.length, 2); // band + line
    const lr = lineChartSpec(
      {
        id: 'lr',
        title: 'LR',
        yTitle: 'lr',
        noSmoothing: true,
        series: [
          {
            name: 'lr',
            points: [
              { step: 1, value: 1e-6 },
              { step: 2, value: 2e-6 },
            ],
          },
        ],
      },
      5,
    ) as unknown as { layer: unknown[]; title: { subtitle?: string[] } };
    assert.equal(lr.layer.length, 1);
    assert.equal(lr.title.subtitle, undefined);
  });
});

describe('flat series', () => {
  it('flatDomain gives a series that never moves room around its value', () => {
    assert.deepEqual(flatDomain(0), [-1, 1]);
    assert.deepEqual(flatDomain(0, { zero: true }), [0, 1]);
    assert.deepEqual(flatDomain(0, { zero: true, share: true }), [0, 1]);
    assert.deepEqual(flatDomain(4e-5, { zero: true }), [0, 4e-5 + 2e-5]);
    assert.deepEqual(flatDomain(-2, { zero: true }), [-3, 0]);
    assert.deepEqual(flatDomain(1, { share: true }), [0.5, 1]);
    assert.deepEqual(flatDomain(2), [1, 3]);
  });
  it('a chart whose values are all equal gets that domain and more than one tick', async () => {
    const flat: LineChart = {
      id: 'clip',
      title: 'Clip fraction',
      yTitle: 'share of tokens',
      yFormat: '.1%',
      yZero: true,
      series: [{ name: 'clip', points: [1, 2, 3].map((step) => ({ step, value: 0 })) }],
    };
    const spec = lineChartSpec(flat, 1) as unknown as { layer: { encoding: { y: { scale: unknown } } }[] };
    assert.deepEqual(spec.layer[0].encoding.y.scale, { domain: [0, 1] });
    const svg = await renderLineChart(flat, 1);
    const ticks = [...svg.matchAll(/>(\d+\.\d%)</g)].map((m) => m[1]);
    assert.ok(ticks.length >= 3, `ticks: ${ticks.join(' ')}`);
    assert.ok(ticks.includes('0.0%') && ticks.includes('100.0%'));
    // A moving series keeps the fitted domain.
    const moving = lineChartSpec(
      {
        ...flat,
        series: [
          {
            name: 'm',
            points: [
              { step: 1, value: 0 },
              { step: 2, value: 0.1 },
            ],
          },
        ],
      },
      1,
    ) as unknown as {
      layer: { encoding: { y: { scale: unknown } } }[];
    };
    assert.deepEqual(moving.layer[0].encoding.y.scale, { zero: true, nice: true });
  });
});

describe('renderLineChart', () => {
  it('renders a standalone SVG headlessly, with title, axis titles and legend labels', async () => {
    const svg = await renderLineChart(chart, 2);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>$/);
    for (const text of [
      'Reward',
      'step',
      'reward per completion',
      'reward (mean)',
      'total',
      'moving average of the last 2 values',
    ])
      assert.ok(svg.includes(`>${text}`) || svg.includes(text), `missing text ${text}`);
    assert.ok((svg.match(/<path/g) ?? []).length >= 4, 'lines and band are paths');
    const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
    assert.equal(width, 580); // fit-x: every chart the same width
  });
});

describe('prefixSvgIds', () => {
  it('prefixes ids and their url(#...) references only', () => {
    const svg = '<svg><clipPath id="clip1"><rect/></clipPath><g clip-path="url(#clip1)" data-id="x"/></svg>';
    assert.equal(
      prefixSvgIds(svg, 'kl-'),
      '<svg><clipPath id="kl-clip1"><rect/></clipPath><g clip-path="url(#kl-clip1)" data-id="x"/></svg>',
    );
  });
});

describe('drawnIndices', () => {
  it('keeps the first, the last, and the smallest and largest value of each run, in index order', () => {
    // maxPoints 6 -> 2 runs of 4: [5, 1, 9, 3] keeps 1 (index 1) and 9 (index 2); [7, 2, 8, 4] keeps 2 and 8.
    assert.deepEqual(drawnIndices([5, 1, 9, 3, 7, 2, 8, 4], 6), [0, 1, 2, 5, 6, 7]);
    // maxPoints 5 -> 1 run: the smallest is 0 (index 2), the largest the first 6 (index 3).
    assert.deepEqual(drawnIndices([4, 4, 0, 6, 6, 6, 6], 5), [0, 2, 3, 6]);
    // 9 values, maxPoints 8 -> 3 runs of 3: [1, 1, 1] keeps index 0 alone; [9, 0, 2]: 4 and 3; [2, 2, 7]: 6 and 8.
    assert.deepEqual(drawnIndices([1, 1, 1, 9, 0, 2, 2, 2, 7], 8), [0, 3, 4, 6, 8]);
    assert.deepEqual(drawnIndices([3, 1, 2], 2), [0, 2]);
  });
  it('keeps every index of a short line, and rejects fewer than 2 points', () => {
    assert.deepEqual(drawnIndices([3, 1, 2], 3), [0, 1, 2]);
    assert.deepEqual(drawnIndices([], 2), []);
    assert.throws(() => drawnIndices([1, 2, 3], 1), /maxPoints must be an integer >= 2/);
  });
});

describe('long runs', () => {
  it('draw at most MAX_DRAWN_POINTS per line, keeping a one-step spike, smoothed over every step', () => {
    const n = 5000;
    const values = Array.from({ length: n }, (_, i) => (i === 3210 ? 100 : i % 2));
    const long: LineChart = {
      id: 'long',
      title: 'Long',
      yTitle: 'y',
      series: [{ name: 'v', points: values.map((value, i) => ({ step: i + 1, value })) }],
    };
    const rows = (lineChartSpec(long, 4) as unknown as { data: { values: Rows } }).data.values;
    assert.ok(rows.length <= MAX_DRAWN_POINTS && rows.length >= MAX_DRAWN_POINTS / 2, `${rows.length} rows`);
    assert.deepEqual([rows[0].step, rows[rows.length - 1].step], [1, n], 'the line spans every step');
    const spike = rows.find((r) => r.step === 3211);
    // The trailing mean of 4 at the spike: values at steps 3208..3211 are 1, 0, 1, 100.
    assert.deepEqual(spike && [spike.value, spike.smooth], [100, 102 / 4]);
  });
});

describe('renderLineChartFramed', () => {
  it("gives the plot's place in the SVG and the scales of step and value", async () => {
    const { svg, frame } = await renderLineChartFramed(chart, 1);
    // The SVG itself: the plot group's translation, and the plot's background rectangle (width x height).
    const [, tx, ty] = /<g fill="none"[^>]*transform="translate\(([\d.]+),([\d.]+)\)"/.exec(svg)!.map(Number);
    const [, w, h] = /class="background"[^>]*d="M0\.5,0\.5h([\d.]+)v([\d.]+)h/.exec(svg)!.map(Number);
    assert.deepEqual([frame.left, frame.top, frame.width, frame.height], [tx, ty, w, h]);
    // Steps 1..3 span the width (no nice rounding on x); y is fitted to the values and band, 0..5, upwards.
    assert.deepEqual(frame.x, { domain: [1, 3], range: [0, w] });
    assert.deepEqual(frame.y, { domain: [0, 5], range: [h, 0] });
  });
});

describe('subtitles', () => {
  it('wrapWords cuts at spaces into lines of at most maxChars', () => {
    assert.deepEqual(wrapWords('aa bb cc dd', 5), ['aa bb', 'cc dd']);
    assert.deepEqual(wrapWords('aa bb cc', 4), ['aa', 'bb', 'cc']);
    assert.deepEqual(wrapWords('  one   longerword x ', 6), ['one', 'longerword', 'x']);
    assert.deepEqual(wrapWords('', 10), []);
  });
  it('a long subtitle wraps and leaves the plot as wide as without it', async () => {
    const subtitle =
      "mean over the completions of a step; band: ± 1 standard deviation, within the step's reward range";
    const spec = lineChartSpec({ ...chart, subtitle }, 1) as unknown as { title: { subtitle: string[] } };
    assert.deepEqual(spec.title.subtitle, [
      'mean over the completions of a step; band: ± 1 standard',
      "deviation, within the step's reward range",
    ]);
    const plain = await renderLineChartFramed(chart, 1);
    const long = await renderLineChartFramed({ ...chart, subtitle }, 1);
    assert.equal(long.frame.width, plain.frame.width);
    assert.ok(plain.frame.width > 480, `${plain.frame.width}`);
  });
});
