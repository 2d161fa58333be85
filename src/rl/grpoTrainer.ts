/**
 * The GRPO training loop (DeepSeekMath/R1's Group Relative Policy Optimization, with TRL's options), the engine of
 * `aha grpo` and `aha demo`.
 *
 * One step: draw prompts_per_step questions; sample num_generations completions of each at the rollout
 * temperature; score them with the weighted rewards (a failing or hanging reward is reported and scored 0);
 * group-relative advantages; optionally drop all-equal groups and sample more (dynamic sampling); then
 * num_iterations passes over the rollout, each split into steps_per_generation mini-batches, each mini-batch one
 * AdamW update accumulated over token-budgeted micro-batches, with the clipped-surrogate loss of grpoLoss.ts
 * normalised over the whole mini-batch. pi_old is the sampling policy: its log-probs come from the sampler, so the
 * ratio is exactly 1 on the first (on-policy) update and the formula is kept as is. The KL term uses a frozen
 * reference copy (beta > 0 only), optionally refreshed to the current policy every ref_model_sync_steps (R1: 400).
 *
 * Determinism: the question order (a seeded shuffle per epoch) and every completion's sampling seed derive from
 * training.seed and the step, and the position in the data stream is saved in checkpoints, so a resumed run
 * continues exactly where the interrupted one stood.
 *
 * Run directory: metrics.jsonl (one StepMetrics per step), samples.jsonl, recipe.json (+ the recipe file's text),
 * checkpoint-N/ (HF model dir + trainer_state.json + optimizer.safetensors, written as checkpoint-N.tmp and renamed),
 * final/ (same content) at the end, reference-step-N.safetensors when the reference was refreshed.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { loadPretrained, savePretrained, type Pretrained } from '../model/pretrained.ts';
import { loadModelDir } from '../model/checkpoint.ts';
import { readSafetensorsInto, writeSafetensors } from '../model/safetensors.ts';
import { loadOptimizerState, saveOptimizerState } from '../train/optimizerState.ts';
import { renderChat } from '../model/chatTemplate.ts';
import { r1ZeroPrompt, r1ZeroShortPrompt } from '../data/r1ZeroTemplate.ts';
import { loadQuestionDataset } from '../data/questionDataset.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { Progress } from '../cli/progress.ts';
import { scoreCompletions } from '../rewards/combine.ts';
import type { Example, RewardErrorEvent } from '../rewards/types.ts';
import { dynamicSamplingFilter, groupAdvantages } from './advantages.ts';
import { grpoLoss, grpoNormalizer } from './grpoLoss.ts';
import { toGrpoLossOptions } from './grpoOptions.ts';
import { parseRecipe, recipePath, recipeToJson, type Recipe, type RecipeInput } from './recipe.ts';
import { buildRewards, type ResolvedReward } from './rewardRegistry.ts';
import {
  buildTrainSequence, completionSeed, packMicroBatches, sampleCompletions, splitGroups, type Completion, type TrainSequence,
} from './rollout.ts';
import {
  formatStepSummary, lengthMetrics, meanStd, reflectionMetrics, shareOfOnes, type StepMetrics,
} from './metrics.ts';

/** Options of {@link grpoTrain}. */
export interface GrpoTrainOptions {
  /** Run directory; overrides recipe.output_dir. With neither, nothing is written (in-memory run). */
  outDir?: string;
  /** Continue from the latest checkpoint in the run directory. */
  resume?: boolean;
  /** Called after every step with its metrics. */
  onStep?: (m: StepMetrics) => void | Promise<void>;
  /**
   * Stops the run: a step whose rollout is under way when it fires is abandoned (no update), one that is learning
   * finishes; then a checkpoint of the last finished step is written and the result says `interrupted`.
   */
  signal?: AbortSignal;
  /** Show a progress bar on stderr. */
  progress?: boolean;
  /** Where notices and reward errors go, one line each (default stderr). */
  log?: (line: string) => void;
  /** An already loaded model (and its tokenizer) instead of loading recipe.model. */
  model?: Pretrained;
  /** The recipe file's text, copied into the run directory next to recipe.json. */
  recipeText?: string;
}

