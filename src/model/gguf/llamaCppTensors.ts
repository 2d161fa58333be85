/**
 * Hugging Face tensor names to llama.cpp's (its LLM_TENSOR_NAMES for the llama, qwen2 and qwen3 architectures), and
 * the one change of layout a conversion needs: llama.cpp's `llama` architecture rotates adjacent pairs (x[2i],
 * x[2i+1]) of each q/k head, while transformers' Llama rotates the halves (x[i], x[i + D/2]) ("rotate_half"), so the
 * rows of q_proj and k_proj (and their biases) are reordered per head. qwen2 and qwen3 use NEOX-style rotation in
 * llama.cpp, which is rotate_half, and keep the rows as they are.
 */

const LAYER_PARTS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** llama.cpp's name of an HF tensor of the engine's layout; throws (a bug) for any other name. */
export function llamaCppTensorName(hfName: string): string {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const part = m ? LAYER_PARTS[m[2]] : undefined;
  if (!m || part === undefined) throw new Error(`llamaCppTensorName: no llama.cpp name for ${hfName}`);
  return `blk.${m[1]}.${part}`;
}

/**
 * Rows of a q or k projection (weight [heads·D, in] or bias [heads·D], `rowLength` = in or 1) reordered for
 * llama.cpp's `llama` rotation: within each head, output row 2i + j is input row j·D/2 + i (j ∈ {0, 1}, i < D/2),
 * which is what llama.cpp's converter does with reshape(heads, 2, D/2, ...).swapaxes(1, 2). Returns a new array.
 */
export function permuteRopeRows(x: Float32Array, heads: number, headDim: number, rowLength: number): Float32Array {
  if (headDim % 2 !== 0) throw new Error(`permuteRopeRows: head dim ${headDim} is odd`);
  if (x.length !== heads * headDim * rowLength)
    throw new Error(`permuteRopeRows: ${x.length} values for ${heads} heads × ${headDim} rows × ${rowLength}`);
  const out = new Float32Array(x.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + j * half + i) * rowLength;
        const dst = (h * headDim + 2 * i + j) * rowLength;
        out.set(x.subarray(src, src + rowLength), dst);
      }
  return out;
}

/** The inverse of {@link permuteRopeRows}: llama.cpp's row order back to transformers'. */
export function unpermuteRopeRows(x: Float32Array, heads: number, headDim: number, rowLength: number): Float32Array {
  const out = new Float32Array(x.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + 2 * i + j) * rowLength;
        const dst = (h * headDim + j * half + i) * rowLength;
        out.set(x.subarray(src, src + rowLength), dst);
      }
  return out;
}
