// Prints the linker flags for OpenBLAS. The OpenMP build is preferred: the engine's own kernels use OpenMP,
// and OpenBLAS's pthread pool would otherwise spin against them on the same cores.
const { existsSync } = require('node:fs');
const candidates = [
  '/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0',
];
const found = candidates.find((p) => existsSync(p));
if (found) {
  const dir = require('node:path').dirname(found);
  process.stdout.write(`${found} -Wl,-rpath,${dir}`);
} else {
  process.stdout.write('-lopenblas');
}