/** What {@link grpoTrain} returns. */
export interface GrpoTrainResult {
  /** The last finished step. */
  step: number;
  interrupted: boolean;
  /** Metrics of the last finished step (undefined when no step ran). */
  metrics?: StepMetrics;
  /** Metrics of every step run by this call. */
  history: StepMetrics[];
  outDir?: string;
  /** The last checkpoint written (final/ after a complete run). */
  checkpoint?: string;
  model: Model;
}

/** trainer_state.json of a checkpoint. */
export interface TrainerState {
  global_step: number;
  optimizer_step: number;
  /** Prompts drawn from the data stream so far (its position). */
  prompts_consumed: number;
  seed: number;
  /** Step at which the reference was last replaced by the policy (0: the base model). */
  ref_sync_step: number;
  num_examples: number;
  max_steps: number;
  last_metrics?: StepMetrics;
}

interface PreparedExample {
  example: Example;
  promptText: string;
  promptIds: number[];
}

/** Dataset order: a seeded permutation per epoch (or file order), so position n always maps to the same row. */
class PromptStream {
  private epoch = -1;
  private order: number[] = [];
  constructor(private readonly n: number, private readonly seed: number, private readonly shuffle: boolean) {}
  at(position: number): number {
    const e = Math.floor(position / this.n);
    if (e !== this.epoch) {
      this.epoch = e;
      this.order = Array.from({ length: this.n }, (_, i) => i);
      if (this.shuffle) new Rng(fnv1a32(`grpo-epoch:${this.seed}:${e}`)).shuffle(this.order);
    }
    return this.order[position % this.n];
  }
}

