/**
 * The questions a GRPO run draws from: loaded, rendered to prompts, tokenized once, and served in a seeded order
 * that a checkpoint can resume from its position alone.
 */
import { AhaError } from '../errors.ts';
import { renderPrompt } from '../data/promptRenderer.ts';
import { loadQuestionDataset } from '../data/questionDataset.ts';
import { Rng, fnv1a32 } from '../data/rng.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Example } from '../rewards/types.ts';
import { recipePath, type Recipe } from './recipe.ts';

/** A question with its rendered, tokenized prompt. */
export interface PreparedExample {
  example: Example;
  promptText: string;
  promptIds: number[];
}

/** Dataset order: a seeded permutation per epoch (or file order), so position n always maps to the same row. */
export class PromptStream {
  private epoch = -1;
  private order: number[] = [];
  constructor(
    private readonly n: number,
    private readonly seed: number,
    private readonly shuffle: boolean,
  ) {}
  at(position: number): number {
    const e = Math.floor(position / this.n);
    if (e !== this.epoch) {
      this.epoch = e;
      this.order = Array.from({ length: this.n }, (_, i) => i);
      if (this.shuffle) new Rng(fnv1a32(`grpo-epoch:${this.seed}:${e}`)).shuffle(this.order);
    }
    return this.order[position % this.n];
  }
}

/** The recipe's examples: its in-code array, or its dataset file (JSONL or parquet). */
export async function loadExamples(recipe: Recipe): Promise<Example[]> {
  if (Array.isArray(recipe.dataset)) return recipe.dataset as Example[];
  const d = recipe.dataset as Exclude<Recipe['dataset'], readonly Example[]>;
  const rows = await loadQuestionDataset({
    path: recipePath(recipe, d.path),
    questionField: d.question_field,
    answerField: d.answer_field,
    answerExtraction: d.answer_extraction,
    split: d.split,
    limit: d.limit,
  });
  return rows.map((r) => ({ ...r.fields, question: r.question, answer: r.answer ?? undefined, source: r.source }));
}

function renderExample(recipe: Recipe, example: Example, modelDir: string): { text: string; chat: boolean } {
  if (typeof recipe.prompt === 'function') {
    const text = recipe.prompt(example);
    if (typeof text !== 'string') {
      throw new AhaError(
        `prompt function returned ${typeof text} for question "${String(example.question).slice(0, 40)}"`,
      );
    }
    return { text, chat: false };
  }
  return renderPrompt(recipe.prompt, String(example.question), {
    modelDir,
    systemPrompt: recipe.system_prompt,
    chatTemplateKwargs: recipe.chat_template_kwargs,
    source: 'recipe prompt',
  });
}

/**
 * Renders and tokenizes every example; those whose prompt plus `maxNew` completion tokens exceed the model's
 * positions are left out (and counted in a notice).
 */
export function prepareExamples(
  recipe: Recipe,
  examples: readonly Example[],
  o: { tokenizer: Tokenizer; modelDir: string; maxPositions: number; maxNew: number; log: (line: string) => void },
): PreparedExample[] {
  const prepared: PreparedExample[] = [];
  let tooLong = 0;
  for (const ex of examples) {
    const { text, chat } = renderExample(recipe, ex, o.modelDir);
    const ids = o.tokenizer.encode(text, { addSpecialTokens: !chat });
    if (ids.length === 0)
      throw new AhaError(`prompt of question "${String(ex.question).slice(0, 40)}" encodes to no tokens`);
    if (ids.length + o.maxNew > o.maxPositions) {
      tooLong++;
      continue;
    }
    prepared.push({ example: ex, promptText: text, promptIds: ids });
  }
  if (prepared.length === 0) {
    throw new AhaError(
      `every prompt is too long: prompt + max_completion_length ${o.maxNew} exceeds the model's ${o.maxPositions} positions`,
    );
  }
  if (tooLong > 0) {
    o.log(
      `grpo: skipped ${tooLong} of ${examples.length} questions whose prompt + ${o.maxNew} completion tokens exceed ${o.maxPositions} positions`,
    );
  }
  return prepared;
}
