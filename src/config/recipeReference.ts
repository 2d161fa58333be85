/**
 * The recipe reference (docs/recipes.md), generated: fields, types, defaults and allowed values from the schemas
 * (recipeSchemas.ts), meanings and TRL / transformers names from recipeFieldDocs.ts. test/config/recipeReference.test.ts
 * fails when the file differs from what this writes (`npm run docs:recipes` rewrites it) or when a field has no
 * description. The same tree gives the short field list of `aha grpo|r1|sft --help`.
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionFlag } from '../sft/sftConfig.ts';
import { fieldDoc, REWARD_OPTION_DOCS, type FieldDoc } from './recipeFieldDocs.ts';
import {
  joinPath,
  recipeTree,
  rewardOptionTrees,
  splitPath,
  walkFields,
  type RecipeKind,
  type RecipeTree,
} from './recipeSchemas.ts';
import type { SchemaNode } from './schemaFields.ts';

/** Where the reference lives, relative to the package root. */
export const RECIPE_REFERENCE_PATH = 'docs/recipes.md';

/** The reference file's absolute path. */
export function recipeReferenceFile(): string {
  return fileURLToPath(new URL(`../../${RECIPE_REFERENCE_PATH}`, import.meta.url));
}

const TITLES: Record<RecipeKind, string> = {
  grpo: '`aha grpo` recipe',
  r1: '`aha r1` recipe',
  sft: '`aha sft` options',
};

const INTROS: Record<RecipeKind, string[]> = {
  grpo: [
    '`aha grpo --config recipe.yaml [--out DIR] [--resume] [--set path=value ...]`: one file says everything a GRPO run',
    "needs, validated in full before any work starts. GRPO options keep the names and defaults of TRL's `GRPOConfig`,",
    "training options those of transformers' `TrainingArguments` where one exists. Example:",
    '[examples/grpo-r1-zero-arithmetic.yaml](../examples/grpo-r1-zero-arithmetic.yaml).',
  ],
  r1: [
    "`aha r1 --config recipe.yaml [--out DIR] [--stage NAME] [--resume] [--set path=value ...]`: DeepSeek-R1's four",
    "stages in one file. An RL stage's `grpo` and `training` take the fields of the GRPO recipe's sections of the same",
    "name, an SFT stage's `sft` takes `aha sft`'s options. Example:",
    '[examples/r1-pipeline-arithmetic.yaml](../examples/r1-pipeline-arithmetic.yaml).',
  ],
  sft: [
    '`aha sft [--config options.yaml] [--set key=value ...] [--flags]`: every option is also a flag (underscores as',
    "dashes; transformers' spelling `--learning_rate` works too). Layers, later ones winning: the run directory's",
    'config.json (with `--resume` only), the `--config` file (its relative paths resolve against its directory), `--set`,',
    'then flags. Example: [examples/sft-arithmetic.yaml](../examples/sft-arithmetic.yaml).',
  ],
};

/** A section's anchor in the reference: `grpo-training`, `r1-stages-cold_start_sft`. */
export function anchorOf(kind: RecipeKind, path: string): string {
  return path === '' ? `${kind}-top` : `${kind}-${path.replace(/\[\]/g, '').replace(/\./g, '-')}`;
}

function formatNumber(x: number): string {
  if (x !== 0 && Math.abs(x) < 1e-3)
    return x
      .toExponential()
      .replace(/\.?0*e/, 'e')
      .replace('e-0', 'e-');
  return String(x);
}

/** A value as a recipe writes it, on one line (flow YAML). */
export function flowValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string')
    return /^[A-Za-z0-9_./+-]+$/.test(v) && !/^(true|false|null|[-+.\d])/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(flowValue).join(', ')}]`;
  if (typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}: ${flowValue(x)}`)
      .join(', ')}}`;
  return String(v);
}

const cell = (s: string) => s.replace(/\n/g, ' ').replace(/\|/g, '\\|');
const code = (s: string) => `\`${s}\``;

function typeCell(n: SchemaNode): string {
  if (n.codeOnly) return 'function (in code only)';
  if (n.values) return n.values.map((v) => code(String(v))).join(', ') + (n.nullable ? ', null' : '');
  if (n.kind === 'array' && n.element?.values)
    return `list of ${n.element.values.map((v) => code(String(v))).join(', ')}`;
  return n.type.split(' | ').join(' or ');
}

function defaultCell(n: SchemaNode): string {
  if (n.required) return '**required**';
  if (!n.hasDefault) return '—';
  const d = n.default;
  if (n.fields && typeof d === 'object' && d !== null && Object.keys(d).length > 0) return "fields' defaults";
  return code(flowValue(d));
}

function trlCell(d: FieldDoc | undefined): string {
  if (!d?.trl) return '';
  // A bare name or call is code; a phrase stays text (with its own backticks, if any).
  return /^[A-Za-z_][\w.]*(\([^)]*\))?$/.test(d.trl) ? code(d.trl) : d.trl;
}

