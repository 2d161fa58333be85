import { strict as assert } from 'node:assert';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import { runFilesVersion, startReportServer } from '../../src/report/reportServer.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-report-server-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('runFilesVersion', () => {
  it("is each run file's size and whole-millisecond modification time, '-' for one absent", () => {
    const dir = join(root, 'version');
    mkdirSync(dir);
    assert.equal(runFilesVersion(dir), '-|-|-');
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1}\n');
    writeFileSync(join(dir, 'samples.jsonl'), '');
    const mt = (name: string) => Math.floor(statSync(join(dir, name)).mtimeMs);
    assert.equal(runFilesVersion(dir), `11:${mt('metrics.jsonl')}|-|0:${mt('samples.jsonl')}`);
    appendFileSync(join(dir, 'metrics.jsonl'), '{"step":2}\n');
    assert.equal(runFilesVersion(dir).split('|')[0], `22:${mt('metrics.jsonl')}`);
  });
});

describe('startReportServer', () => {
  it('serves a waiting page, then the report once metrics arrive, and /version as JSON', async () => {
    const dir = join(root, 'live');
    mkdirSync(dir);
    const server = await startReportServer(dir, { port: 0, title: 'Live <run>' });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const waiting = await fetch(server.url);
      assert.equal(waiting.status, 200);
      const w = await waiting.text();
      assert.match(w, /<h1>Live &lt;run&gt;<\/h1>/);
      assert.match(w, /Waiting for the run: .*metrics\.jsonl: file not found/);
      writeFileSync(
        join(dir, 'metrics.jsonl'),
        '{"step":1,"accuracy":0.25}\n{"step":2,"accuracy":0.5}\n{"step":3,"acc',
      );
      const page = await fetch(server.url);
      const html = await page.text();
      assert.match(html, /2 steps logged \(step 1 to 2\)/);
      assert.ok(!html.includes('skipped'), 'the line being written is no warning');
      assert.ok(html.includes('<script type="application/json" id="chart-data-accuracy">'));
      assert.ok(html.includes("fetch('version'"), 'the live page polls');
      const version = (await (await fetch(new URL('version', server.url))).json()) as { version: string };
      assert.equal(page.headers.get('x-aha-version'), version.version);
      assert.equal(version.version, runFilesVersion(dir));
      assert.equal((await fetch(new URL('nothing', server.url))).status, 404);
      assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
    } finally {
      await server.close();
    }
  });

  it('a port in use and a missing run directory are one-line AhaErrors', async () => {
    const dir = join(root, 'busy');
    mkdirSync(dir);
    const first = await startReportServer(dir, { port: 0 });
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(
        startReportServer(dir, { port }),
        (e: Error) =>
          e instanceof AhaError &&
          e.message === `port ${port} on 127.0.0.1 is already in use; choose another with --port`,
      );
    } finally {
      await first.close();
    }
    await assert.rejects(startReportServer(join(root, 'nope'), { port: 0 }), /nope: run directory not found/);
  });
});
