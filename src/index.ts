/**
 * aha as a library: `import { grpoTrain, verifyAnswer, passAtK } from 'aha'`. The same functions the `aha` command
 * runs, named here one by one so that this list is the public surface (everything else under src/ may change).
 * Bad input throws {@link AhaError} with a one-line message, as at the command line.
 */

export { AhaError } from './errors.ts';

// Training: GRPO from a recipe (a file, or the object a recipe file holds), SFT, DeepSeek-R1's pipeline, distillation.
export { grpoTrain, type GrpoTrainOptions, type GrpoTrainResult } from './rl/grpoTrainer.ts';
export { loadRecipe, parseRecipe, type Recipe, type RecipeInput, type RewardSpec } from './rl/recipe.ts';
export { sftTrain, type SftHooks, type SftResult } from './sft/trainer.ts';
export { resolveSftOptions, type SftOptions, type SftOptionsInput } from './sft/sftConfig.ts';
export { runR1Pipeline, type PipelineOptions, type PipelineResult } from './r1/pipeline.ts';
export {
  loadPipelineRecipe,
  parsePipelineRecipe,
  type PipelineRecipe,
  type PipelineRecipeInput,
} from './r1/pipelineRecipe.ts';
export { runDistill, type DistillOptions, type DistillReport } from './r1/distill.ts';
export type { ProgressEvent, ProgressSink, WarningEvent } from './train/progress.ts';

// Rewards: the contract a reward function meets, and the built-in rewards.
export type { Example, NamedReward, RewardContext, RewardFn } from './rewards/types.ts';
export { accuracyReward, type AccuracyOptions } from './rewards/accuracy.ts';
export { extractTaggedAnswer, formatReward, hasValidFormat, type FormatRewardOptions } from './rewards/format.ts';
export { lengthReward, overlongPenalty, type LengthRewardOptions, type OverlongOptions } from './rewards/length.ts';
export { languageConsistencyReward, type LanguageRewardOptions } from './rewards/languageConsistency.ts';
export { codeReward, type CodeRewardOptions } from './rewards/code.ts';
export { scoreCompletions, type ScoreOptions, type ScoreResult } from './rewards/combine.ts';

// Verifying answers: math equivalence and answer extraction.
export { verifyAnswer, type VerifyAnswerOptions, type VerifyAnswerResult } from './verify/verify.ts';
export { mathEqual, type MathEqualOptions, type MathEqualResult } from './verify/mathEquivalence.ts';
export { extractAnswer, readAnswer, type AnswerStrategy } from './verify/extractAnswer.ts';

// Evaluation: DeepSeek-R1's protocol on a benchmark, with samples from the local engine or an OpenAI-compatible server.
export { evaluate, type EvaluateOptions, type EvaluateResult, type Metrics } from './eval/evaluate.ts';
export { passAt1Mean, passAtK } from './eval/passAtK.ts';
export { majorityVote, type MajorityVote } from './eval/majorityVote.ts';
export { runEval, type EvalRunOptions, type EvalRunSummary } from './eval/evalRun.ts';
export { BENCHMARKS, loadBenchmark, type Benchmark, type BenchmarkExample } from './eval/benchmarks.ts';
export {
  LocalEngineGenerator,
  OpenAiGenerator,
  probeServer,
  type Generation,
  type GenerateOptions,
  type Generator,
} from './eval/generators.ts';

// Models: Hugging Face model directories in the native engine, tokenizers, chat templates.
export { loadPretrained, savePretrained, type Pretrained } from './model/pretrained.ts';
export { loadTokenizer, type Tokenizer } from './model/tokenizer.ts';
export { renderChat, type ChatMessage, type RenderChatOptions } from './model/chatTemplate.ts';
export { initModel, MODEL_PRESETS, type InitModelOptions } from './model/initModel.ts';
export {
  exportGguf,
  GGUF_EXPORT_DTYPES,
  type ExportGgufOptions,
  type ExportGgufResult,
  type GgufExportDtype,
} from './model/gguf/exportGguf.ts';
export { Model } from './engine/model.ts';