interface Ctx {
  tree: RecipeTree;
  out: string[];
}

function describeRef(kind: RecipeKind, p: string, ctx: Ctx): string {
  const ref = ctx.tree.refs[p];
  if (!ref) return '';
  const target = ref.path === '' ? TITLES[ref.kind] : `${TITLES[ref.kind]} › ${code(ref.path)}`;
  const but = ref.omit && ref.omit.length > 0 ? ` except ${ref.omit.map(code).join(', ')}` : '';
  return ` Fields: those of [${target}](#${anchorOf(ref.kind, ref.path)})${but}.`;
}

function sectionRows(kind: RecipeKind, path: string, node: SchemaNode, ctx: Ctx): void {
  const sft = kind === 'sft';
  ctx.out.push(
    sft
      ? '| option | flag | type | default | meaning | TRL / transformers |'
      : '| field | type | default | meaning | TRL / transformers |',
  );
  ctx.out.push(sft ? '| --- | --- | --- | --- | --- | --- |' : '| --- | --- | --- | --- | --- |');
  for (const [k, n] of Object.entries(node.fields ?? {})) {
    const p = joinPath([...splitPath(path), k]);
    const d = fieldDoc(kind, p);
    let meaning = d?.doc ?? '';
    const sub = n.fields ? p : n.element?.fields ? `${p}[]` : undefined;
    if (ctx.tree.refs[p]) meaning += describeRef(kind, p, ctx);
    else if (sub !== undefined) meaning += ` Fields: [${code(sub)}](#${anchorOf(kind, sub)}).`;
    const cells = [code(k), ...(sft ? [code(optionFlag(k))] : []), typeCell(n), defaultCell(n), meaning, trlCell(d)];
    ctx.out.push(`| ${cells.map(cell).join(' | ')} |`);
  }
}

function sections(kind: RecipeKind, path: string, node: SchemaNode, ctx: Ctx, depth: number): void {
  for (const [k, n] of Object.entries(node.fields ?? {})) {
    const p = joinPath([...splitPath(path), k]);
    if (ctx.tree.refs[p]) continue;
    const sub = n.fields ? { path: p, node: n } : n.element?.fields ? { path: `${p}[]`, node: n.element } : undefined;
    if (!sub) continue;
    ctx.out.push('', `<a id="${anchorOf(kind, sub.path)}"></a>`, '', `${'#'.repeat(depth)} ${code(sub.path)}`, '');
    const d = fieldDoc(kind, p);
    if (d) ctx.out.push(d.doc, '');
    sectionRows(kind, sub.path, sub.node, ctx);
    sections(kind, sub.path, sub.node, ctx, depth);
  }
}

function rewardOptions(out: string[]): void {
  out.push('', `<a id="grpo-reward-options"></a>`, '', '### Reward options', '');
  out.push(
    "A built-in reward's `options` (`rewards: [{ name: format, options: { mode: think } }]`); an unknown option is an",
    'error naming it.',
  );
  for (const [name, tree] of Object.entries(rewardOptionTrees())) {
    const docs = REWARD_OPTION_DOCS[name];
    out.push('', `#### ${code(name)}`, '', docs?.about ?? '', '');
    out.push('| option | type | default | meaning |', '| --- | --- | --- | --- |');
    for (const [k, n] of Object.entries(tree.fields ?? {})) {
      const cells = [code(k), typeCell(n), defaultCell(n), docs?.options[k]?.doc ?? ''];
      out.push(`| ${cells.map(cell).join(' | ')} |`);
    }
  }
}

