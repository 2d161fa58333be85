// The layout's rules, checked on the source: nothing below the CLI imports the CLI (trainers report progress as
// events), and the module graph has no cycles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const src = resolve(import.meta.dirname, '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of each file (static `import ... from`, `export ... from` and `import()`), resolved to paths. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(src)) {
    const text = readFileSync(f, 'utf8');
    const deps = [
      ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g),
    ].map((m) => resolve(dirname(f), m[1] ?? m[2]));
    g.set(f, deps);
  }
  return g;
}

const rel = (p: string) => relative(src, p);

test('no module outside src/cli imports from src/cli', () => {
  const offenders: string[] = [];
  for (const [f, deps] of importGraph()) {
    if (rel(f).startsWith('cli/')) continue;
    for (const d of deps) if (rel(d).startsWith('cli/')) offenders.push(`${rel(f)} -> ${rel(d)}`);
  }
  assert.deepEqual(offenders, []);
});

test('the import graph of src has no cycle', () => {
  const g = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of g.get(f) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
