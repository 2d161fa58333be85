/**
 * `--set path=value`: one recipe field overridden from the command line, applied to the recipe as read from its
 * file, before validation, so a bad value fails exactly as it would in the file. Paths are dotted, list items by
 * index (`grpo.beta`, `training.max_steps`, `rewards.0.weight`); values are read as YAML (`10`, `1.0e-4`, `true`,
 * `null`, `[a, b]`, `{mode: think}`), anything else is a string. A path is checked against the recipe's schema
 * first, so `--set training.lr=1` is one line naming `lr`, with the field meant when it is a near miss.
 */
import { closestWord } from '../util/closestWord.ts';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AhaError } from '../errors.ts';
import { fieldPath } from './configError.ts';
import { recipeTree, type RecipeKind } from './recipeSchemas.ts';
import type { SchemaNode } from './schemaFields.ts';

/** One `--set`, parsed and checked. */
export interface SetOverride {
  /** The argument as given (`grpo.beta=0.04`). */
  arg: string;
  /** Path segments; list indices as numbers. */
  path: (string | number)[];
  value: unknown;
}

/**
 * Fields that name files or directories. A recipe's own paths resolve against its directory; one given with --set
 * is typed relative to where the command runs, so it is made absolute here.
 */
export const PATH_FIELDS: Record<RecipeKind, readonly string[]> = {
  grpo: ['model', 'dataset.path', 'output_dir'],
  r1: [
    'base_model',
    'output_dir',
    'dataset.path',
    'eval_dataset.path',
    'stages.cold_start_sft.data',
    'stages.cold_start_sft.source_model',
    'stages.rejection_sft.non_reasoning_data',
    'stages.all_scenarios_rl.general_dataset.path',
  ],
  sft: ['model', 'data', 'eval_data', 'out'],
};

/** The commander collector of a repeatable `--set`. */
export function collectSet(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  return closestWord(word, candidates, Math.max(2, Math.floor(word.length / 3)));
}

const accepts = (n: SchemaNode, t: string) => n.type.split(' | ').some((p) => p === t || p.startsWith(`${t} `));

