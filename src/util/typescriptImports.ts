/**
 * TypeScript for `import()` of a user's module (a reward beside a recipe). Running from src/, aha already has tsx's
 * loaders (bin/aha.js registers them, tests run under `--import tsx`); running the compiled dist/, it starts without
 * them, since they are most of a short command's start-up, and registers them here, on the first such import.
 */
let registered: Promise<void> | undefined;

/** Makes TypeScript modules importable in this thread (once; a no-op when aha itself runs as TypeScript). */
export function ensureTypeScriptImports(): Promise<void> {
  if (import.meta.url.endsWith('.ts')) return Promise.resolve();
  registered ??= (async () => {
    (await import('tsx/esm/api')).register();
    (await import('tsx/cjs/api')).register();
  })();
  return registered;
}
