// Which backend this build runs on: binding.gyp's aha_backend variable compiles one backend's sources and defines
// its AHA_BACKEND_* macro; a new backend adds its branch here.
#include "backend.h"

#if defined(AHA_BACKEND_CPU)
#include "cpu/cpuBackend.h"
#else
#error "no engine backend selected: build with the gyp variable aha_backend (e.g. aha_backend=cpu)"
#endif

namespace aha {

Backend& defaultBackend() {
  // The backends keep no per-call state, so one instance serves every model.
#if defined(AHA_BACKEND_CPU)
  static cpu::CpuBackend backend;
#endif
  return backend;
}

}  // namespace aha
