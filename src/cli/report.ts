import type { Command } from 'commander';
import { AhaError } from '../errors.ts';
import { startReportServer } from '../report/reportServer.ts';
import { writeTrainingReport } from '../report/trainingReport.ts';
import { logLine, printLine } from './output.ts';
import { parseInteger } from './parse.ts';

interface ReportOptions {
  run: string;
  out?: string;
  title?: string;
  smoothing: string;
  serve?: boolean;
  port?: string;
  host?: string;
}

/** Serves the live report until SIGINT or SIGTERM (Ctrl-C), then stops the server. */
async function serve(o: ReportOptions, smoothing: number): Promise<void> {
  const server = await startReportServer(o.run, {
    port: parseInteger(o.port ?? '8000', '--port', { min: 0, max: 65535 }),
    host: o.host,
    title: o.title,
    smoothing,
  });
  printLine(`serving the report of ${o.run} at ${server.url} (refreshes as the run writes; Ctrl-C stops)`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  logLine('aha: report server stopped');
}

/**
 * `aha report --run DIR [--out FILE]`: the HTML training report (charts, eval table, sampled completions);
 * `--serve [--port N] [--host ADDR]` serves it over HTTP instead, refreshing while the run writes.
 */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'write a self-contained HTML training report (charts over steps, before/after eval, sampled completions) for a run directory, or serve it live while the run writes',
    )
    .requiredOption('--run <dir>', 'run directory holding metrics.jsonl (and optionally eval.jsonl, samples.jsonl)')
    .option(
      '--out <file>',
      'report path (default <run>/report.html; a directory gets report.html inside it); chart SVGs go to a charts/ folder beside it',
    )
    .option('--title <text>', 'page title')
    .option('--smoothing <n>', 'moving-average window in logged values (1 = raw values only)', '5')
    .option(
      '--serve',
      'serve the report over HTTP instead of writing it; the page refreshes as the run writes (Ctrl-C stops)',
    )
    .option('--port <n>', 'port for --serve (default 8000; 0 = any free port)')
    .option('--host <addr>', 'address for --serve to listen on (default 127.0.0.1: this machine only)')
    .action(async (o: ReportOptions) => {
      const smoothing = parseInteger(o.smoothing, '--smoothing', { min: 1 });
      if (o.serve) {
        if (o.out !== undefined)
          throw new AhaError('--out writes a file and --serve serves the page: give one of them');
        return serve(o, smoothing);
      }
      if (o.port !== undefined || o.host !== undefined) throw new AhaError('--port and --host go with --serve');
      const r = await writeTrainingReport(o.run, { out: o.out, title: o.title, smoothing });
      for (const w of r.warnings) logLine(`aha: warning: ${w}`);
      printLine(`report  ${r.html}`);
      printLine(
        `charts  ${r.charts.length} SVG files in ${r.charts.length ? r.charts[0].replace(/[\\/][^\\/]*$/, '') : '(none)'}`,
      );
    });
}
