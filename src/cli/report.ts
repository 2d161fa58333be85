import type { Command } from 'commander';
import { writeTrainingReport } from '../report/trainingReport.ts';
import { logLine, printLine } from './output.ts';
import { parseInteger } from './parse.ts';

/** `aha report --run DIR [--out FILE]`: the HTML training report (charts, eval table, sampled completions). */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'write a self-contained HTML training report (charts over steps, before/after eval, sampled completions) for a run directory',
    )
    .requiredOption('--run <dir>', 'run directory holding metrics.jsonl (and optionally eval.jsonl, samples.jsonl)')
    .option(
      '--out <file>',
      'report path (default <run>/report.html; a directory gets report.html inside it); chart SVGs go to a charts/ folder beside it',
    )
    .option('--title <text>', 'page title')
    .option('--smoothing <n>', 'moving-average window in logged values (1 = raw values only)', '5')
    .action(async (o: { run: string; out?: string; title?: string; smoothing: string }) => {
      const r = await writeTrainingReport(o.run, {
        out: o.out,
        title: o.title,
        smoothing: parseInteger(o.smoothing, '--smoothing', { min: 1 }),
      });
      for (const w of r.warnings) logLine(`aha: warning: ${w}`);
      printLine(`report  ${r.html}`);
      printLine(
        `charts  ${r.charts.length} SVG files in ${r.charts.length ? r.charts[0].replace(/[\\/][^\\/]*$/, '') : '(none)'}`,
      );
    });
}
