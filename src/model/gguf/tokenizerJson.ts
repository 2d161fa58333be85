/** Reading tokenizer.json's untyped JSON: objects, and the leaves of its Sequence components. */

export type Json = Record<string, unknown>;

export const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The leaves of a normalizer, pre-tokenizer or decoder: the component itself, or the leaves of each part of a
 * (possibly nested) Sequence of them.
 */
export function leaves(node: unknown): Json[] {
  if (!isObj(node)) return [];
  const kids = node.normalizers ?? node.pretokenizers ?? node.decoders;
  return Array.isArray(kids) ? kids.flatMap(leaves) : [node];
}
