/** Stage 1 of `aha r1`, cold_start_sft: cold-start data (sampled, verified, rewritten, filtered), then SFT of the base. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AhaError } from '../../errors.ts';
import { buildColdStartData } from '../coldStart.ts';
import { pipelinePath } from '../pipelineRecipe.ts';
import { gatherSamples } from '../rejectionSampling.ts';
import { runSftStep } from '../sftStep.ts';
import { localGenerator, seededDraw, stageFilters, stageSampling, type StageRunner } from '../stage.ts';

/** Stage 1: the cold-start data (sampled, verified, rewritten, filtered) and SFT of the base model on it. */
export const runColdStartStage: StageRunner = async (ctx) => {
  const cfg = ctx.recipe.stages.cold_start_sft!;
  let data: string;
  let dataDetails: Record<string, unknown> = {};
  if (cfg.data !== undefined) {
    data = pipelinePath(ctx.recipe, cfg.data);
  } else {
    data = join(ctx.dir, 'data.jsonl');
    const reportPath = join(ctx.dir, 'data_report.json');
    if (!existsSync(reportPath)) {
      const sourceModel = cfg.source_model !== undefined ? pipelinePath(ctx.recipe, cfg.source_model) : ctx.baseModel;
      const problems = seededDraw(ctx.data.train, cfg.prompts, 'cold-start', ctx.recipe.seed);
      ctx.log(`cold_start_sft: sampling ${problems.length} prompts x ${cfg.samples_per_prompt} from ${sourceModel}`);
      const { generator, countTokens } = localGenerator(sourceModel, ctx.data.chat);
      const g = await gatherSamples({
        generator,
        problems,
        samplesPath: join(ctx.dir, 'samples.jsonl'),
        signal: ctx.signal,
        log: (l) => ctx.log(`cold_start_sft: ${l}`),
        sampling: stageSampling(ctx, cfg),
      });
      if (g.error) throw g.error;
      const r = await buildColdStartData({
        problems,
        samples: g.samples,
        verify: ctx.data.verify,
        filters: stageFilters(ctx, countTokens),
        maxPerPrompt: cfg.max_per_prompt,
        summaryTemplate: cfg.summary_template ?? ctx.recipe.summary_template,
        strategies: ctx.recipe.answer_strategies,
        source: `samples of ${sourceModel}`,
        out: data,
        reportPath,
      });
      ctx.log(
        `cold_start_sft: ${r.counts.kept} readable correct samples of ${r.counts.samples} (incorrect ${r.counts.incorrect}, dropped ${JSON.stringify(r.counts.dropped)}, duplicates ${r.counts.duplicates}, over cap ${r.counts.over_cap})`,
      );
    }
    const rep = JSON.parse(readFileSync(reportPath, 'utf8')) as { counts: { kept: number; samples: number } };
    dataDetails = { cold_start_samples: rep.counts.samples, cold_start_kept: rep.counts.kept };
    if (rep.counts.kept === 0) {
      throw new AhaError(
        `cold_start_sft: no sample of ${rep.counts.samples} was correct and readable (see ${reportPath}): sample more prompts, raise the temperature, or loosen the filters`,
      );
    }
  }
  const r = await runSftStep(ctx, {
    model: ctx.inputModel,
    data,
    sft: cfg.sft,
    runDir: join(ctx.dir, 'sft'),
    maxMinutes: cfg.max_minutes,
  });
  return { ...r, details: { ...dataDetails, ...r.details } };
};
