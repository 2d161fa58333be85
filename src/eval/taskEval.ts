import type { Model } from '../engine/model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Example, Task } from '../data/tasks/task.ts';
import { extractTaggedAnswer, hasValidFormat } from '../rewards/format.ts';
import { reflectiveWordFrequency } from '../rewards/reflection.ts';

/** Held-out results on a synthetic task: pass@1 as DeepSeek-R1 reports it (mean over k samples per problem). */
export interface TaskEvalResult {
  problems: number;
  samples: number;
  pass_at_1: number;
  /** Share of samples in the strict R1-Zero format (<think>...</think> <answer>...</answer>). */
  format_rate: number;
  /** Mean completion length in tokens. */
  mean_length: number;
  /** Reflective words ("wait", "check", ...) per 1000 words. */
  reflective_per_1000_words: number;
  /**
   * The first sample of the first 5 problems; when none of them is correct, the first correct sample too (so a
   * showcase can show a correct answer whenever one exists).
   */
  examples: { prompt: string; completion: string; correct: boolean }[];
}

/**
 * Samples k completions per problem (temperature 0.6, top-p 0.95 by default, as the paper evaluates) and scores
 * them: correct = strict format and the <answer> passes the task's check.
 */
export async function evaluateTask<E extends Example>(
  model: Model,
  tokenizer: Tokenizer,
  task: Task<E>,
  problems: E[],
  o: {
    k?: number;
    temperature?: number;
    topP?: number;
    maxNewTokens?: number;
    seed?: number;
    batch?: number;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<TaskEvalResult> {
  const k = o.k ?? 4,
    batch = o.batch ?? 128;
  const jobs: { p: number; s: number; ids: number[] }[] = [];
  problems.forEach((ex, p) => {
    const ids = tokenizer.encode(task.prompt(ex), { addSpecialTokens: false });
    for (let s = 0; s < k; s++) jobs.push({ p, s, ids });
  });
  let correct = 0,
    formatted = 0,
    tokens = 0;
  const texts: string[] = [];
  const examples: TaskEvalResult['examples'] = [];
  let firstCorrect: TaskEvalResult['examples'][number] | undefined;
  for (let i = 0; i < jobs.length; i += batch) {
    const chunk = jobs.slice(i, i + batch);
    const out = await model.generate(
      chunk.map((j) => j.ids),
      {
        maxNewTokens: o.maxNewTokens ?? 200,
        temperature: o.temperature ?? 0.6,
        topP: o.topP ?? 0.95,
        stopTokenIds: [...tokenizer.eosTokenIds],
        seeds: chunk.map((j) => (o.seed ?? 0) * 1_000_003 + j.p * 1009 + j.s),
      },
    );
    out.forEach((r, n) => {
      const j = chunk[n];
      const text = tokenizer.decode(r.tokens, { skipSpecialTokens: false }).replace(/<\|endoftext\|>$/, '');
      const fmt = hasValidFormat(text, { mode: 'strict' });
      const ans = fmt ? extractTaggedAnswer(text) : null;
      const ok = ans !== null && task.check(ans, problems[j.p]) === true;
      formatted += fmt ? 1 : 0;
      correct += ok ? 1 : 0;
      tokens += r.tokens.length;
      texts.push(text);
      if (j.s === 0 && examples.length < 5)
        examples.push({ prompt: task.prompt(problems[j.p]), completion: text, correct: ok });
      else if (ok) firstCorrect ??= { prompt: task.prompt(problems[j.p]), completion: text, correct: true };
    });
    o.onProgress?.(Math.min(i + batch, jobs.length), jobs.length);
  }
  if (firstCorrect && !examples.some((e) => e.correct)) examples.push(firstCorrect);
  const n = jobs.length;
  return {
    problems: problems.length,
    samples: k,
    pass_at_1: correct / n,
    format_rate: formatted / n,
    mean_length: tokens / n,
    reflective_per_1000_words: reflectiveWordFrequency(texts).words.reduce((a, w) => a + w.per1000Words, 0),
    examples,
  };
}
