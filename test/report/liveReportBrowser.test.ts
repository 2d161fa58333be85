/**
 * `aha report --serve` in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core with no
 * browser download) loads the live page, hovers known steps of two charts and reads the tooltip, then sees a step
 * the run appends, scroll position kept. Skipped, saying why, where Chromium or playwright-core is missing.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { writeTrainingReport } from '../../src/report/trainingReport.ts';

const CHROMIUM = process.env.AHA_CHROMIUM ?? '/usr/bin/chromium';
const playwright = await import('playwright-core').catch(() => undefined);
const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set AHA_CHROMIUM)`
  : !playwright
    ? 'playwright-core is not installed (a devDependency: npm ci)'
    : false;

const root = mkdtempSync(join(tmpdir(), 'aha-live-report-'));
after(() => rmSync(root, { recursive: true, force: true }));

// Four steps with hand-picked values: accuracy and format rate on the shares chart, train loss every step and
// eval loss only at step 2 on the loss chart.
const rows = [
  { step: 1, accuracy: 0.25, format_rate: 0.5, loss: 2.5 },
  { step: 2, accuracy: 0.5, format_rate: 0.75, loss: 2.25, eval_loss: 2.4 },
  { step: 3, accuracy: 0.625, format_rate: 1, loss: 2 },
  { step: 4, accuracy: 0.75, format_rate: 1, loss: 1.75 },
];

/** Starts `aha report --serve` on a free port and resolves with its URL and process once it prints the URL. */
function serve(dir: string): Promise<{ url: string; proc: ChildProcessWithoutNullStreams; stderr: () => string }> {
  const proc = spawn(process.execPath, ['bin/aha.js', 'report', '--run', dir, '--serve', '--port', '0'], {
    cwd: resolve(import.meta.dirname, '../..'),
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((ok, fail) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+\/) /.exec(out);
      if (m) ok({ url: m[1], proc, stderr: () => err });
    });
    proc.on('exit', (code) => fail(new Error(`aha report --serve exited (${code}): ${err}`)));
  });
}

/** Moves the mouse over `step` of a chart: the plot's drawn frame spans steps `first`..`last` (x has no padding). */
async function hoverStep(page: Page, chartId: string, step: number, first: number, last: number): Promise<void> {
  const frame = page.locator(`#chart-${chartId} svg path.background`).first();
  await frame.scrollIntoViewIfNeeded();
  const box = await frame.boundingBox();
  assert.ok(box, `chart ${chartId} is drawn`);
  await page.mouse.move(box.x + ((step - first) / (last - first)) * box.width, box.y + box.height / 2);
}

/** The tooltip of a chart as text lines: "step N", then "name value" per series. */
async function tooltip(page: Page, chartId: string): Promise<string[]> {
  const tip = page.locator(`#chart-${chartId} .chart-tooltip`);
  await tip.waitFor({ state: 'visible' });
  const head = await tip.locator('.tip-step').innerText();
  const series = await tip.locator('.tip-row').allInnerTexts();
  return [head, ...series.map((s) => s.replace(/\s+/g, ' ').trim())];
}

describe('aha report --serve in headless Chromium', { skip }, () => {
  it('the written report.html shows values under the mouse opened from disk', async () => {
    const dir = join(root, 'static');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
    const { html } = await writeTrainingReport(dir, { smoothing: 1 });
    const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 700 } });
      await page.goto(pathToFileURL(html).href);
      await hoverStep(page, 'accuracy', 2, 1, 4);
      assert.deepEqual(await tooltip(page, 'accuracy'), ['step 2', 'accuracy 50%', 'format rate 75%']);
      assert.equal(await page.locator('#live-status').count(), 0, 'a written report does not poll');
    } finally {
      await browser.close();
    }
  });

  it('shows the logged values under the mouse and the steps the run appends', async () => {
    const dir = join(root, 'run');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
    const server = await serve(dir);
    const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 700 } });
      await page.goto(server.url);

      await hoverStep(page, 'accuracy', 3, 1, 4);
      assert.deepEqual(await tooltip(page, 'accuracy'), ['step 3', 'accuracy 62.5%', 'format rate 100%']);
      await hoverStep(page, 'accuracy', 1.3, 1, 4);
      assert.deepEqual(await tooltip(page, 'accuracy'), ['step 1', 'accuracy 25%', 'format rate 50%']);
      // Eval loss was logged at step 2 only: at step 3 it shows that value and its step.
      await hoverStep(page, 'loss', 3, 1, 4);
      assert.deepEqual(await tooltip(page, 'loss'), ['step 3', 'train loss 2', 'eval loss 2.4 (step 2)']);
      await page.mouse.move(1, 1);
      await page.locator('#chart-loss .chart-tooltip').waitFor({ state: 'hidden' });

      // A line being written is not shown (and no warning); once whole, the page takes it in place.
      appendFileSync(join(dir, 'metrics.jsonl'), '{"step": 5, "accuracy": 0.875, "for');
      const torn = await (await fetch(server.url)).text();
      assert.match(torn, /4 steps logged/);
      assert.ok(!torn.includes('skipped'));
      const scrollY = 150;
      await page.evaluate(`window.scrollTo(0, ${scrollY})`);
      appendFileSync(join(dir, 'metrics.jsonl'), 'mat_rate": 1, "loss": 1.5}\n');
      await page.waitForFunction(`document.querySelector('.meta').textContent.includes('5 steps logged')`);
      assert.equal(await page.evaluate('window.scrollY'), scrollY, 'the refresh keeps the scroll position');
      assert.match(await page.locator('#live-status').innerText(), /^live: updated /);
      await hoverStep(page, 'accuracy', 5, 1, 5);
      assert.deepEqual(await tooltip(page, 'accuracy'), ['step 5', 'accuracy 87.5%', 'format rate 100%']);
    } finally {
      await browser.close();
      const exited = new Promise<number | null>((ok) => server.proc.on('exit', ok));
      server.proc.kill('SIGINT');
      assert.equal(await exited, 0, server.stderr());
      assert.match(server.stderr(), /aha: report server stopped/);
    }
  });
});
