import { writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import type { ProgressSink } from '../train/progress.ts';
import { join } from 'node:path';
import { arithmeticTask } from '../data/tasks/arithmetic.ts';
import { buildPretrainCorpus, corpusToJsonl, DEMO_CHAR_ALPHABET } from '../data/tasks/corpus.ts';
import { initModel } from '../model/initModel.ts';
import { loadPretrained, savePretrained } from '../model/pretrained.ts';
import { sftTrain } from '../sft/trainer.ts';
import { resolveSftOptions } from '../sft/sftConfig.ts';

/** The demo's base model shape: Qwen2 layout, 2.7M parameters, character vocabulary. */
export const DEMO_BASE_CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 192,
  intermediate_size: 576,
  num_hidden_layers: 6,
  num_attention_heads: 6,
  num_key_value_heads: 3,
  max_position_embeddings: 512,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  hidden_act: 'silu',
};

/**
 * The corpus mix of the demo's base. Worked, self-correcting and self-checking solutions are common in plain text
 * (60%), so the skill is learned well; but in the <think>/<answer> format 75% of answers are given at a glance and
 * are often wrong on 3-4 step chains. Sampled at temperature 0.6 the base mostly answers directly; reasoning inside
 * the tags is there to be found by sampling at temperature 1. That gap is what RL closes.
 */
export const DEMO_BASE_MIX = { r1Modes: { direct: 0.75, worked: 0.15, reflect: 0.05, verify: 0.05 } };

/** Options of the base-model build (the command `aha demo --rebuild-base` runs). */
export interface DemoBaseOptions {
  /** Where to write the finished base model (Hugging Face layout, BF16 weights). */
  out: string;
  /** Scratch directory (corpus, SFT run dir). */
  workDir: string;
  corpusSize?: number;
  maxSteps?: number;
  seed?: number;
  progress?: ProgressSink;
  log?: (line: string) => void;
}

/**
 * Builds the demo's base model the way DeepSeek-V3-Base got its latent ability: pre-training (here `aha sft` on
 * plain text) over a corpus that mixes direct answers, worked solutions, self-corrections and checks, only some of
 * them in the <think>/<answer> format. RL later has to discover which behaviour pays.
 */
export async function buildDemoBase(o: DemoBaseOptions): Promise<string> {
  const log = o.log ?? (() => {});
  mkdirSync(o.workDir, { recursive: true });
  const initDir = join(o.workDir, 'init');
  initModel({
    config: writeConfig(o.workDir),
    tokenizer: 'chars',
    alphabet: DEMO_CHAR_ALPHABET,
    out: initDir,
    seed: o.seed ?? 1,
    // The work directory is the demo's own: a rebuild starts from a fresh initialisation.
    overwrite: true,
  });
  const corpus = buildPretrainCorpus(arithmeticTask(), {
    seed: o.seed ?? 0,
    size: o.corpusSize ?? 30000,
    mix: DEMO_BASE_MIX,
  });
  const dataPath = join(o.workDir, 'corpus.jsonl');
  writeFileSync(dataPath, corpusToJsonl(corpus));
  log(`demo base: corpus of ${corpus.length} documents written to ${dataPath}`);
  const sftOut = join(o.workDir, 'sft');
  if (existsSync(sftOut)) rmSync(sftOut, { recursive: true, force: true });
  const opts = resolveSftOptions({
    cli: {
      model: initDir,
      data: dataPath,
      out: sftOut,
      eval_fraction: 0.02,
      per_device_train_batch_size: 64,
      max_steps: o.maxSteps ?? 1600,
      learning_rate: 1.5e-3,
      lr_scheduler_type: 'cosine',
      min_lr_ratio: 0.1,
      warmup_steps: 30,
      weight_decay: 0.01,
      adam_beta2: 0.99,
      max_grad_norm: 1,
      seed: o.seed ?? 0,
      logging_steps: 25,
      eval_steps: 200,
      save_steps: 200,
      save_total_limit: 1,
    },
  });
  const r = await sftTrain(opts, { progress: o.progress, log });
  if (!r.finalDir) throw new Error('demo base: pre-training did not complete');
  const p = loadPretrained(r.finalDir);
  savePretrained(p, o.out, { tokenizerFrom: r.finalDir, dtype: 'BF16' });
  log(`demo base: ${o.out} (final train loss ${r.lastLoss?.toFixed(3)}, held-out loss ${r.evalLoss?.toFixed(3)})`);
  return o.out;
}

function writeConfig(dir: string): string {
  const path = join(dir, 'base-config.json');
  writeFileSync(path, JSON.stringify(DEMO_BASE_CONFIG, null, 2));
  return path;
}
