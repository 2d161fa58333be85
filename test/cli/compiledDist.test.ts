/**
 * The compiled JavaScript in dist/: `npm run build` (scripts/build-dist.js) compiles src/ and stamps dist/ with the
 * digest of the sources, and bin/aha.js runs dist/ only while the stamp matches them (bin/freshDist.js), else src/
 * through tsx. Checked on a small copy of the layout (bin/, scripts/, the tsconfigs, a src/ of two files), so the
 * outcome does not depend on whether this checkout's dist/ is built or current.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DIGEST_FILE, freshDist, sourceDigest } from '../../bin/freshDist.js';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'aha-dist-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function write(root: string, rel: string, text: string): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}

test('the digest covers every source file and nothing else; a stale or missing stamp is not fresh', () => {
  const root = join(dir, 'digest');
  write(root, 'src/a.ts', 'export const a = 1;\n');
  write(root, 'src/sub/b.ts', 'export const b = 2;\n');
  write(root, 'src/notes.md', 'not a source\n');
  write(root, 'dist/cli/main.js', '');
  const d0 = sourceDigest(root);
  assert.equal(freshDist(root, 'cli/main.js'), null, 'no stamp');
  writeFileSync(join(root, 'dist', DIGEST_FILE), d0 + '\n');
  assert.equal(freshDist(root, 'cli/main.js'), join(root, 'dist', 'cli/main.js'));
  assert.equal(freshDist(root, 'index.js'), null, 'entry not built');
  write(root, 'src/notes.md', 'edited, still not a source\n');
  assert.equal(sourceDigest(root), d0);
  write(root, 'src/sub/b.ts', 'export const b = 3;\n');
  assert.notEqual(sourceDigest(root), d0);
  assert.equal(freshDist(root, 'cli/main.js'), null, 'a source edited');
  write(root, 'src/sub/b.ts', 'export const b = 2;\n');
  assert.equal(sourceDigest(root), d0);
  write(root, 'src/c.ts', '');
  assert.equal(freshDist(root, 'cli/main.js'), null, 'a source added');
  unlinkSync(join(root, 'src/c.ts'));
  unlinkSync(join(root, 'src/a.ts'));
  assert.notEqual(sourceDigest(root), d0, 'a source removed');
});

test('npm run build, then bin/aha.js runs dist/ until a source changes (type errors do not stop the build)', () => {
  const root = join(dir, 'pkg');
  for (const f of ['bin/aha.js', 'bin/freshDist.js', 'scripts/build-dist.js', 'tsconfig.json', 'tsconfig.build.json']) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    copyFileSync(join(repo, f), join(root, f));
  }
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'p', type: 'module' }));
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
  // main.ts says which file ran; util.ts has a type error, which tsc reports and compiles all the same.
  write(root, 'src/util.ts', "export const where = (url: string) => (url.endsWith('.ts') ? 'src' : 'dist');\n");
  write(root, 'src/bad.ts', "export const n: number = 'not a number';\n");
  write(
    root,
    'src/cli/main.ts',
    "import { where } from '../util.ts';\nprocess.stdout.write(where(import.meta.url) + ' ' + process.argv[2]);\n",
  );
  const aha = (env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [join(root, 'bin/aha.js'), 'x'], {
      encoding: 'utf8',
      env: { ...process.env, AHA_FROM_SOURCE: '', ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  assert.equal(aha(), 'src x', 'not built yet');

  const b = spawnSync(process.execPath, [join(root, 'scripts/build-dist.js')], { cwd: root, encoding: 'utf8' });
  assert.equal(b.status, 0, b.stdout + b.stderr);
  assert.match(b.stderr, /type errors in src\/ .*emitted all the same/);
  assert.ok(existsSync(join(root, 'dist/cli/main.js')) && existsSync(join(root, 'dist/util.d.ts')));
  assert.equal(readFileSync(join(root, 'dist', DIGEST_FILE), 'utf8').trim(), sourceDigest(root));
  // Imports between sources point at the compiled files.
  assert.match(readFileSync(join(root, 'dist/cli/main.js'), 'utf8'), /from "\.\.\/util\.js"/);
  assert.equal(aha(), 'dist x');
  assert.equal(aha({ AHA_FROM_SOURCE: '1' }), 'src x');

  write(root, 'src/util.ts', "export const where = (url: string) => (url.endsWith('.ts') ? 'src' : 'dist') + '!';\n");
  assert.equal(aha(), 'src! x', 'an edited source runs from src/');
});
