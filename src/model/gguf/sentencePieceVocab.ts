/**
 * The parts of a SentencePiece-style tokenizer.json (a byte-fallback BPE over '▁'-joined text, as Llama 2,
 * TinyLlama and Mistral 7B ship) that llama.cpp's SPM tokenizer (`tokenizer.ggml.model = "llama"`) needs beyond the
 * token strings: whether a '▁' is prepended to the text, and a score per token that makes llama.cpp merge in
 * tokenizer.json's merge order.
 *
 * llama.cpp's SPM tokenizer splits the text into characters and repeatedly joins the adjacent pair whose joined
 * string is a token of the highest score (ties: the leftmost pair); characters left unjoined that are not tokens
 * become their `<0xXX>` byte tokens. transformers' BPE joins the adjacent pair that is a merge of the lowest rank
 * (ties: the leftmost). So a token's score is minus the rank of the first merge that makes it
 * (`score(a+b) = -rank("a b")`): a lower rank is a higher score, and llama.cpp's choice at each step is
 * transformers'. A token no merge makes (single characters, bytes, special tokens) scores `-merges.length`, below
 * every merge-made token, so that llama.cpp joins into one only where no merge applies.
 *
 * That is exact when, as in tokenizer.json files converted from a SentencePiece model, every split of a token into
 * two tokens is a merge and the merges making one token are consecutive (transformers' converter lists all of
 * them, ordered by the token's SentencePiece score). {@link spmScores} counts the tokens where either fails.
 */
import { AhaError } from '../../errors.ts';
import { isObj, leaves, type Json } from './tokenizerJson.ts';

/** SentencePiece's stand-in for a space. */
export const SPM_SPACE = '\u2581';

/** A byte-fallback token `<0xXX>`, as llama.cpp's byte_to_token writes it (upper-case hex). */
export const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

const isSpaceReplace = (n: Json) =>
  n.type === 'Replace' && isObj(n.pattern) && n.pattern.String === ' ' && n.content === SPM_SPACE;

/**
 * Whether llama.cpp must prepend a space to the text (`tokenizer.ggml.add_space_prefix`), from tokenizer.json's
 * normalizer and pre-tokenizer, or an AhaError naming what llama.cpp does not do. llama.cpp replaces every space
 * with '▁' and optionally prepends one '▁', nothing else; tokenizer.json says the same with
 * - a normalizer Sequence[Prepend "▁", Replace " " → "▁"] (or the Replace alone) and no pre-tokenizer (Llama 2's,
 *   transformers' "legacy" form), or
 * - no normalizer and a Metaspace pre-tokenizer with replacement "▁" that does not split at '▁' (`split: false`),
 *   prepend_scheme "always" or "first" (or the older add_prefix_space: true) prepending, "never" not.
 */
export function spmSpacePrefix(tj: Json, name: string): boolean {
  const norms = leaves(tj.normalizer);
  const pre = tj.pre_tokenizer;
  const describe = (ns: Json[]) => ns.map((n) => String(n.type)).join('+') || 'none';
  if (pre == null) {
    const prepend = norms.filter((n) => n.type === 'Prepend');
    const replace = norms.filter(isSpaceReplace);
    if (
      replace.length === 1 &&
      prepend.length <= 1 &&
      prepend.every((n) => n.prepend === SPM_SPACE) &&
      norms.length === replace.length + prepend.length
    )
      return prepend.length === 1;
    throw new AhaError(
      `${name}: its normalizer (${describe(norms)}) is not the Prepend "▁" + Replace " " → "▁" that llama.cpp's SentencePiece tokenizer does`,
    );
  }
  if (!isObj(pre) || pre.type !== 'Metaspace')
    throw new AhaError(
      `${name}: a SentencePiece-style tokenizer exports to GGUF only with no pre-tokenizer or a Metaspace one (this one is ${isObj(pre) ? String(pre.type) : 'unknown'})`,
    );
  if (norms.length > 0)
    throw new AhaError(`${name}: a normalizer (${describe(norms)}) before a Metaspace pre-tokenizer is not exportable`);
  if ((pre.replacement ?? SPM_SPACE) !== SPM_SPACE)
    throw new AhaError(`${name}: its Metaspace replacement is ${JSON.stringify(pre.replacement)}, not "▁"`);
  if (pre.split !== false)
    throw new AhaError(
      `${name}: its Metaspace pre-tokenizer splits the text at each "▁" (split is not false), which llama.cpp's SentencePiece tokenizer does not`,
    );
  const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? 'never' : 'always');
  if (scheme === 'always' || scheme === 'first') return true;
  if (scheme === 'never') return false;
  throw new AhaError(`${name}: unknown Metaspace prepend_scheme ${JSON.stringify(scheme)}`);
}

/** tokenizer.json's merges ("a b" strings or [a, b] pairs) as pairs. */
export function mergePairs(merges: unknown, name: string): [string, string][] {
  if (!Array.isArray(merges)) throw new AhaError(`${name}: model.merges must be a list`);
  return merges.map((m, i) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    }
    throw new AhaError(`${name}: model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
}

/** Scores for llama.cpp's SPM tokenizer, and how many tokens it may join differently from the merges. */
export interface SpmScores {
  /** By token id (`rows` long). */
  scores: Float32Array;
  /**
   * Tokens llama.cpp can make from two tokens that are not a merge, or whose merges are not consecutive: where they
   * occur, llama.cpp's tokenization may differ from transformers'. 0 for tokenizers converted from SentencePiece.
   */
  unmatched: number;
}

/**
 * Per-token scores from the merges' ranks (see the module comment): `score[id(a+b)] = -rank` of the first merge
 * `a b`, `-merges.length` for a token no merge makes.
 */
export function spmScores(vocab: ReadonlyMap<string, number>, merges: [string, string][], rows: number): SpmScores {
  const scores = new Float32Array(rows).fill(-merges.length);
  const made = new Set<string>();
  const mergeSet = new Set<string>();
  const split = new Set<string>();
  let previous: string | undefined;
  merges.forEach(([a, b], rank) => {
    const piece = a + b;
    mergeSet.add(`${a} ${b}`);
    const id = vocab.get(piece);
    if (!made.has(piece)) {
      made.add(piece);
      if (id !== undefined && id < rows) scores[id] = 0 - rank;
    } else if (piece !== previous) split.add(piece);
    previous = piece;
  });
  // Every split of a token into two tokens that is not a merge: llama.cpp would join there, transformers not.
  for (const piece of vocab.keys()) {
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join('');
      const b = chars.slice(k).join('');
      if (vocab.has(a) && vocab.has(b) && !mergeSet.has(`${a} ${b}`)) {
        split.add(piece);
        break;
      }
    }
  }
  return { scores, unmatched: split.size };
}
