/**
 * How each language is built and run inside the sandbox. Python and JavaScript run through a small launcher that
 * compiles the source first and exits 97 on a syntax error, so a syntax error is a `compile_error` at no extra
 * run; C++ is compiled once by g++ (inside the sandbox too) and the binary run per test.
 */
import { existsSync } from 'node:fs';
import { AhaError } from '../errors.ts';
import { prefixOutsideUsr } from './sandbox.ts';
import type { Language } from './types.ts';

/** Exit status of the launchers when the source does not compile. */
export const SYNTAX_ERROR_EXIT = 97;

const PYTHON_LAUNCHER = `import sys
path = sys.argv[1]
with open(path, encoding='utf-8') as f:
    src = f.read()
try:
    code = compile(src, 'main.py', 'exec')
except (SyntaxError, ValueError) as e:
    sys.stderr.write(f'{type(e).__name__}: {e}\\n')
    sys.exit(${SYNTAX_ERROR_EXIT})
sys.argv = sys.argv[1:]
del f, src
exec(code, {'__name__': '__main__', '__file__': path, '__builtins__': __builtins__})
`;

const JS_LAUNCHER = `'use strict';
const fs = require('fs');
const vm = require('vm');
const Module = require('module');
const file = process.argv[2];
try {
  new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file });
} catch (e) {
  if (e instanceof SyntaxError) {
    process.stderr.write(String((e && e.stack) || e).split('\\n').slice(0, 6).join('\\n') + '\\n');
    process.exit(${SYNTAX_ERROR_EXIT});
  }
  throw e;
}
process.argv.splice(1, 1);
require(file);
`;

/** A language as the judge uses it. */
export interface LanguageSpec {
  /** Name of the source file in the run directory. */
  source: string;
  /** Files written beside the source (the launcher). */
  support: Record<string, string>;
  /** The compile command, for compiled languages. */
  compile?: (dir: string) => string[];
  /** The run command, given the run directory and the source file to run (for assertion tests, program + test). */
  run: (dir: string, source: string, memoryMb: number) => string[];
  /** MiB of address space the runtime needs beyond the memory limit (V8 reserves about 1 GiB up front). */
  addressSpaceExtraMb: number;
  /** Host paths outside /usr the runtime needs, bound read-only. */
  roBinds: string[];
}

function requireExecutable(path: string, what: string): string {
  if (!existsSync(path)) throw new AhaError(`the judge needs ${what} at ${path} (the sandbox shows only /usr)`);
  return path;
}

/** The spec of `language`; throws an AhaError when its runtime is missing. */
export function languageSpec(language: Language): LanguageSpec {
  if (language === 'python') {
    const python = requireExecutable('/usr/bin/python3', 'Python 3');
    return {
      source: 'main.py',
      support: { 'launch.py': PYTHON_LAUNCHER },
      run: (dir, source) => [python, '-I', '-B', `${dir}/launch.py`, `${dir}/${source}`],
      addressSpaceExtraMb: 0,
      roBinds: [],
    };
  }
  if (language === 'javascript') {
    const node = process.execPath;
    const prefix = prefixOutsideUsr(node);
    return {
      source: 'main.js',
      support: { 'launch.js': JS_LAUNCHER },
      run: (dir, source, memoryMb) => [
        node,
        `--max-old-space-size=${memoryMb}`,
        `${dir}/launch.js`,
        `${dir}/${source}`,
      ],
      addressSpaceExtraMb: 1024,
      roBinds: prefix ? [prefix] : [],
    };
  }
  const gxx = requireExecutable('/usr/bin/g++', 'g++');
  return {
    source: 'main.cpp',
    support: {},
    compile: (dir) => [gxx, '-std=c++17', '-O2', '-pipe', '-o', `${dir}/main`, `${dir}/main.cpp`],
    run: (dir) => [`${dir}/main`],
    addressSpaceExtraMb: 0,
    roBinds: [],
  };
}

/** The language a fenced code block's info string names (```python, ```js, ```cpp ...), or null. */
export function languageOfFence(info: string): Language | null {
  const tag = info.trim().toLowerCase().split(/\s+/)[0] ?? '';
  if (['python', 'python3', 'py'].includes(tag)) return 'python';
  if (['javascript', 'js', 'node', 'nodejs'].includes(tag)) return 'javascript';
  if (['cpp', 'c++', 'cxx', 'cc'].includes(tag)) return 'cpp';
  return null;
}
