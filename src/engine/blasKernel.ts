import { readFileSync } from 'node:fs';

/**
 * Picks the OpenBLAS kernel for this CPU. Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back
 * to a slow generic kernel (about 21 GFLOP/s a core instead of about 135 measured here), and some environments pin
 * OPENBLAS_CORETYPE to an older kernel. OpenBLAS reads the variable once, when the library loads, so this must run
 * before the native addon is loaded. AHA_OPENBLAS_CORETYPE overrides the choice ("keep" leaves the environment as
 * it is).
 */
export function chooseBlasKernel(cpuFlags: Set<string>): string | undefined {
  const has = (...f: string[]) => f.every((x) => cpuFlags.has(x));
  if (has('avx512f', 'avx512bw', 'avx512vl', 'avx512dq')) return 'SKYLAKEX';
  if (has('avx2', 'fma')) return 'HASWELL';
  return undefined;
}

function cpuFlags(): Set<string> {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags'));
    return new Set(line ? line.split(':')[1].trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** Sets OPENBLAS_CORETYPE for this process; returns the kernel requested (or undefined when left alone). */
export function configureBlasKernel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const override = env.AHA_OPENBLAS_CORETYPE;
  if (override === 'keep') return env.OPENBLAS_CORETYPE;
  const kernel = override || chooseBlasKernel(cpuFlags());
  if (kernel) env.OPENBLAS_CORETYPE = kernel;
  return kernel;
}
