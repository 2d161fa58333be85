// Prints "yes" when Open MPI's compiler wrapper and headers are installed (libopenmpi-dev), else "no"; with an
// argument, prints the flags binding.gyp needs: "incdirs" (include directories) or "libs". The aha_mpi addon (the
// collectives of data-parallel training) is built only where this finds MPI; the engine never needs it.
const { execFileSync } = require('node:child_process');
function showme(what) {
  try {
    return execFileSync('mpicxx', [`--showme:${what}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}
const arg = process.argv[2];
const compile = showme('compile');
if (!arg) process.stdout.write(compile !== null && process.env.AHA_NO_MPI !== '1' ? 'yes' : 'no');
else if (arg === 'incdirs') process.stdout.write(showme('incdirs') ?? '');
else if (arg === 'libs') process.stdout.write((showme('link') ?? '').replace(/-lmpi_cxx\s*/, ''));
