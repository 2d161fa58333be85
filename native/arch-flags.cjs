// The addon is compiled on the machine that installs it (node-gyp at `npm ci`), so tuning for the host CPU is
// safe and buys AVX2/AVX-512 in the engine's own loops. AHA_PORTABLE=1 builds for generic x86-64 instead
// (for images built on one machine and run on another); AHA_MARCH=NAME builds for a named CPU (e.g. znver3 for an
// AVX2-only image, or to test the AVX2 kernels on an AVX-512 machine).
const march = process.env.AHA_MARCH;
if (march !== undefined && !/^[a-z0-9_.-]+$/i.test(march)) throw new Error(`AHA_MARCH=${march}: not a CPU name`);
process.stdout.write(march ? `-march=${march}` : process.env.AHA_PORTABLE === '1' ? '-mtune=generic' : '-march=native');
