/** The tests' small models: freshly initialised Qwen2-layout character models written as Hugging Face directories. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initModel } from '../../src/model/initModel.ts';
import type { Model } from '../../src/engine/model.ts';
import type { Tokenizer } from '../../src/model/tokenizer.ts';

/**
 * Writes `dir/<name>` (default `model`): 2 layers, width 32, 4 heads over 2 KV heads, tied embeddings, 64 positions,
 * unless `config` says otherwise (any config.json field); a character tokenizer over `alphabet`.
 */
export function tinyCharModel(
  dir: string,
  o: { alphabet: string; seed?: number; name?: string; config?: Record<string, unknown> },
): { dir: string; model: Model; tokenizer: Tokenizer } {
  mkdirSync(dir, { recursive: true });
  const shape = join(dir, 'shape.json');
  writeFileSync(
    shape,
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      ...o.config,
    }),
  );
  const out = join(dir, o.name ?? 'model');
  const { model, tokenizer } = initModel({
    config: shape,
    tokenizer: 'chars',
    alphabet: o.alphabet,
    out,
    seed: o.seed,
  });
  return { dir: out, model, tokenizer };
}
