/**
 * Hugging Face sequence-classification checkpoints used as reward models (`Qwen2ForSequenceClassification`,
 * `LlamaForSequenceClassification`, ...): the decoder's tensors (`model.*`) plus a `score.weight` [num_labels,
 * hidden] head and no lm_head. The engine runs the decoder as a tied-embedding causal LM (the layout then has no
 * lm_head tensor, and the vocabulary head is never run: `Model.lastHidden`); the score head is read here and applied
 * in TypeScript, in float64 over the engine's float32 hidden state.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Model, type WeightsDtype } from '../engine/model.ts';
import { assertMemoryFits } from '../engine/memoryPlan.ts';
import type { EngineConfig } from '../engine/types.ts';
import { AhaError } from '../errors.ts';
import { loadModelDir, type ModelDir } from './checkpoint.ts';
import { parseHfConfig, SUPPORTED_ARCHITECTURES, type HfModelConfig } from './hfConfig.ts';
import { resolveWeightsDtype } from './pretrained.ts';
import { readSafetensorsTensor } from './safetensors.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';

/** The classifier classes whose decoder the engine runs: each causal-LM architecture's `*ForSequenceClassification`. */
export const CLASSIFIER_ARCHITECTURES = SUPPORTED_ARCHITECTURES.map((a) =>
  a.replace(/ForCausalLM$/, 'ForSequenceClassification'),
);

/** The tensor a sequence classifier adds to its decoder. */
export const SCORE_TENSOR = 'score.weight';

/**
 * Configs of a sequence classifier's config.json: its decoder as the engine's causal LM (tied embeddings, so the
 * layout holds no lm_head), and `num_labels`, which must be 1 (a scalar reward). transformers derives num_labels
 * from `id2label` (2 when neither is given); an explicit `num_labels` wins.
 */
export function parseClassifierConfig(
  json: unknown,
  source: string,
): { engine: EngineConfig; hf: HfModelConfig; numLabels: number } {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new AhaError(`${source}: expected a JSON object`);
  const j = json as Record<string, unknown>;
  const archs = j.architectures;
  if (!Array.isArray(archs) || archs.length !== 1 || !CLASSIFIER_ARCHITECTURES.includes(archs[0] as string)) {
    throw new AhaError(
      `${source}: architectures ${JSON.stringify(archs ?? null)} is not a sequence classifier (supported: ${CLASSIFIER_ARCHITECTURES.join(', ')})`,
    );
  }
  let numLabels: number;
  if (j.num_labels !== undefined) numLabels = j.num_labels as number;
  else if (j.id2label !== undefined && j.id2label !== null && typeof j.id2label === 'object')
    numLabels = Object.keys(j.id2label).length;
  else numLabels = 2;
  if (numLabels !== 1) {
    throw new AhaError(
      `${source}: num_labels is ${JSON.stringify(numLabels)} (from ${j.num_labels !== undefined ? 'num_labels' : j.id2label ? 'id2label' : "transformers' default"}); a reward model needs num_labels 1`,
    );
  }
  const causal = (archs[0] as string).replace(/ForSequenceClassification$/, 'ForCausalLM');
  const { engine, hf } = parseHfConfig({ ...j, architectures: [causal], tie_word_embeddings: true }, source);
  return { engine, hf, numLabels };
}

/** A sequence classifier's directory, validated from config.json and the tensor headers; nothing read yet. */
export interface ClassifierDir {
  md: ModelDir;
  /** The score head [hiddenSize] (num_labels is 1). */
  score: Float64Array;
  /** config.json's pad_token_id: trailing pad tokens are not scored, as transformers finds the last non-pad token. */
  padTokenId: number | null;
}

/**
 * Opens a sequence-classification checkpoint: refuses, in one line, a config that is not a classifier or has
 * num_labels other than 1, and weights without `score.weight` or with a mis-shaped one.
 */
export function loadClassifierDir(dir: string): ClassifierDir {
  let numLabels = 0;
  const md = loadModelDir(dir, {
    parse: (json, path) => {
      const r = parseClassifierConfig(json, path);
      numLabels = r.numLabels;
      return r;
    },
    extra: [SCORE_TENSOR],
  });
  const t = readSafetensorsTensor(md.weightFiles, SCORE_TENSOR);
  if (!t) throw new AhaError(`${dir}: no ${SCORE_TENSOR} in the weights (not a sequence-classification checkpoint)`);
  const C = md.config.hiddenSize;
  if (t.shape.length !== 2 || t.shape[0] !== numLabels || t.shape[1] !== C) {
    throw new AhaError(`${dir}: ${SCORE_TENSOR} has shape [${t.shape.join(', ')}], expected [${numLabels}, ${C}]`);
  }
  const pad = md.hf.padTokenId;
  return { md, score: Float64Array.from(t.data), padTokenId: typeof pad === 'number' ? pad : null };
}

/** A reward model in the engine: its decoder (weights never trained), score head and tokenizer. */
export class RewardModel {
  constructor(
    readonly dir: string,
    readonly model: Model,
    /** The score head, float64. */
    readonly score: Float64Array,
    readonly padTokenId: number | null,
    readonly tokenizer?: Tokenizer,
  ) {}

  /**
   * One scalar per token sequence: the score head applied to the final-norm hidden state at the sequence's last
   * non-pad token (transformers' rule: trailing `pad_token_id` tokens are dropped; aha packs without padding, so
   * otherwise it is the sequence's last token). The dot product is taken in float64 over the float32 hidden state.
   */
  async scoreIds(seqs: readonly (readonly number[])[]): Promise<number[]> {
    const trimmed = seqs.map((s) => {
      let n = s.length;
      while (n > 1 && this.padTokenId !== null && s[n - 1] === this.padTokenId) n--;
      return s.slice(0, n);
    });
    const h = await this.model.lastHidden(trimmed);
    const C = this.score.length;
    return trimmed.map((_, i) => {
      let acc = 0;
      for (let c = 0; c < C; c++) acc += h[i * C + c] * this.score[c];
      return acc;
    });
  }
}

/**
 * Loads a reward model: weights kept as stored (bf16/f16 stay 16-bit: they are never trained) unless `weights`
 * says otherwise; checked against the machine's memory for `batchTokens` tokens per pass first.
 */
export function loadRewardModel(
  dir: string,
  opts: { weights?: WeightsDtype | 'auto'; batchTokens?: number } = {},
): RewardModel {
  if (!existsSync(dir)) throw new AhaError(`${dir}: reward model directory not found`);
  const c = loadClassifierDir(dir);
  const weights = resolveWeightsDtype(c.md, { weights: opts.weights ?? 'auto' });
  assertMemoryFits(c.md.config, { weights, batchTokens: opts.batchTokens }, dir);
  const model = new Model(c.md.config, { weights });
  if (weights === 'f32') c.md.loadParams(model.store('params'));
  else c.md.loadParams16(model.halfStore(), weights);
  const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? loadTokenizer(dir) : undefined;
  return new RewardModel(dir, model, c.score, c.padTokenId, tokenizer);
}
