/**
 * What a zod (v4) schema says about each field, read from the schema itself: its type in words, its default, whether
 * it is required, and the fields below it. The recipe reference (recipeReference.ts) and `--set` (overrides.ts) both
 * read recipes through this, so neither can disagree with the validation that runs on the recipe.
 */
import type { z } from 'zod';

/** One field (or the whole schema) as documented. */
export interface SchemaNode {
  /** 'object': named fields; 'array': a list (see `element`); 'record': a mapping with any keys; 'leaf': a value. */
  kind: 'object' | 'array' | 'record' | 'leaf';
  /** The type in words: "integer >= 1", "number in (0, 1]", "grpo | bnpo", "list of number", "... | null". */
  type: string;
  /** Neither optional nor defaulted: validation fails without it. */
  required: boolean;
  /** Whether the schema supplies a default (then `default` holds it, possibly null). */
  hasDefault: boolean;
  default?: unknown;
  /** Takes null. */
  nullable: boolean;
  /** A function, given only in code (a recipe file cannot hold one). */
  codeOnly?: boolean;
  /** Allowed values, for enums. */
  values?: readonly (string | number | boolean | null)[];
  /** The fields of an object, in the schema's order. */
  fields?: Record<string, SchemaNode>;
  /** The element of an array. */
  element?: SchemaNode;
  /** Values of a record. */
  value?: SchemaNode;
}

/** zod's internal definition, which v4 documents for library authors (`schema._zod.def`). */
interface Def {
  type: string;
  innerType?: z.ZodType;
  defaultValue?: unknown;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  valueType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  checks?: { _zod: { def: { check: string; value?: number; inclusive?: boolean; format?: string } } }[];
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

function numberType(def: Def): string {
  let integer = false;
  let lo: { v: number; inc: boolean } | undefined;
  let hi: { v: number; inc: boolean } | undefined;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === 'number_format' && /int/.test(d.format ?? '')) integer = true;
    else if (d.check === 'greater_than') lo = { v: d.value!, inc: d.inclusive === true };
    else if (d.check === 'less_than') hi = { v: d.value!, inc: d.inclusive === true };
  }
  const name = integer ? 'integer' : 'number';
  if (lo && hi) return `${name} in ${lo.inc ? '[' : '('}${lo.v}, ${hi.v}${hi.inc ? ']' : ')'}`;
  if (lo) return `${name} ${lo.inc ? '>=' : '>'} ${lo.v}`;
  if (hi) return `${name} ${hi.inc ? '<=' : '<'} ${hi.v}`;
  return name;
}

/** Reads a schema into a {@link SchemaNode} tree. */
export function describeSchema(schema: z.ZodType): SchemaNode {
  const def = defOf(schema);
  switch (def.type) {
    case 'default':
    case 'prefault': {
      const inner = describeSchema(def.innerType!);
      return { ...inner, required: false, hasDefault: true, default: def.defaultValue };
    }
    case 'optional':
      return { ...describeSchema(def.innerType!), required: false };
    case 'nullable': {
      const inner = describeSchema(def.innerType!);
      return { ...inner, nullable: true, type: `${inner.type} | null` };
    }
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return describeSchema(def.innerType!);
    case 'pipe':
      // What a recipe writes is the pipe's input (a transform after it only reshapes it); after a preprocessing
      // step (z.preprocess), the schema the value then meets.
      return describeSchema(defOf(def.in!).type === 'transform' ? def.out! : def.in!);
    case 'object': {
      const fields: Record<string, SchemaNode> = {};
      for (const [k, v] of Object.entries(def.shape ?? {})) fields[k] = describeSchema(v);
      return { kind: 'object', type: 'mapping', required: true, hasDefault: false, nullable: false, fields };
    }
    case 'array': {
      const element = describeSchema(def.element!);
      const type = element.kind === 'object' ? 'list of mappings' : `list of ${element.type}`;
      return { kind: 'array', type, required: true, hasDefault: false, nullable: false, element };
    }
    case 'record':
      return {
        kind: 'record',
        type: 'mapping',
        required: true,
        hasDefault: false,
        nullable: false,
        value: describeSchema(def.valueType!),
      };
    case 'union': {
      const options = def.options!.map(describeSchema);
      const values = options.every((o) => o.values) ? options.flatMap((o) => o.values!) : undefined;
      const codeOnly = options.every((o) => o.codeOnly) || undefined;
      const shown = options.filter((o) => !o.codeOnly);
      const type = (shown.length > 0 ? shown : options).map((o) => o.type).join(' | ');
      return { kind: 'leaf', type, required: true, hasDefault: false, nullable: false, values, codeOnly };
    }
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      return { kind: 'leaf', type: values.join(' | '), required: true, hasDefault: false, nullable: false, values };
    }
    case 'literal': {
      const values = (def.values ?? []) as (string | number | boolean | null)[];
      return {
        kind: 'leaf',
        type: values.map((v) => String(v)).join(' | '),
        required: true,
        hasDefault: false,
        nullable: false,
        values,
      };
    }
    case 'number':
      return { kind: 'leaf', type: numberType(def), required: true, hasDefault: false, nullable: false };
    case 'int':
      return { kind: 'leaf', type: 'integer', required: true, hasDefault: false, nullable: false };
    case 'string':
    case 'boolean':
    case 'null':
      return { kind: 'leaf', type: def.type, required: true, hasDefault: false, nullable: false };
    case 'custom':
      return { kind: 'leaf', type: 'function', required: true, hasDefault: false, nullable: false, codeOnly: true };
    case 'unknown':
    case 'any':
      return { kind: 'leaf', type: 'any', required: false, hasDefault: false, nullable: false };
    default:
      return { kind: 'leaf', type: def.type, required: true, hasDefault: false, nullable: false };
  }
}

/**
 * Puts `node` at `path` of `tree` (a field the schema leaves open, such as a recipe's `grpo: z.unknown()` that is
 * validated by a schema of its own later), keeping the original field's optionality unless `o` says otherwise.
 */
export function graft(
  tree: SchemaNode,
  path: readonly string[],
  node: SchemaNode,
  o: Partial<Pick<SchemaNode, 'required' | 'hasDefault' | 'default' | 'type'>> = {},
): void {
  let parent = tree;
  for (const seg of path.slice(0, -1)) {
    const next = seg === '[]' ? parent.element : parent.fields?.[seg];
    if (!next) throw new Error(`graft: no field ${path.join('.')}`);
    parent = next;
  }
  const last = path[path.length - 1];
  const old = parent.fields?.[last];
  if (!old || !parent.fields) throw new Error(`graft: no field ${path.join('.')}`);
  parent.fields[last] = {
    ...node,
    required: old.required,
    hasDefault: old.hasDefault,
    ...(old.hasDefault ? { default: old.default } : {}),
    ...o,
  };
}
