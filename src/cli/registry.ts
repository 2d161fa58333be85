import type { Command } from 'commander';
import { registerDemo } from './demo.ts';
import { registerReport } from './report.ts';
import { registerGrpo } from './grpo.ts';
import { registerSft } from './sft.ts';
import { registerEval } from './eval.ts';
import { registerR1 } from './r1.ts';
import { registerDistill } from './distill.ts';
import { registerJudge } from './judge.ts';
import { registerMerge } from './merge.ts';

/** Commands of the later stages (training, evaluation, pipelines). */
export async function registerExtraCommands(program: Command): Promise<void> {
  registerDemo(program);
  registerReport(program);
  registerGrpo(program);
  registerSft(program);
  registerEval(program);
  registerR1(program);
  registerDistill(program);
  registerJudge(program);
  registerMerge(program);
}
