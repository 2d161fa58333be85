/** The config.json fields of the GGUF tests' small models, one per llama.cpp architecture an export targets. */

/** The character tokenizer's alphabet in the GGUF tests: printable ASCII, newline, and two multi-byte characters. */
export const GGUF_CHAR_ALPHABET =
  Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('') + '\né€';

/** qwen2: q/k/v biases, tied embeddings; a character vocabulary (6 specials + the alphabet's 98 characters). */
export const QWEN2_CHAR_CONFIG: Record<string, unknown> = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 104,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/**
 * llama: grouped-query attention, attention biases (q/k/v and o), untied output, Llama 3 RoPE scaling with a short
 * original context so that most frequencies are changed within a few dozen positions; the Qwen3 vocabulary
 * (151669 tokens) in 151680 rows.
 */
export const LLAMA_CONFIG: Record<string, unknown> = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 151680,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 128,
  rope_theta: 10000,
  rope_scaling: {
    rope_type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 16,
  },
  rms_norm_eps: 1e-5,
  attention_bias: true,
  tie_word_embeddings: false,
};

/** qwen3: q/k norms, head_dim 16 with width 48 (q is 64 wide), tied embeddings, the Qwen3 vocabulary. */
export const QWEN3_CONFIG: Record<string, unknown> = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  vocab_size: 151680,
  hidden_size: 48,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 128,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