/** The value of `text` as the node at its path takes it: YAML, except where that would turn a string into a non-string. */
function parseValue(text: string, arg: string, node: SchemaNode | undefined): unknown {
  const t = text.trim();
  let v: unknown;
  try {
    v = parseYaml(t);
  } catch (e) {
    if (/^[[{]/.test(t))
      throw new AhaError(`--set ${arg}: invalid YAML value (${(e as Error).message.split('\n')[0]})`);
    return text;
  }
  // `Q: {question}` is a template, not a mapping: only a value that opens with [ or { is a list or a mapping.
  if (typeof v === 'object' && v !== null && !/^[[{]/.test(t)) return text;
  // `--set dataset.split=2024`, `--set model=007`: a field of strings keeps the text as typed.
  if (node && (typeof v === 'number' || typeof v === 'boolean') && accepts(node, 'string') && !accepts(node, typeof v))
    return t;
  return v;
}

/** Checks `segs` against the tree; returns the node they reach (undefined below an open mapping). */
function checkPath(root: SchemaNode, segs: string[], arg: string): SchemaNode | undefined {
  let n: SchemaNode | undefined = root;
  const done: (string | number)[] = [];
  for (const seg of segs) {
    if (n === undefined) return undefined;
    const here = done.length > 0 ? fieldPath(done) : '';
    if (n.kind === 'object') {
      const names: string[] = Object.keys(n.fields!);
      if (!names.includes(seg)) {
        const near = closest(seg, names);
        const hint = near !== undefined ? `did you mean ${[...done, near].join('.')}?` : `fields: ${names.join(', ')}`;
        throw new AhaError(`--set ${arg}: unknown field '${seg}'${here ? ` in ${here}` : ''} (${hint})`);
      }
      n = n.fields![seg];
      done.push(seg);
    } else if (n.kind === 'array') {
      if (!/^\d+$/.test(seg))
        throw new AhaError(`--set ${arg}: ${here} is a list: give an item's index (${[...done, 0].join('.')})`);
      n = n.element;
      done.push(Number(seg));
    } else if (n.kind === 'record' || n.type === 'any') {
      // Keys of an open mapping (a reward's options) are checked where they are used.
      return undefined;
    } else {
      throw new AhaError(`--set ${arg}: ${here} is a value (${n.type}), not a section with fields`);
    }
  }
  return n;
}

/** Parses and checks `--set` arguments against `kind`'s recipe; throws a one-line AhaError naming a bad one. */
export function parseSetArgs(args: readonly string[], kind: RecipeKind): SetOverride[] {
  const root = recipeTree(kind).root;
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new AhaError(`--set ${arg}: expected path=value (e.g. --set training.max_steps=10)`);
    const key = arg.slice(0, eq).trim();
    const segs = key.split('.');
    if (segs.some((s) => s === '')) throw new AhaError(`--set ${arg}: empty segment in the path '${key}'`);
    const node = checkPath(root, segs, arg);
    let value = parseValue(arg.slice(eq + 1), arg, node);
    value = absolutePaths(kind, segs, value);
    return { arg, path: segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), value };
  });
}

/** Makes the path fields in `value` (set at `segs`) absolute against the working directory. */
function absolutePaths(kind: RecipeKind, segs: string[], value: unknown): unknown {
  const key = segs.filter((s) => !/^\d+$/.test(s)).join('.');
  const abs = (v: unknown) => (typeof v === 'string' && v !== '' && !isAbsolute(v) ? resolve(v) : v);
  let out = value;
  for (const p of PATH_FIELDS[kind]) {
    if (p === key) out = abs(out);
    else if (p.startsWith(`${key}.`) && typeof out === 'object' && out !== null) {
      // A whole section given at once (`--set dataset={path: x.jsonl}`).
      const rest = p.slice(key.length + 1).split('.');
      let o = out as Record<string, unknown>;
      for (const s of rest.slice(0, -1)) {
        if (typeof o[s] !== 'object' || o[s] === null) o = {};
        else o = o[s] as Record<string, unknown>;
      }
      const last = rest[rest.length - 1];
      if (last in o) o[last] = abs(o[last]);
    }
  }
  return out;
}

/** `raw` (a recipe as read, untouched) with the overrides applied, in order. */
export function applySetOverrides(raw: unknown, sets: readonly SetOverride[], source = 'recipe'): unknown {
  if (sets.length === 0) return raw;
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return raw; // the recipe's own validation says what is wrong
  const out = structuredClone(raw) as Record<string, unknown>;
  for (const s of sets) {
    let cur: Record<string | number, unknown> | unknown[] = out;
    for (let i = 0; i < s.path.length; i++) {
      const seg = s.path[i];
      const last = i === s.path.length - 1;
      const where = fieldPath(s.path.slice(0, i));
      if (Array.isArray(cur)) {
        const idx = seg as number;
        if (idx > cur.length)
          throw new AhaError(
            `--set ${s.arg}: ${where} has ${cur.length} item${cur.length === 1 ? '' : 's'} in ${source} (index ${cur.length} adds one)`,
          );
      }
      const container = cur as Record<string | number, unknown>;
      if (last) {
        container[seg] = s.value;
        break;
      }
      let next = container[seg];
      if (next === undefined || next === null) {
        next = typeof s.path[i + 1] === 'number' ? [] : {};
        container[seg] = next;
      } else if (typeof next !== 'object') {
        throw new AhaError(
          `--set ${s.arg}: ${fieldPath(s.path.slice(0, i + 1))} is ${JSON.stringify(next)} in ${source}, not a section`,
        );
      }
      cur = next as Record<string | number, unknown> | unknown[];
    }
  }
  return out;
}

/**
 * Runs `load` (which validates the recipe with the overrides applied) and, when its error is about a field some
 * `--set` gave, says so: `r.yaml: grpo.beta: Too small: expected number to be >=0 (from --set grpo.beta=-1)`.
 */
export function withSetContext<T>(sets: readonly SetOverride[], load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (!(e instanceof AhaError) || sets.length === 0) throw e;
    for (const s of [...sets].reverse()) {
      // The field as messages name it: `rewards[0].weight`, `learning_rate` (sft), dotted, or split where a section
      // is validated on its own (`stages.reasoning_rl: grpo.beta`).
      const names = [fieldPath(s.path), s.path.join('.')];
      for (let i = 1; i < s.path.length; i++)
        names.push(`${fieldPath(s.path.slice(0, i))}: ${fieldPath(s.path.slice(i))}`);
      const hit = names.some((n) =>
        new RegExp(`(^|[\\s'])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([.:'\\[]|\\swas\\s)`).test(e.message),
      );
      if (hit) throw new AhaError(`${e.message} (from --set ${s.arg})`);
    }
    throw e;
  }
}
