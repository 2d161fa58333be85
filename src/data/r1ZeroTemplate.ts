import { AhaError } from '../errors.ts';

/**
 * The DeepSeek-R1-Zero prompt template, verbatim from the paper (arXiv 2501.12948 v1, Table 1). The word "prompt"
 * in "User: prompt. Assistant:" is the placeholder for the question.
 */
export const R1_ZERO_TEMPLATE =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant ' +
  'first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning ' +
  'process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., ' +
  '<think> reasoning process here </think> <answer> answer here </answer>. User: prompt. Assistant:';

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';
/** End-of-text marker appended after every training sample and used as the stop token. */
export const END_OF_TEXT = '<|endoftext|>';
/** Strings the character tokenizer must treat as single added tokens, never spelled out char by char. */
export const R1_SPECIAL_TOKENS: readonly string[] = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, END_OF_TEXT];

const PLACEHOLDER_ANCHOR = 'User: prompt. Assistant:';

/** The paper's R1-Zero template with `question` in place of "prompt". */
export function r1ZeroPrompt(question: string): string {
  checkQuestion(question);
  const at = R1_ZERO_TEMPLATE.lastIndexOf(PLACEHOLDER_ANCHOR) + 'User: '.length;
  return R1_ZERO_TEMPLATE.slice(0, at) + question + R1_ZERO_TEMPLATE.slice(at + 'prompt'.length);
}

/**
 * The paper's template with its instruction paragraph dropped: just its closing "User: prompt. Assistant:".
 * Why the demo uses it: the tiny character-level base model is trained from scratch and cannot read an
 * instruction; in the paper, too, the template only primes a base model whose pre-training already contains the
 * tagged format, and that priming comes here from the pre-training corpus. The full paragraph is ~400 characters,
 * longer than the tiny model's context and about 4x the cost of a whole completion in every GRPO forward/backward.
 * Keeping the paper's exact "User: ... Assistant:" skeleton keeps the demo faithful in shape.
 */
export function r1ZeroShortPrompt(question: string): string {
  checkQuestion(question);
  return `User: ${question}. Assistant:`;
}

/**
 * A completion in the R1-Zero output format, as the pre-training corpus writes it right after "Assistant:".
 * The leading space separates it from the colon; reasoning sits on its own lines inside the think tags.
 */
export function r1ZeroCompletion(reasoning: string, answer: string): string {
  return ` ${THINK_OPEN}\n${reasoning}\n${THINK_CLOSE} ${ANSWER_OPEN}${answer}${ANSWER_CLOSE}`;
}

function checkQuestion(question: string): void {
  if (typeof question !== 'string' || question.trim() === '') throw new AhaError('R1-Zero prompt: empty question');
}
