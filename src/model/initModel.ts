import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Model } from '../engine/model.ts';
import { tensorChunks } from '../engine/types.ts';
import { parseHfConfig } from './hfConfig.ts';
import { prepareModelOutDir, saveModelDir, type SaveModelOptions } from './checkpoint.ts';
import {
  buildCharTokenizer,
  charTokenizerFromFiles,
  DEFAULT_CHAR_ALPHABET,
  DEFAULT_CHAR_SPECIALS,
  writeCharTokenizer,
} from './charTokenizer.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import { AhaError } from '../errors.ts';
import { Rng } from '../data/rng.ts';

/** Shapes for models trained from scratch (Qwen2 layout, tied embeddings). vocab_size comes from the tokenizer. */
export const MODEL_PRESETS: Record<string, Record<string, unknown>> = {
  tiny: {
    hidden_size: 128,
    intermediate_size: 384,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
  },
  small: {
    hidden_size: 256,
    intermediate_size: 768,
    num_hidden_layers: 6,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    max_position_embeddings: 1024,
  },
  'qwen2-27m': {
    hidden_size: 512,
    intermediate_size: 1536,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    max_position_embeddings: 2048,
  },
};

export interface InitModelOptions {
  /** A preset name (MODEL_PRESETS) or a config.json path. */
  config: string;
  /** 'chars' for a character-level tokenizer, or a directory holding tokenizer.json. */
  tokenizer: string;
  /** Characters of the char tokenizer (default: printable ASCII and newline). */
  alphabet?: string;
  /** Extra added tokens for the char tokenizer (e.g. <think>). */
  addedTokens?: string[];
  out: string;
  /** Replace the contents of a non-empty `out` (default: refuse it). */
  overwrite?: boolean;
  seed?: number;
  /**
   * Write a sequence-classification checkpoint (a reward model): the decoder of `config` (its architecture as
   * `*ForSequenceClassification`, num_labels 1) plus `score.weight` [1, hidden], and no lm_head.
   */
  rewardModel?: boolean;
}

/**
 * Writes a freshly initialised model in the Hugging Face layout, with its tokenizer. Weights follow transformers'
 * init: matrices ~ N(0, initializer_range), norm weights 1, biases 0.
 */
export function initModel(o: InitModelOptions): { model: Model; tokenizer: Tokenizer } {
  // Everything is checked before --out is touched: a refused config leaves no half-written directory behind.
  const charOptions = {
    alphabet: o.alphabet ?? DEFAULT_CHAR_ALPHABET,
    reasoningTags: true,
    addedTokens: o.addedTokens,
  };
  let tokenizer: Tokenizer;
  if (o.tokenizer === 'chars') {
    const { alphabet, ...rest } = charOptions;
    tokenizer = charTokenizerFromFiles(buildCharTokenizer(alphabet, DEFAULT_CHAR_SPECIALS, rest));
  } else {
    if (!existsSync(join(o.tokenizer, 'tokenizer.json')))
      throw new AhaError(`${o.tokenizer}: tokenizer.json not found`);
    tokenizer = loadTokenizer(o.tokenizer);
  }
  let raw: Record<string, unknown>;
  if (o.config in MODEL_PRESETS) {
    raw = {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      ...MODEL_PRESETS[o.config],
    };
  } else if (existsSync(o.config)) {
    try {
      raw = JSON.parse(readFileSync(o.config, 'utf8'));
    } catch (e) {
      throw new AhaError(`${o.config}: malformed JSON (${(e as Error).message})`);
    }
  } else {
    throw new AhaError(`--config ${o.config}: neither a preset (${Object.keys(MODEL_PRESETS).join(', ')}) nor a file`);
  }
  raw = {
    ...raw,
    vocab_size: vocabSizeFor(raw.vocab_size, tokenizer, o.config),
    eos_token_id: tokenizer.eosTokenIds[0] ?? null,
    bos_token_id: tokenizer.bosTokenId ?? null,
    pad_token_id: tokenizer.padTokenId ?? null,
  };
  // A classifier's decoder runs as a tied-embedding causal LM (no lm_head in the layout); config.json keeps the
  // given tie_word_embeddings.
  const tied = raw.tie_word_embeddings;
  const { engine, hf } = parseHfConfig(o.rewardModel ? { ...raw, tie_word_embeddings: true } : raw, o.config);
  prepareModelOutDir(o.out, o.overwrite === true);
  if (o.tokenizer === 'chars') writeCharTokenizer(o.out, charOptions);
  const model = new Model(engine);
  const rng = new Rng(o.seed ?? 0);
  const std = hf.initializerRange;
  const params = model.store('params');
  for (const t of model.layout) {
    for (const v of tensorChunks(params, t)) {
      if (t.name.endsWith('norm.weight')) v.fill(1);
      else if (t.name.endsWith('.bias')) v.fill(0);
      else for (let i = 0; i < v.length; i++) v[i] = gaussian(rng) * std;
    }
  }
  let classifier: Pick<SaveModelOptions, 'extraTensors' | 'configPatch'> = {};
  if (o.rewardModel) {
    const score = new Float32Array(engine.hiddenSize);
    for (let i = 0; i < score.length; i++) score[i] = gaussian(rng) * std;
    classifier = {
      extraTensors: [{ name: 'score.weight', shape: [1, engine.hiddenSize], data: [score] }],
      configPatch: {
        architectures: [hf.architecture.replace(/ForCausalLM$/, 'ForSequenceClassification')],
        tie_word_embeddings: tied === undefined ? false : tied,
        num_labels: 1,
        id2label: { 0: 'LABEL_0' },
        label2id: { LABEL_0: 0 },
      },
    };
  }
  saveModelDir(o.out, {
    config: engine,
    hf,
    params,
    tokenizerFrom: o.tokenizer === 'chars' ? undefined : o.tokenizer,
    ...classifier,
  });
  return { model, tokenizer };
}

/**
 * The model's vocab_size: the tokenizer's when the config gives none; the config's when it has a row for every id the
 * tokenizer can produce (a larger one is kept: models pad the embedding, e.g. Qwen2's 151936 for 151665 tokens);
 * anything else is refused rather than changed behind the user's back.
 */
function vocabSizeFor(given: unknown, tokenizer: Tokenizer, where: string): number {
  if (given === undefined || given === null) return tokenizer.vocabSize;
  if (!Number.isInteger(given) || (given as number) < 1)
    throw new AhaError(`${where}: vocab_size must be a positive integer (got ${JSON.stringify(given)})`);
  if ((given as number) < tokenizer.vocabSize)
    throw new AhaError(
      `${where}: vocab_size ${given} is smaller than the tokenizer's ${tokenizer.vocabSize} tokens (ids up to ` +
        `${tokenizer.vocabSize - 1} would have no embedding row): use at least ${tokenizer.vocabSize}, or leave ` +
        "vocab_size out to take the tokenizer's",
    );
  return given as number;
}

function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}
