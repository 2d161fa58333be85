/**
 * Prompt templates of the LLM judge (src/rewards/llmJudge.ts): text with `{question}`, `{reference}` and
 * `{response}` placeholders, and the reader its replies need. Two are built in: `equivalence` (R1's generative
 * reward model for rejection sampling: the reference and the prediction given to a strong model, which says whether
 * the final answers agree) and `rating` (MT-Bench's single-answer grading prompt: a 1-10 rating, for helpfulness).
 */
import { AhaError } from '../errors.ts';

/** How a template's replies are read: a verdict (1 or 0) or a rating on a scale (mapped to [0, 1]). */
export type JudgeParse = 'verdict' | 'score';

/** A built-in template. */
export interface JudgeTemplate {
  text: string;
  parse: JudgeParse;
}

/** The built-in templates by name. */
export const JUDGE_TEMPLATES = {
  equivalence: {
    parse: 'verdict',
    text: `You are checking a response to a problem against the reference answer. Decide whether the final answer of the response is equivalent to the reference answer: the same value, expression, set or choice, in any notation (for example 0.5 and 1/2, (x+1)^2 and x^2+2x+1, "C" and "(C) 12"). Judge only the final answer, not the reasoning, the style or the length. A response that gives no final answer, or several different ones, is incorrect.

Problem:
{question}

Reference answer:
{reference}

Response:
{response}

Explain briefly, then end with exactly one line: "Verdict: correct" or "Verdict: incorrect".`,
  },
  rating: {
    parse: 'score',
    text: `Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "Rating: [[5]]".

[Question]
{question}

[The Start of Assistant's Answer]
{response}
[The End of Assistant's Answer]`,
  },
} as const satisfies Record<string, JudgeTemplate>;

export type JudgeTemplateName = keyof typeof JUDGE_TEMPLATES;

const PLACEHOLDER = /\{(question|reference|response)\}/g;

/** What fills a template's placeholders. */
export interface JudgeFields {
  question: string;
  /** Absent when the example has none: a template that uses `{reference}` then cannot be rendered. */
  reference?: string;
  response: string;
}

/**
 * A template by name or inline text, checked: an inline template must contain `{response}`, and must say how its
 * replies are read (`parse`). `where` names the option in messages.
 */
export function resolveJudgeTemplate(
  template: string,
  parse: JudgeParse | undefined,
  where: string,
): { text: string; parse: JudgeParse; name: string; usesReference: boolean } {
  const builtin = (JUDGE_TEMPLATES as Record<string, JudgeTemplate>)[template];
  if (builtin) {
    return {
      text: builtin.text,
      parse: parse ?? builtin.parse,
      name: template,
      usesReference: /\{reference\}/.test(builtin.text),
    };
  }
  if (!template.includes('{response}')) {
    throw new AhaError(
      `${where}.template: '${template.slice(0, 40)}' is neither a built-in template (${Object.keys(JUDGE_TEMPLATES).join(', ')}) nor a template with a {response} placeholder`,
    );
  }
  if (parse === undefined)
    throw new AhaError(`${where}.parse: an inline template needs 'parse: verdict' or 'parse: score'`);
  return { text: template, parse, name: 'inline', usesReference: template.includes('{reference}') };
}

/**
 * The template with its placeholders filled, in one pass (a response that itself contains "{reference}" is not
 * filled again). Throws when the template uses `{reference}` and there is none.
 */
export function renderJudgePrompt(template: string, f: JudgeFields): string {
  return template.replace(PLACEHOLDER, (_, name: keyof JudgeFields) => {
    const v = f[name];
    if (v === undefined) throw new Error('the example has no reference answer (the judge template uses {reference})');
    return v;
  });
}
