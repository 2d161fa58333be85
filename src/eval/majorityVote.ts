/**
 * Majority vote over sampled answers (cons@k / maj@k in DeepSeek-R1): answers that `mathEqual` deems
 * equivalent are one vote bloc.
 */
import { mathEqual, type MathEqualOptions } from '../verify/mathEquivalence.ts';

/** One bloc of equivalent answers; `representative` is its first member. */
export type VoteCluster = { representative: string; indices: number[] };

/** Outcome of a vote. `answer` is null when no sample produced an answer. */
export type MajorityVote = {
  answer: string | null;
  /** Votes for the winner. */
  count: number;
  /** All blocs, in order of first appearance. */
  clusters: VoteCluster[];
  /** Whether the winner matches `gold`; present only when `gold` was given. */
  correct?: boolean;
};

/**
 * Cluster answers and pick the largest bloc.
 *
 * Rules (deterministic, independent of anything but the input order):
 * - null/blank answers (extraction failed) cast no vote;
 * - each answer joins the first existing bloc whose representative (first member) it equals under
 *   `mathEqual`, else starts a new bloc; answers with identical trimmed text skip the comparison;
 * - the largest bloc wins; among equally large blocs the one whose first member came earliest wins.
 */
export function majorityVote(
  answers: readonly (string | null | undefined)[],
  gold?: string,
  opts: MathEqualOptions = {},
): MajorityVote {
  const clusters: VoteCluster[] = [];
  const byText = new Map<string, VoteCluster>();
  answers.forEach((raw, i) => {
    if (typeof raw !== 'string' || raw.trim() === '') return;
    const text = raw.trim();
    let cluster = byText.get(text);
    if (!cluster) {
      cluster = clusters.find((c) => mathEqual(c.representative, text, opts).equal);
      if (!cluster) {
        cluster = { representative: text, indices: [] };
        clusters.push(cluster);
      }
      byText.set(text, cluster);
    }
    cluster.indices.push(i);
  });
  let best: VoteCluster | null = null;
  for (const c of clusters) if (!best || c.indices.length > best.indices.length) best = c;
  const out: MajorityVote = {
    answer: best ? best.representative : null,
    count: best ? best.indices.length : 0,
    clusters,
  };
  if (gold !== undefined) out.correct = best ? mathEqual(gold, best.representative, opts).equal : false;
  return out;
}
