// Whether dist/ holds the compiled JavaScript of exactly the sources in src/: `npm run build` (which `npm ci` and
// `npm install` run) writes dist/.source-digest last, a digest of every src/**/*.ts taken before compiling, and
// bin/aha.js runs dist/ only while that digest is still the sources'. An edit to any source, a file added or
// removed, a build that failed or is still running: the digests differ and aha runs src/ through tsx.
// Plain JavaScript, loaded before any TypeScript loader; about 15 ms for the whole tree.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file under dist/ that holds the digest of the sources it was built from. */
export const DIGEST_FILE = '.source-digest';

/** A digest of src/**\/*.ts under `root`: their paths and contents (not their times: a package's files keep none). */
export function sourceDigest(root) {
  const files = [];
  const walk = (rel) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) files.push(path);
    }
  };
  walk('src');
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

/** dist/'s `entry` (e.g. 'cli/main.js') under `root` when dist/ is built from the current sources, else null. */
export function freshDist(root, entry) {
  try {
    const stamp = readFileSync(join(root, 'dist', DIGEST_FILE), 'utf8').trim();
    const path = join(root, 'dist', entry);
    return existsSync(path) && stamp === sourceDigest(root) ? path : null;
  } catch {
    return null;
  }
}
