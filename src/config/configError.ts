/**
 * Validation errors of configuration (recipes, GRPO options, reward options, pipeline stages) as one line that names
 * the source and the offending field, the same way everywhere: "recipe.yaml: training.learning_rate: expected
 * number, received string", "recipe.yaml: rewards[1].options: unknown option 'x'".
 */
import type { z } from 'zod';
import { AhaError } from '../errors.ts';

/** A path as a recipe writes it: `a.b[2].c`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path.map(String)) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

/** What went wrong in one issue, in words ("unknown fields 'a', 'b'", "required", zod's message otherwise). */
export function issueMessage(issue: z.core.$ZodIssue, noun = 'field'): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown ${noun}${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return 'required';
  return issue.message.replace(/\s*\n\s*/g, ' ');
}

export interface ConfigErrorOptions {
  /** Path segments before the issue's own (where the parsed value sits in a larger file). */
  prefix?: readonly PropertyKey[];
  /** What an unknown key is called: "field" (default), "option". */
  noun?: string;
  /** `source` is itself a field path ("rewards[1]"): the message reads "rewards[1].options.x: ...". */
  sourceIsPath?: boolean;
}

const TYPE_WORDS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
};

/**
 * An issue as a short phrase for command-line options, where the option's name comes first: "must be >= 1",
 * "must be an integer", "must be one of a, b". `nullable`: the option also takes null.
 */
export function issuePhrase(issue: z.core.$ZodIssue, o: { nullable?: boolean } = {}): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}${o.nullable ? ' or null' : ''}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => String(v)).join(', ')}`;
    default:
      return issueMessage(issue);
  }
}

/** The one-line message of a failed parse: its first issue, with an unknown key preferred (the likelier typo). */
export function configErrorMessage(error: z.ZodError, source: string, o: ConfigErrorOptions = {}): string {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0];
  if (o.sourceIsPath)
    return `${fieldPath([source, ...(o.prefix ?? []), ...issue.path])}: ${issueMessage(issue, o.noun)}`;
  const where = fieldPath([...(o.prefix ?? []), ...issue.path]);
  return `${source}: ${where === '' ? '' : `${where}: `}${issueMessage(issue, o.noun)}`;
}

/** Parses `value` with `schema`, or throws the one-line AhaError of {@link configErrorMessage}. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: string,
  o: ConfigErrorOptions = {},
): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AhaError(configErrorMessage(r.error, source, o));
  return r.data;
}
