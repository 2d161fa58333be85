// The addon is compiled on the machine that installs it (node-gyp at `npm ci`), so tuning for the host CPU is
// safe and buys AVX2/AVX-512 in the engine's own loops. AHA_PORTABLE=1 builds for generic x86-64 instead
// (for images built on one machine and run on another).
process.stdout.write(process.env.AHA_PORTABLE === '1' ? '-mtune=generic' : '-march=native');
