/**
 * Older runs' metrics.jsonl under today's names. Trainers now log flat records with TRL's names (src/rl/metrics.ts,
 * src/sft/trainer.ts); runs written before nest some values (`reward: {mean, std}`, `rewards: {accuracy: {mean}}`,
 * `completion_length: {mean, ...}`, `clip_ratio: {low, high, total}`, `time: {...}`, `reflection: {...}`,
 * `tokens_per_second: {sample, learn}`, `reward_error_counts`, `reward_reasons`), write `lr` for learning_rate,
 * `null` for a value not measured, and an earlier schema used `reward_mean`, `completion_length_mean`,
 * `clip_fraction`, `tokens_per_s`, `time_<phase>_s` and `reflective.per1000`. The report reads every run through
 * {@link normalizeMetricRecord}, so it only knows today's names.
 */

type Rec = Record<string, unknown>;

function obj(v: unknown): Rec | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;
}

/** Old name -> today's, for values that only moved. */
const RENAMED: Record<string, string> = {
  lr: 'learning_rate',
  reward_mean: 'reward',
  completion_length_mean: 'completions/mean_length',
  completion_length_max: 'completions/max_length',
  clipped_ratio: 'completions/clipped_ratio',
  tokens_per_s: 'tokens_per_second',
  time_sample_s: 'time/sample',
  time_score_s: 'time/score',
  time_learn_s: 'time/learn',
  time_total_s: 'time/total',
};

/** Nested objects -> flat keys, by the old key and the old subkey. */
const NESTED: Record<string, Record<string, string>> = {
  reward: { mean: 'reward', std: 'reward_std', min: 'reward_min', max: 'reward_max' },
  completion_length: {
    mean: 'completions/mean_length',
    min: 'completions/min_length',
    max: 'completions/max_length',
    clipped_ratio: 'completions/clipped_ratio',
  },
  clip_ratio: { low: 'clip_ratio/low_mean', high: 'clip_ratio/high_mean', total: 'clip_ratio/region_mean' },
  clip_fraction: { low: 'clip_ratio/low_mean', high: 'clip_ratio/high_mean', total: 'clip_ratio/region_mean' },
  tokens_per_second: { sample: 'tokens_per_second/sample', learn: 'tokens_per_second/learn' },
  time: { sample: 'time/sample', score: 'time/score', learn: 'time/learn', total: 'time/total' },
};

/**
 * One metrics record under today's flat names: nested values flattened, old names renamed, nulls dropped. A record
 * already in today's form comes back equal; where both an old and a new key are present, the new one wins.
 */
export function normalizeMetricRecord(r: Readonly<Rec>): Rec {
  const old: Rec = {};
  const out: Rec = {};
  for (const [k, v] of Object.entries(r)) {
    if (v === null) continue;
    const o = obj(v);
    if (o && k in NESTED) {
      for (const [sub, name] of Object.entries(NESTED[k]))
        if (o[sub] !== undefined && o[sub] !== null) old[name] = o[sub];
    } else if (o && k === 'rewards') {
      for (const [name, s] of Object.entries(o)) {
        const so = obj(s);
        if (so) {
          if (so.mean !== undefined) old[`rewards/${name}/mean`] = so.mean;
          if (so.std !== undefined) old[`rewards/${name}/std`] = so.std;
        } else if (s !== null) old[`rewards/${name}/mean`] = s;
      }
    } else if (o && k === 'reflection') {
      for (const [w, x] of Object.entries(o)) if (x !== null) old[`reflection/${w}`] = x;
    } else if (o && k === 'reflective') {
      for (const [w, x] of Object.entries(obj(o.per1000) ?? {})) if (x !== null) old[`reflection/${w}`] = x;
      if (o.total_per1000 !== undefined) old['reflection/total'] = o.total_per1000;
    } else if (o && k === 'reward_error_counts') {
      for (const [name, c] of Object.entries(o)) {
        const co = obj(c);
        if (co?.errors !== undefined) old[`reward_errors/${name}`] = co.errors;
        if (co?.calls !== undefined) old[`reward_calls/${name}`] = co.calls;
      }
    } else if (o && k === 'reward_reasons') {
      for (const [name, reasons] of Object.entries(o))
        for (const [reason, n] of Object.entries(obj(reasons) ?? {})) old[`reward_reasons/${name}/${reason}`] = n;
    } else if (k === 'clip_fraction' || k === 'clip_ratio') old['clip_ratio/region_mean'] = v;
    else if (k === 'completion_length') old['completions/mean_length'] = v;
    else if (k in RENAMED) old[RENAMED[k]] = v;
    else out[k] = v;
  }
  return { ...old, ...out };
}
