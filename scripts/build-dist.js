// `npm run build` (also run by `npm ci` / `npm install` as `prepare`): compiles src/ to dist/ with tsc
// (tsconfig.build.json: same layout, .ts imports rewritten to .js, declarations for the library entry), then stamps
// dist/ with the digest of the sources it came from, so that bin/aha.js runs it only while it matches them.
// Without TypeScript (a production install) or when tsc emits nothing, dist/ is left out and aha runs from src/.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIGEST_FILE, sourceDigest } from '../bin/freshDist.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist');
const say = (s) => process.stderr.write(`aha build: ${s}\n`);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  say('TypeScript is not installed (a production install?): no dist/, aha runs from src/ through tsx');
  process.exit(0);
}
// The digest of the sources as they are before compiling: an edit during the build leaves dist/ stale, not stamped.
const digest = sourceDigest(root);
rmSync(dist, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
// tsc's exit status 2: type errors, JavaScript emitted all the same (`npm run typecheck` is the place for them).
if (r.status === 2) say('type errors in src/ (see `npm run typecheck`); the JavaScript was emitted all the same');
else if (r.status !== 0) {
  process.stderr.write(r.stdout + r.stderr);
  rmSync(dist, { recursive: true, force: true });
  say(`tsc failed (exit ${r.status ?? r.signal}): no dist/, aha runs from src/ through tsx`);
  process.exit(process.env.npm_lifecycle_event === 'prepare' ? 0 : 1);
}
writeFileSync(join(dist, DIGEST_FILE), digest + '\n');
say('dist/ built from src/');
