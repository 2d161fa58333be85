/**
 * A question dataset as recipes name it (GRPO recipes, the R1 pipeline, distillation): one schema, so the same
 * keys mean the same thing in every file.
 */
import { z } from 'zod';

export const datasetSpecSchema = z
  .object({
    /** JSONL or Parquet file, or a Hugging Face datasets directory. */
    path: z.string().min(1),
    question_field: z.string().min(1).default('question'),
    /** null: the dataset has no reference answers (then no accuracy reward). */
    answer_field: z.string().min(1).nullable().default('answer'),
    /** 'gsm8k': the answer follows "####"; 'boxed': the last \boxed{} of a solution (MATH). */
    answer_extraction: z.enum(['none', 'gsm8k', 'boxed']).default('none'),
    split: z.string().min(1).default('train'),
    limit: z.number().int().positive().optional(),
  })
  .strict();

export type DatasetSpec = z.output<typeof datasetSpecSchema>;