/** Learning rate of a (1-based) step: linear warmup, then constant, linear or cosine decay to 0 at max_steps. */
export function learningRateAt(t: Recipe['training'], step: number): number {
  const warmup = t.warmup_steps > 0 ? t.warmup_steps : Math.ceil(t.warmup_ratio * t.max_steps);
  const s = step - 1;
  if (s < warmup) return (t.learning_rate * (s + 1)) / warmup;
  if (t.lr_scheduler_type === 'constant') return t.learning_rate;
  const progress = t.max_steps > warmup ? (s - warmup) / (t.max_steps - warmup) : 0;
  if (t.lr_scheduler_type === 'linear') return t.learning_rate * Math.max(0, 1 - progress);
  return t.learning_rate * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

function renderPrompt(recipe: Recipe, example: Example, modelDir: string): { text: string; chat: boolean } {
  const question = String(example.question);
  if (typeof recipe.prompt === 'function') {
    const text = recipe.prompt(example);
    if (typeof text !== 'string') throw new AhaError(`prompt function returned ${typeof text} for question "${question.slice(0, 40)}"`);
    return { text, chat: false };
  }
  switch (recipe.prompt) {
    case 'r1-zero':
      return { text: r1ZeroPrompt(question), chat: false };
    case 'r1-zero-short':
      return { text: r1ZeroShortPrompt(question), chat: false };
    case 'chat': {
      const messages = recipe.system_prompt !== undefined ? [{ role: 'system', content: recipe.system_prompt }] : [];
      messages.push({ role: 'user', content: question });
      return { text: renderChat(modelDir, messages, { addGenerationPrompt: true }), chat: true };
    }
    default:
      return { text: recipe.prompt.split('{question}').join(question), chat: false };
  }
}

async function loadExamples(recipe: Recipe): Promise<Example[]> {
  if (Array.isArray(recipe.dataset)) return recipe.dataset as Example[];
  const d = recipe.dataset as Exclude<Recipe['dataset'], readonly Example[]>;
  const rows = await loadQuestionDataset({
    path: recipePath(recipe, d.path),
    questionField: d.question_field,
    answerField: d.answer_field,
    answerExtraction: d.answer_extraction,
    split: d.split,
    limit: d.limit,
  });
  return rows.map((r) => ({ ...r.fields, question: r.question, answer: r.answer ?? undefined, source: r.source }));
}

function checkpointStep(name: string): number | null {
  const m = /^checkpoint-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The most advanced checkpoint of a run directory (checkpoint-N or final/), or null. */
export function latestCheckpoint(outDir: string): { dir: string; state: TrainerState } | null {
  if (!existsSync(outDir)) return null;
  let best: { dir: string; state: TrainerState } | null = null;
  for (const name of readdirSync(outDir)) {
    if (name !== 'final' && checkpointStep(name) === null) continue;
    const dir = join(outDir, name);
    const statePath = join(dir, 'trainer_state.json');
    if (!statSync(dir).isDirectory() || !existsSync(statePath)) continue;
    let state: TrainerState;
    try {
      state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
    } catch (e) {
      throw new AhaError(`${statePath}: unreadable (${(e as Error).message})`);
    }
    if (!best || state.global_step > best.state.global_step) best = { dir, state };
  }
  return best;
}

function truncateJsonl(path: string, maxStep: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => {
      if (l.trim() === '') return false;
      try {
        return (JSON.parse(l) as { step?: number }).step! <= maxStep;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, kept.map((l) => l + '\n').join(''));
}

/**
 * Runs GRPO as the recipe says. `recipe` may be a parsed Recipe or a RecipeInput object; in code, the dataset may
 * be an array of examples and a reward may carry its function (`fn`) or, for accuracy, a `check` (a Task's check),
 * so no file is needed.
 */
export async function grpoTrain(recipeIn: Recipe | RecipeInput, opts: GrpoTrainOptions = {}): Promise<GrpoTrainResult> {
  const recipe: Recipe = 'baseDir' in recipeIn ? (recipeIn as Recipe) : parseRecipe(recipeIn, 'recipe');
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { grpo, training: t } = recipe;
  const outDir = opts.outDir ?? (recipe.output_dir !== undefined ? recipePath(recipe, recipe.output_dir) : undefined);
  const G = grpo.num_generations;
  const lossOpts = toGrpoLossOptions(grpo);

  // Everything that can fail on bad input fails here, before any sampling.
  const rewards: ResolvedReward[] = await buildRewards(recipe.rewards, { grpo, baseDir: recipe.baseDir });
  const examples = await loadExamples(recipe);
  let resumeFrom: { dir: string; state: TrainerState } | null = null;
  if (outDir !== undefined) {
    resumeFrom = latestCheckpoint(outDir);
    if (opts.resume && !resumeFrom) throw new AhaError(`${outDir}: no checkpoint to resume from`);
    if (!opts.resume && resumeFrom) {
      throw new AhaError(`${outDir}: already holds a run (${resumeFrom.dir}); pass --resume to continue it or choose another --out`);
    }
  } else if (opts.resume) {
    throw new AhaError('resume needs a run directory (--out or output_dir)');
  }
  const pre: Pretrained = opts.model ?? loadPretrained(recipePath(recipe, recipe.model), {
    requireTokenizer: true,
    memory: { training: true, reference: grpo.beta > 0, batchTokens: t.micro_batch_tokens },
  });
  const tokenizer = pre.tokenizer;
  if (!tokenizer) throw new AhaError(`${pre.dir}: the model has no tokenizer.json`);
  const model = pre.model;
  const stopTokenIds = tokenizer.eosTokenIds.length > 0 ? [...tokenizer.eosTokenIds] : ([] as number[]).concat(pre.hf.eosTokenId ?? []);
  if (stopTokenIds.length === 0) log('grpo: warning: the tokenizer has no eos token; every completion runs to max_completion_length');

  const maxPos = model.config.maxPositionEmbeddings;
  const maxNew = grpo.max_completion_length;
  const prepared: PreparedExample[] = [];
  let tooLong = 0;
  for (const ex of examples) {
    const { text, chat } = renderPrompt(recipe, ex, pre.dir);
    const ids = tokenizer.encode(text, { addSpecialTokens: !chat });
    if (ids.length === 0) throw new AhaError(`prompt of question "${String(ex.question).slice(0, 40)}" encodes to no tokens`);
    if (ids.length + maxNew > maxPos) {
      tooLong++;
      continue;
    }
    prepared.push({ example: ex, promptText: text, promptIds: ids });
  }
  if (prepared.length === 0) {
    throw new AhaError(`every prompt is too long: prompt + max_completion_length ${maxNew} exceeds the model's ${maxPos} positions`);
  }
  if (tooLong > 0) log(`grpo: skipped ${tooLong} of ${examples.length} questions whose prompt + ${maxNew} completion tokens exceed ${maxPos} positions`);

  // State, fresh or from the checkpoint.
  let state: TrainerState = {
    global_step: 0, optimizer_step: 0, prompts_consumed: 0, seed: t.seed, ref_sync_step: 0,
    num_examples: prepared.length, max_steps: t.max_steps,
  };
  if (grpo.beta > 0) model.snapshotReference();
  else if (model.hasReference) model.dropReference();
  if (resumeFrom && outDir !== undefined) {
    const s = resumeFrom.state;
    if (s.seed !== t.seed) log(`grpo: warning: the recipe's seed ${t.seed} differs from the checkpoint's ${s.seed}; the checkpoint's is used`);
    if (s.num_examples !== prepared.length) log(`grpo: warning: the dataset has ${prepared.length} usable questions, the checkpoint saw ${s.num_examples}: the question order changes`);
    if (grpo.beta > 0 && s.ref_sync_step > 0) {
      const refFile = join(outDir, `reference-step-${s.ref_sync_step}.safetensors`);
      if (!existsSync(refFile)) throw new AhaError(`${refFile}: the reference weights of this run are missing`);
      readSafetensorsInto([refFile], model.layout, model.store('params'), refFile);
      model.snapshotReference();
    }
    const md = loadModelDir(resumeFrom.dir);
    if (md.config.vocabSize !== model.config.vocabSize || md.layout.length !== model.layout.length) {
      throw new AhaError(`${resumeFrom.dir}: the checkpoint's model differs from ${recipe.model}`);
    }
    md.loadParams(model.store('params'));
    loadOptimizerState(join(resumeFrom.dir, 'optimizer.safetensors'), model, s.optimizer_step);
    state = { ...s, max_steps: t.max_steps, num_examples: prepared.length };
    truncateJsonl(join(outDir, 'metrics.jsonl'), s.global_step);
    truncateJsonl(join(outDir, 'samples.jsonl'), s.global_step);
    log(`grpo: resuming ${outDir} from step ${s.global_step} (${resumeFrom.dir})`);
  }
  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true });
    if (!resumeFrom) {
      // Lines a crashed earlier attempt may have left (there is no checkpoint to go with them).
      truncateJsonl(join(outDir, 'metrics.jsonl'), 0);
      truncateJsonl(join(outDir, 'samples.jsonl'), 0);
    }
    writeFileAtomic(join(outDir, 'recipe.json'), recipeToJson(recipe));
    if (opts.recipeText !== undefined) writeFileAtomic(join(outDir, 'recipe.yaml'), opts.recipeText);
  }

  const stream = new PromptStream(prepared.length, state.seed, t.shuffle);
  const history: StepMetrics[] = [];
  let lastSaved: string | undefined = resumeFrom?.dir;
  let lastSavedStep = state.global_step;
  const tokenizerDir = existsSync(join(pre.dir, 'tokenizer.json')) ? pre.dir : undefined;

  const saveCheckpoint = (name: string): string => {
    const dir = join(outDir!, name);
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    const last = history[history.length - 1];
    savePretrained({ model, hf: pre.hf }, tmp, {
      tokenizerFrom: tokenizerDir,
      extraFiles: { 'trainer_state.json': JSON.stringify({ ...state, last_metrics: last }, null, 2) + '\n' },
    });
    saveOptimizerState(join(tmp, 'optimizer.safetensors'), model);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    lastSaved = dir;
    lastSavedStep = state.global_step;
    if (name !== 'final' && t.save_total_limit !== null) {
      const all = readdirSync(outDir!).map((n) => ({ n, s: checkpointStep(n) })).filter((x) => x.s !== null).sort((a, b) => a.s! - b.s!);
      for (const old of all.slice(0, Math.max(0, all.length - t.save_total_limit))) rmSync(join(outDir!, old.n), { recursive: true, force: true });
    }
    return dir;
  };

  const progress = opts.progress ? new Progress('grpo', t.max_steps, 'step') : undefined;
  progress?.update(state.global_step);
  let interrupted = false;
  const aborted = () => opts.signal?.aborted === true;

  try {
    while (state.global_step < t.max_steps) {
      if (aborted()) {
        interrupted = true;
        break;
      }
      const step = state.global_step + 1;
      const tStep = performance.now();
      let sampleSec = 0, scoreSec = 0;

      // ---- rollout: sample, decode, score (more batches under dynamic sampling) ----
      interface Group { prepared: PreparedExample; completions: Completion[]; texts: string[]; totals: number[]; perReward: number[][] }
      const sampledGroups: Group[] = [];
      const usedGroups: Group[] = [];
      let zeroVar = 0;
      let batches = 0;
      let errorCount = 0;
      let cursor = state.prompts_consumed;
      const maxBatches = t.dynamic_sampling ? t.dynamic_sampling_max_batches : 1;
      let generatedTokens = 0;
      for (let b = 0; b < maxBatches && usedGroups.length < t.prompts_per_step; b++) {
        if (aborted()) break;
        batches++;
        const P = t.prompts_per_step;
        const batch = Array.from({ length: P }, (_, k) => prepared[stream.at(cursor + k)]);
        cursor += P;
        const seeds: number[] = [];
        for (let g = 0; g < P; g++) for (let j = 0; j < G; j++) seeds.push(completionSeed(state.seed, step, b, g, j));
        const t0 = performance.now();
        const completions = await sampleCompletions(model, batch.map((p) => p.promptIds), {
          numGenerations: G, maxNewTokens: maxNew, temperature: grpo.temperature, topP: t.top_p, topK: t.top_k,
          stopTokenIds, seeds, batchSize: t.generation_batch_size,
        });
        sampleSec += (performance.now() - t0) / 1000;
        const t1 = performance.now();
        const texts = completions.map((c) => {
          const ids = c.finishReason === 'stop' ? c.completionIds.slice(0, -1) : c.completionIds;
          return tokenizer.decode(ids);
        });
        for (const c of completions) generatedTokens += c.completionIds.length;
        const items = completions.map((c, i) => ({
          completion: texts[i], example: batch[c.group].example, prompt: batch[c.group].promptText, completionIds: c.completionIds,
        }));
        // The first two failures of each reward are logged in full, then one summary line per batch.
        const failures = new Map<string, number>();
        let hidden = 0;
        const onError = (e: RewardErrorEvent) => {
          errorCount++;
          const n = (failures.get(e.rewardName) ?? 0) + 1;
          failures.set(e.rewardName, n);
          if (n > 2) {
            hidden++;
            return;
          }
          const ex = items[e.exampleIndex];
          const q = String(ex.example.question ?? '').replace(/\s+/g, ' ').slice(0, 60);
          const what = e.kind === 'timeout' ? 'timed out' : e.kind === 'throw' ? 'threw' : 'returned a non-number';
          log(`grpo: step ${step}: reward '${e.rewardName}' ${what} on completion ${e.exampleIndex} (question "${q}", completion "${texts[e.exampleIndex].replace(/\s+/g, ' ').slice(0, 40)}"): ${e.message}`);
        };
        const scored = await scoreCompletions(rewards, items, { timeoutMs: recipe.reward_timeout_ms, onError });
        if (hidden > 0) {
          const counts = [...failures].map(([name, n]) => `${name}: ${n}`).join(', ');
          log(`grpo: step ${step}: ... and ${hidden} more reward errors (of ${items.length} completions: ${counts})`);
        }
        scoreSec += (performance.now() - t1) / 1000;
        const filter = dynamicSamplingFilter(scored.total, G);
        for (let g = 0; g < P; g++) {
          const sl = <T,>(xs: readonly T[]): T[] => xs.slice(g * G, (g + 1) * G);
          const group: Group = {
            prepared: batch[g],
            completions: completions.slice(g * G, (g + 1) * G),
            texts: sl(texts),
            totals: sl(scored.total),
            perReward: scored.perReward.map((r) => sl(r.scores)),
          };
          sampledGroups.push(group);
          if (filter.allEqual[g]) zeroVar++;
          if (!t.dynamic_sampling || !filter.allEqual[g]) usedGroups.push(group);
        }
      }
      if (aborted()) {
        // Abandoned before any update: the step is redone on resume with the same prompts and seeds.
        interrupted = true;
        break;
      }
      state.prompts_consumed = cursor;
      const used = usedGroups.slice(0, t.prompts_per_step);

      // ---- policy update ----
      const t2 = performance.now();
      const lr = learningRateAt(t, step);
      let updates = 0, gradNormSum = 0;
      let clipLow = 0, clipHigh = 0, clipTokens = 0;
      let klSum = 0, klTokens = 0, entSum = 0, entTokens = 0;
      let learnTokens = 0;
      if (used.length > 0) {
        const adv = groupAdvantages(used.flatMap((g) => g.totals), G, { scaleRewards: grpo.scale_rewards });
        const seqs: TrainSequence[] = [];
        for (const g of used) {
          for (const c of g.completions) seqs.push(buildTrainSequence(c, grpo.mask_truncated_completions && c.finishReason === 'length'));
        }
        const refLogp: (Float32Array | undefined)[] = new Array(seqs.length);
        const miniBatches = splitGroups(used.length, t.steps_per_generation).map((gs) => gs.flatMap((g) => Array.from({ length: G }, (_, j) => g * G + j)));
        const offPolicy = grpo.num_iterations > 1 || miniBatches.length > 1;
        for (let it = 0; it < grpo.num_iterations; it++) {
          for (const mb of miniBatches) {
            model.zeroGrad();
            // TRL counts 'dapo' tokens before truncation masking, 'bnpo' after (see grpoLoss.ts).
            const normalizer = grpoNormalizer(grpo.loss_type, {
              numSequences: mb.length,
              numTokens: mb.reduce((a, i) => a + (grpo.loss_type === 'dapo' ? seqs[i].completionLength : seqs[i].mask.reduce((x, y) => x + y, 0)), 0),
              maxCompletionLength: maxNew,
            });
            for (const micro of packMicroBatches(mb.map((i) => seqs[i].tokens.length), t.micro_batch_tokens)) {
              const idx = micro.map((k) => mb[k]);
              const tokens = idx.map((i) => seqs[i].tokens);
              if (grpo.beta > 0 && refLogp[idx[0]] === undefined) {
                // Before the train forward: any forward discards the activations backward needs.
                const r = await model.forward(tokens, { reference: true });
                idx.forEach((i, k) => (refLogp[i] = Float32Array.from(r.logprobs[k])));
              }
              const f = await model.forward(tokens, { train: true, entropy: it === 0 });
              const loss = grpoLoss({
                logp: f.logprobs,
                oldLogp: offPolicy ? idx.map((i) => seqs[i].oldLogp) : f.logprobs,
                refLogp: grpo.beta > 0 ? idx.map((i) => refLogp[i]!) : undefined,
                advantages: idx.map((i) => adv.advantages[i]),
                mask: idx.map((i) => seqs[i].mask),
              }, { ...lossOpts, normalizer });
              await model.backward(loss.dLogp);
              learnTokens += tokens.reduce((a, s) => a + s.length, 0);
              clipLow += loss.stats.lowClipped;
              clipHigh += loss.stats.highClipped;
              clipTokens += loss.stats.numTokens;
              if (it === 0) {
                klSum += loss.stats.klSum;
                klTokens += loss.stats.numTokens;
                idx.forEach((i, k) => {
                  const m = seqs[i].mask, e = f.entropy![k];
                  for (let p = 0; p < m.length; p++) if (m[p] === 1) { entSum += e[p]; entTokens++; }
                });
              }
            }
            const r = await model.step({
              lr, weightDecay: t.weight_decay, maxGradNorm: t.max_grad_norm, beta1: t.adam_beta1, beta2: t.adam_beta2,
            });
            if (r.skipped) log(`grpo: step ${step}: gradient not finite (norm ${r.gradNorm}); update skipped`);
            else {
              updates++;
              gradNormSum += r.gradNorm;
            }
            state.optimizer_step = model.optimizerState().step;
          }
        }
      } else {
        log(`grpo: step ${step}: every group had equal rewards; no update`);
      }
      const learnSec = (performance.now() - t2) / 1000;
      state.global_step = step;

      if (grpo.beta > 0 && t.ref_model_sync_steps > 0 && step % t.ref_model_sync_steps === 0) {
        model.snapshotReference();
        state.ref_sync_step = step;
        if (outDir !== undefined) {
          writeSafetensors(join(outDir, `reference-step-${step}.safetensors`), model.layout.map((x) => ({
            name: x.name, shape: x.shape, data: model.tensorView(x),
          })));
        }
      }

      // ---- metrics ----
      const allCompletions = sampledGroups.flatMap((g) => g.completions);
      const allTexts = sampledGroups.flatMap((g) => g.texts);
      const rewardStats: StepMetrics['rewards'] = {};
      rewards.forEach((r, k) => (rewardStats[r.name] = meanStd(sampledGroups.flatMap((g) => g.perReward[k]))));
      const kindScores = (kind: string) => {
        const k = rewards.findIndex((r) => r.kind === kind);
        return k < 0 ? null : shareOfOnes(sampledGroups.flatMap((g) => g.perReward[k]));
      };
      const totalSec = (performance.now() - tStep) / 1000;
      const metrics: StepMetrics = {
        step,
        epoch: state.prompts_consumed / prepared.length,
        rewards: rewardStats,
        reward: meanStd(sampledGroups.flatMap((g) => g.totals)),
        accuracy: kindScores('accuracy'),
        format_rate: kindScores('format'),
        completion_length: lengthMetrics(allCompletions.map((c) => c.completionIds.length), allCompletions.map((c) => c.finishReason === 'length')),
        kl: grpo.beta > 0 ? (klTokens > 0 ? klSum / klTokens : 0) : null,
        entropy: entTokens > 0 ? entSum / entTokens : 0,
        clip_ratio: {
          low: clipTokens > 0 ? clipLow / clipTokens : 0,
          high: clipTokens > 0 ? clipHigh / clipTokens : 0,
          total: clipTokens > 0 ? (clipLow + clipHigh) / clipTokens : 0,
        },
        grad_norm: updates > 0 ? gradNormSum / updates : 0,
        learning_rate: lr,
        updates,
        zero_variance_groups: zeroVar,
        frac_reward_zero_std: sampledGroups.length > 0 ? zeroVar / sampledGroups.length : 0,
        groups_sampled: sampledGroups.length,
        groups_used: used.length,
        rollout_batches: batches,
        tokens_per_second: {
          sample: sampleSec > 0 ? generatedTokens / sampleSec : 0,
          learn: learnSec > 0 ? learnTokens / learnSec : 0,
        },
        time: { sample: sampleSec, score: scoreSec, learn: learnSec, total: totalSec },
        reflection: reflectionMetrics(allTexts),
        reward_errors: errorCount,
      };
      history.push(metrics);
      if (outDir !== undefined) {
        appendFileSync(join(outDir, 'metrics.jsonl'), JSON.stringify(metrics) + '\n');
        if (t.num_samples_logged > 0 && (step === 1 || (t.sample_log_steps > 0 && step % t.sample_log_steps === 0))) {
          const lines = sampledGroups.slice(0, t.num_samples_logged).map((g) => JSON.stringify({
            step,
            prompt: g.prepared.promptText,
            answer: g.prepared.example.answer ?? null,
            completion: g.texts[0],
            finish_reason: g.completions[0].finishReason,
            rewards: Object.fromEntries(rewards.map((r, k) => [r.name, g.perReward[k][0]])),
            total: g.totals[0],
          }) + '\n');
          appendFileSync(join(outDir, 'samples.jsonl'), lines.join(''));
        }
      }
      progress?.update(step, formatStepSummary(metrics));
      if (opts.onStep) await opts.onStep(metrics);
      if (outDir !== undefined && t.save_steps > 0 && step % t.save_steps === 0 && step < t.max_steps) saveCheckpoint(`checkpoint-${step}`);
    }
  } finally {
    progress?.stop();
  }

  if (outDir !== undefined) {
    if (interrupted) {
      if (state.global_step > lastSavedStep || !lastSaved) saveCheckpoint(`checkpoint-${state.global_step}`);
    } else {
      saveCheckpoint('final');
    }
  }
  return {
    step: state.global_step,
    interrupted,
    metrics: history[history.length - 1],
    history,
    outDir,
    checkpoint: lastSaved,
    model,
  };
}