/** The whole reference, as Markdown. */
export function recipeReference(): string {
  const out: string[] = [
    '# Recipe reference',
    '',
    '<!-- Generated by src/config/recipeReference.ts from the recipe schemas and src/config/recipeFieldDocs.ts.',
    '     Do not edit: change those, then run `npm run docs:recipes`. -->',
    '',
    'Every field of the recipes of `aha grpo` and `aha r1` and every option of `aha sft`: type, default, meaning, and the',
    'Hugging Face TRL / transformers setting it corresponds to. Types, defaults and allowed values are read from the',
    'schemas that validate the recipes, so this page cannot fall behind them.',
    '',
    "- Recipes are YAML or JSON. Relative paths in a recipe resolve against the recipe file's directory.",
    '- A field the schema does not know is an error naming it: a misspelt option would otherwise fall back to its',
    '  default without a word.',
    '- `--set path=value` (repeatable) overrides one field from the command line before validation: dotted paths,',
    '  list items by index (`--set grpo.beta=0.04 --set training.max_steps=10 --set rewards.0.weight=2`). The value is',
    '  read as YAML: `10`, `1.0e-4`, `true`, `null`, `[a, b]`, `{mode: think}`; anything else is a string. A path value',
    '  (model, dataset.path, ...) is relative to the working directory, as on any command line. `--resume` with `--set`',
    '  follows the resume rules of each command, the same as an edited recipe.',
    '- Examples that run as they are: [examples/](../examples/).',
    '',
    `Contents: ${(['grpo', 'r1', 'sft'] as const).map((k) => `[${TITLES[k]}](#${anchorOf(k, '')})`).join(', ')}.`,
  ];
  for (const kind of ['grpo', 'r1', 'sft'] as const) {
    const tree = recipeTree(kind);
    const ctx: Ctx = { tree, out };
    out.push('', `<a id="${anchorOf(kind, '')}"></a>`, '', `## ${TITLES[kind]}`, '', ...INTROS[kind], '');
    sectionRows(kind, '', tree.root, ctx);
    if (kind === 'grpo') {
      // Reward options right after the reward list they belong to.
      const { dataset, rewards, ...rest } = tree.root.fields!;
      sections(kind, '', { ...tree.root, fields: { dataset, rewards } }, ctx, 3);
      rewardOptions(out);
      sections(kind, '', { ...tree.root, fields: rest }, ctx, 3);
    } else sections(kind, '', tree.root, ctx, 3);
  }
  return out.join('\n') + '\n';
}

/** Paths of fields (in `kind`'s tree and the reward options) that have no description. */
export function undocumentedFields(): { kind: RecipeKind | 'reward'; path: string }[] {
  const missing: { kind: RecipeKind | 'reward'; path: string }[] = [];
  for (const kind of ['grpo', 'r1', 'sft'] as const)
    for (const [p] of walkFields(recipeTree(kind))) if (!fieldDoc(kind, p)) missing.push({ kind, path: p });
  for (const [name, tree] of Object.entries(rewardOptionTrees()))
    for (const k of Object.keys(tree.fields ?? {}))
      if (!REWARD_OPTION_DOCS[name]?.options[k]) missing.push({ kind: 'reward', path: `${name}.${k}` });
  return missing;
}

/** Descriptions whose field no schema has any more (a renamed or removed field). */
export function staleFieldDocs(docs: Record<RecipeKind, Record<string, FieldDoc>>): { kind: string; path: string }[] {
  const stale: { kind: string; path: string }[] = [];
  for (const kind of ['grpo', 'r1', 'sft'] as const) {
    const paths = walkFields(recipeTree(kind)).map(([p]) => p);
    for (const key of Object.keys(docs[kind])) {
      const re = new RegExp(`^${key.replace(/[.[\]]/g, '\\$&').replace(/\*/g, '[^.]+')}$`);
      if (!paths.some((p) => re.test(p))) stale.push({ kind, path: key });
    }
  }
  const trees = rewardOptionTrees();
  for (const [name, d] of Object.entries(REWARD_OPTION_DOCS))
    for (const k of Object.keys(d.options))
      if (!trees[name]?.fields?.[k]) stale.push({ kind: 'reward', path: `${name}.${k}` });
  return stale;
}

function firstSentence(doc: string): string {
  const plain = doc.replace(/\[([^\]]+)\]\([^)]*\)/g, '$1').replace(/`/g, '');
  const m = /^(.*?[a-z)]\.)(\s|$)/.exec(plain);
  return (m ? m[1] : plain).replace(/\.$/, '');
}

/** `text` in lines of at most `room` characters, broken between words. */
function wrap(text: string, room: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/**
 * The text `aha grpo|r1|sft --help` ends with: where the reference is, and the recipe's top-level fields (sft: how
 * options are layered), each with its type and the first words of its meaning.
 */
export function recipeHelpText(kind: RecipeKind, width = Math.min(process.stdout.columns || 80, 100)): string {
  const file = recipeReferenceFile();
  const rel = relative(process.cwd(), file);
  const where = !existsSync(file) ? RECIPE_REFERENCE_PATH : rel.startsWith('..') ? file : rel;
  const lines: string[] = [''];
  if (kind === 'sft') {
    lines.push(
      'Options also come from --config FILE (YAML/JSON, the keys above with underscores; relative paths resolve',
      'against the file) and from --set key=value (repeatable, read as YAML); flags win over both.',
    );
  } else {
    lines.push('Recipe fields (top level):');
    const tree = recipeTree(kind);
    for (const [k, n] of Object.entries(tree.root.fields ?? {})) {
      const d = fieldDoc(kind, k);
      const count = n.fields ? ` (${Object.keys(n.fields).length} fields)` : '';
      const head = `  ${k.padEnd(18)} `;
      const text = wrap(`${firstSentence(d?.doc ?? '')}${count}`, width - head.length);
      lines.push(...text.map((l, i) => (i === 0 ? head : ' '.repeat(head.length)) + l));
    }
    const ex =
      kind === 'grpo'
        ? '--set grpo.beta=0.04 --set training.max_steps=10 --set rewards.0.weight=2'
        : '--set stages.reasoning_rl.training.max_steps=10 --set eval.problems=50';
    lines.push('', `Override any field: ${ex}`);
  }
  lines.push(`Every field, its type, default and TRL name: ${where}#${anchorOf(kind, '')}`);
  lines.push(`Examples: ${where.replace(/docs\/recipes\.md$/, 'examples/')}`);
  return lines.join('\n');
}
