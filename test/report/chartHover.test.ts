import { strict as assert } from 'node:assert';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';
import {
  CHART_HOVER_SCRIPT,
  chartHoverData,
  formatHoverValue,
  nearestIndex,
  scriptJson,
} from '../../src/report/chartHover.ts';
import type { ChartFrame } from '../../src/report/charts.ts';

type Helpers = { nearestIndex: typeof nearestIndex; formatHoverValue: typeof formatHoverValue };

/** The helpers as the page has them: the embedded script run with a page that has no charts. */
function pageHelpers(): Helpers {
  const window: { ahaCharts?: Helpers } = {};
  runInNewContext(CHART_HOVER_SCRIPT, { window, document: { querySelectorAll: () => [] } });
  assert.ok(window.ahaCharts, 'the script sets window.ahaCharts');
  return window.ahaCharts;
}

const implementations: [string, () => Helpers][] = [
  ['module', () => ({ nearestIndex, formatHoverValue })],
  ['page script', pageHelpers],
];

for (const [where, helpers] of implementations) {
  describe(`nearestIndex (${where})`, () => {
    it('picks the nearest step, the earlier of two equally near, clamping outside the range', () => {
      const { nearestIndex: nearest } = helpers();
      const steps = [1, 3, 7, 10];
      // x: 0 and 1 -> step 1; 2 is midway 1|3 -> 1; 2.1 -> 3; 5 midway 3|7 -> 3; 5.5 -> 7; 8.5 midway 7|10 -> 7;
      // 9 -> 10; 100 -> 10.
      const xs = [0, 1, 2, 2.1, 5, 5.5, 8.5, 9, 100];
      assert.deepEqual(
        xs.map((x) => nearest(steps, x)),
        [0, 0, 0, 1, 1, 2, 2, 3, 3],
      );
      assert.equal(nearest([5], -3), 0);
      assert.equal(nearest([5], 8), 0);
      assert.equal(nearest([], 1), -1);
    });
    it('agrees with a linear scan on many steps', () => {
      const { nearestIndex: nearest } = helpers();
      const steps = Array.from({ length: 97 }, (_, i) => i * i + (i % 3));
      for (let x = -5; x < 9500; x += 7.25) {
        let best = 0;
        for (let i = 1; i < steps.length; i++) if (Math.abs(steps[i] - x) < Math.abs(steps[best] - x)) best = i;
        assert.equal(nearest(steps, x), best, `x=${x}`);
      }
    });
  });

  describe(`formatHoverValue (${where})`, () => {
    it('shows shares in percent and other values to 4 significant digits', () => {
      const { formatHoverValue: fmt } = helpers();
      assert.deepEqual(
        [0.125, 1 / 3, 1, 0, 0.00005].map((v) => fmt(v, '.0%')),
        ['12.5%', '33.33%', '100%', '0%', '0.005%'],
      );
      assert.deepEqual(
        [0.5, 2.345678, -0.25, 42, 371.25, 0].map((v) => fmt(v, null)),
        ['0.5', '2.346', '-0.25', '42', '371.3', '0'],
      );
    });
    it('writes tiny and huge values with an exponent, without trailing zeros', () => {
      const { formatHoverValue: fmt } = helpers();
      assert.deepEqual(
        [1e-6, 1.5e-6, 3.14159e-7, 1234567.5].map((v) => fmt(v, '.2~e')),
        ['1e-6', '1.5e-6', '3.142e-7', '1.235e+6'],
      );
      assert.equal(fmt(1234567, null), '1234567');
      assert.equal(fmt(Number.NaN, null), 'NaN');
    });
  });
}

describe('chartHoverData', () => {
  const frame: ChartFrame = {
    left: 58,
    top: 94,
    width: 510,
    height: 220,
    x: { domain: [1, 3], range: [0, 510] },
    y: { domain: [0, 1], range: [220, 0] },
  };
  it('keeps every logged value in step order, with the series colours of the drawing', () => {
    const data = chartHoverData(
      {
        id: 'accuracy',
        title: 'Accuracy',
        yTitle: 'share',
        yFormat: '.0%',
        series: [
          {
            name: 'accuracy',
            points: [
              { step: 3, value: 0.75 },
              { step: 1, value: 0.25, lo: 0, hi: 0.5 },
            ],
          },
          { name: 'empty', points: [] },
          { name: 'total', points: [{ step: 2, value: 0.5 }], emphasis: true },
          { name: 'format', points: [{ step: 1, value: 1 }] },
        ],
      },
      frame,
    );
    assert.deepEqual(data, {
      id: 'accuracy',
      title: 'Accuracy',
      yFormat: '.0%',
      frame,
      series: [
        // Tableau 10's first two colours; emphasis is near-black and takes no palette colour.
        { name: 'accuracy', color: '#4e79a7', steps: [1, 3], values: [0.25, 0.75] },
        { name: 'total', color: '#222222', steps: [2], values: [0.5] },
        { name: 'format', color: '#f28e2b', steps: [1], values: [1] },
      ],
    });
  });
});

describe('scriptJson', () => {
  it('cannot close its <script> element or open a comment, and parses back to the value', () => {
    const value = { name: '</script><!-- x', n: 1.5 };
    const text = scriptJson(value);
    assert.ok(!text.includes('<'));
    assert.deepEqual(JSON.parse(text), value);
  });
});
