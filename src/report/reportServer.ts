import { existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { buildTrainingReport, escapeHtml } from './trainingReport.ts';

/** Options of {@link startReportServer}. */
export interface ReportServerOptions {
  /** TCP port; 0 takes any free one (the URL names it). Default 8000. */
  port?: number;
  /** Address to listen on; default 127.0.0.1 (this machine only). */
  host?: string;
  /** Page title (default: "Training report: <run dir name>"). */
  title?: string;
  /** Moving-average window in logged values (default 5). */
  smoothing?: number;
  /** Sampled completions shown per stage; default 2. */
  samplesPerStage?: number;
  /** How often the page asks whether the run wrote more, in seconds; default 2. */
  pollSeconds?: number;
}

/** A running report server. */
export interface ReportServer {
  /** The page's address, e.g. http://127.0.0.1:8000/. */
  url: string;
  /** Stops listening and drops open connections (the page's polls). */
  close(): Promise<void>;
}

/** The files a report reads; the page is rebuilt when one of them changes. */
const RUN_FILES = ['metrics.jsonl', 'eval.jsonl', 'samples.jsonl'];

/**
 * A version of what the run directory holds for the report: each run file's size and modification time ("-" for
 * one absent). Appending a line changes the size, so two reads with the same version saw the same lines.
 */
export function runFilesVersion(runDir: string): string {
  return RUN_FILES.map((name) => {
    const p = join(runDir, name);
    if (!existsSync(p)) return '-';
    const s = statSync(p);
    return `${s.size}:${Math.floor(s.mtimeMs)}`;
  }).join('|');
}

/**
 * The live page's script: every `pollSeconds` it asks /version whether the run files changed and, when they did,
 * fetches the page again and swaps in its #report content, keeping the scroll position and which prompts are open.
 */
function liveScript(pollSeconds: number, version: string): string {
  return `<p id="live-status" style="position:fixed;right:12px;bottom:8px;margin:0;padding:2px 8px;background:#eef6ee;border:1px solid #9c9;border-radius:4px;font-size:12px;color:#333">live: checks for new steps every ${pollSeconds} s</p>
<script>
(function () {
  var version = ${JSON.stringify(version)};
  var status = document.getElementById('live-status');
  var busy = false;
  var openDetails = function () {
    return Array.prototype.map.call(document.querySelectorAll('#report details'), function (d) { return d.open; });
  };
  var refresh = function () {
    return fetch('version', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.version === version) return false;
        return fetch('./', { cache: 'no-store' }).then(function (r) {
          var v = r.headers.get('X-Aha-Version') || j.version;
          return r.text().then(function (html) {
            var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('report');
            var old = document.getElementById('report');
            if (!fresh || !old) return false;
            var open = openDetails();
            var x = window.scrollX;
            var y = window.scrollY;
            old.replaceWith(fresh);
            document.querySelectorAll('#report details').forEach(function (d, i) { if (open[i]) d.open = true; });
            window.scrollTo(x, y);
            version = v;
            if (window.ahaCharts) window.ahaCharts.init();
            return true;
          });
        });
      });
  };
  setInterval(function () {
    if (busy) return;
    busy = true;
    refresh()
      .then(
        function (updated) {
          status.style.background = '#eef6ee';
          if (updated) status.textContent = 'live: updated ' + new Date().toLocaleTimeString();
        },
        function () {
          status.style.background = '#fbeaea';
          status.textContent = 'live: server not reachable';
        },
      )
      .finally(function () { busy = false; });
  }, ${Math.round(pollSeconds * 1000)});
})();
</script>`;
}

/** The page while the run has no usable metrics yet: the reason, and the live script that swaps the report in. */
function waitingPage(title: string, reason: string, tail: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1300px; padding: 24px; color: #222; background: #fafafa; }</style>
</head>
<body>
<main id="report">
<h1>${escapeHtml(title)}</h1>
<p>Waiting for the run: ${escapeHtml(reason)}</p>
</main>
${tail}
</body>
</html>
`;
}

function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  if (e.code === 'EADDRINUSE')
    return new AhaError(`port ${port} on ${host} is already in use; choose another with --port`);
  if (e.code === 'EACCES') return new AhaError(`not allowed to listen on port ${port} (ports below 1024 need root)`);
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND')
    return new AhaError(`cannot listen on ${host}: not an address of this machine`);
  return e;
}

/**
 * Serves a run directory's training report over HTTP while the run writes it: GET / is the report as
 * `aha report` writes it (built again when metrics.jsonl, eval.jsonl or samples.jsonl changed), with a script that
 * polls GET /version and swaps in the newer report; nothing is written to disk. A last line still being written
 * is left out until it is whole; before metrics.jsonl has a record the page says what it is waiting for.
 */
export async function startReportServer(runDir: string, opts: ReportServerOptions = {}): Promise<ReportServer> {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new AhaError(`${runDir}: run directory not found`);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8000;
  const pollSeconds = opts.pollSeconds ?? 2;
  if (!(pollSeconds > 0)) throw new AhaError(`pollSeconds must be > 0 (got ${pollSeconds})`);
  const title = opts.title ?? `Training report: ${resolve(runDir).split(/[\\/]/).pop()}`;

  // One build per version of the run files, shared by the requests that arrive while it runs.
  let cached: { version: string; html: Promise<string> } | undefined;
  const page = (version: string): Promise<string> => {
    if (cached?.version !== version) {
      const tail = liveScript(pollSeconds, version);
      const html = buildTrainingReport(runDir, {
        title,
        smoothing: opts.smoothing,
        samplesPerStage: opts.samplesPerStage,
        growing: true,
        tail,
      }).then(
        (p) => p.html,
        (e: unknown) => {
          if (e instanceof AhaError) return waitingPage(title, e.message, tail);
          throw e;
        },
      );
      cached = { version, html };
    }
    return cached.html;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const headers = { 'Cache-Control': 'no-store' };
    if (path === '/version') {
      res
        .writeHead(200, { ...headers, 'Content-Type': 'application/json' })
        .end(JSON.stringify({ version: runFilesVersion(runDir) }));
    } else if (path === '/' || path === '/index.html' || path === '/report.html') {
      const version = runFilesVersion(runDir);
      const html = await page(version);
      res
        .writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8', 'X-Aha-Version': version })
        .end(req.method === 'HEAD' ? undefined : html);
    } else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`report failed: ${(e as Error).message}\n`);
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => fail(listenError(e, host, port)));
    server.listen(port, host, () => ok());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
