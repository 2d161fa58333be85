/**
 * Stage 3 of `aha r1`, rejection_sft: rejection sampling from stage 2's checkpoint (src/r1/rejectionSampling.ts),
 * mixed with non-reasoning data, then SFT of the base model on it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../../errors.ts';
import { pipelinePath } from '../pipelineRecipe.ts';
import { verifierWithJudge } from '../filters.ts';
import {
  finalAnswer,
  rejectionFiles,
  runRejectionSampling,
  type RejectionSamplingReport,
} from '../rejectionSampling.ts';
import { runSftStep } from '../sftStep.ts';
import { dataParallel } from '../../parallel/dataParallel.ts';

/** Counts summed over the ranks of a data-parallel job (themselves in one process). */
const reduceCounts = (xs: number[]) => dataParallel()?.reduce(xs) ?? xs;
import { localGenerator, seededDraw, stageFilters, stageSampling, type StageRunner } from '../stage.ts';

/** Stage 3: rejection sampling from the RL checkpoint, then SFT of the base model on it. */
export const runRejectionStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.rejection_sft!;
  const files = rejectionFiles(ctx.dir);
  let report: RejectionSamplingReport | null = existsSync(files.report)
    ? (JSON.parse(readFileSync(files.report, 'utf8')) as RejectionSamplingReport)
    : null;
  const sampledNow = report?.status !== 'complete';
  if (report?.status !== 'complete') {
    const problems = seededDraw(ctx.data.train, cfg.prompts, 'rejection', ctx.recipe.seed);
    ctx.log(
      `rejection_sft: sampling ${problems.length} prompts x ${cfg.samples_per_prompt} from ${ctx.previousCheckpoint}`,
    );
    const { generator, countTokens } = localGenerator(ctx.previousCheckpoint, ctx.data.chat);
    const ratio = cfg.non_reasoning_ratio ?? (cfg.non_reasoning_data !== undefined ? 0.25 : 0);
    // filters.judge_unreadable: an LLM judge decides the answers the verifier cannot read.
    const judged = verifierWithJudge(ctx.data.verify, ctx.recipe.filters, {
      readable: (c) => finalAnswer(c, ctx.recipe.answer_strategies) !== null,
      baseDir: ctx.recipe.baseDir,
      source: `${ctx.recipe.source}: filters`,
      log: (l) => ctx.log(`rejection_sft: ${l}`),
    });
    report = await runRejectionSampling({
      generator,
      checkpoint: ctx.previousCheckpoint,
      problems,
      verify: judged.verify,
      filters: stageFilters(ctx, countTokens),
      sampling: stageSampling(ctx, cfg),
      maxPerPrompt: cfg.max_per_prompt,
      nonReasoning:
        cfg.non_reasoning_data !== undefined
          ? { path: pipelinePath(ctx.recipe, cfg.non_reasoning_data), ratio }
          : undefined,
      outDir: ctx.dir,
      signal: ctx.signal,
      log: (l) => ctx.log(`rejection_sft: ${l}`),
    });
    // Each rank verified its share (src/parallel/dataParallel.ts mapShared): the judge's counts are the ranks' sum.
    const [jd, ja, jf] = reduceCounts([judged.counts.judged, judged.counts.accepted, judged.counts.failed]);
    const j = { judged: jd, accepted: ja, failed: jf };
    if (judged.judge)
      ctx.log(
        `rejection_sft: the judge decided ${j.judged} unreadable answers: ${j.accepted} correct, ${j.failed} failed`,
      );
    const c = report.counts;
    ctx.log(
      `rejection_sft: kept ${c.kept} of ${c.samples} samples (incorrect ${c.incorrect}, dropped ${JSON.stringify(c.dropped)}, duplicates ${c.duplicates}, over cap ${c.over_cap}) + ${c.non_reasoning} non-reasoning`,
    );
  }
  if (report.counts.kept === 0) {
    throw new AhaError(
      `rejection_sft: no sample of ${report.counts.samples} from ${report.checkpoint} was correct and readable (see ${files.report})`,
    );
  }
  // As in the paper: the rejection-sampled data fine-tunes the base model, not the RL checkpoint.
  const r = await runSftStep(ctx, {
    model: ctx.baseModel,
    data: files.data,
    sft: cfg.sft,
    runDir: join(ctx.dir, 'sft'),
    maxMinutes: cfg.max_minutes,
  });
  const c = report.counts;
  // A shortfall is said again when a resumed stage reuses the report (its log line was in an earlier invocation).
  const warnings = report.warnings ?? [];
  if (!sampledNow) for (const w of warnings) ctx.log(`rejection_sft: warning: ${w} (${files.report})`);
  return {
    ...r,
    details: {
      rejection_samples: c.samples,
      rejection_kept: c.kept,
      non_reasoning: c.non_reasoning,
      non_reasoning_wanted: c.non_reasoning_wanted,
      non_reasoning_shortfall: Math.max(0, c.non_reasoning_wanted - c.non_reasoning),
      ...(warnings.length > 0 ? { warnings } : {}),
      ...r.details,
    },
  };
};
