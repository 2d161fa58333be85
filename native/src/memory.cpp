#include "memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>

namespace aha {

namespace {

// A single number from a cgroup file ("max" and unreadable files mean no limit).
size_t readCgroupValue(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return std::numeric_limits<size_t>::max();
  try {
    return (size_t)std::stoull(s);
  } catch (...) {
    return std::numeric_limits<size_t>::max();
  }
}

}  // namespace

size_t availableMemoryBytes() {
  size_t avail = 0;
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") {
      avail = kb * 1024;
      break;
    }
  }
  if (avail == 0) avail = (size_t)sysconf(_SC_AVPHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  // cgroup v2, then v1: a container's limit can be far below the host's memory.
  const size_t limit2 = readCgroupValue("/sys/fs/cgroup/memory.max");
  if (limit2 != std::numeric_limits<size_t>::max()) {
    const size_t used = readCgroupValue("/sys/fs/cgroup/memory.current");
    if (used != std::numeric_limits<size_t>::max()) avail = std::min(avail, limit2 > used ? limit2 - used : 0);
  } else {
    const size_t limit1 = readCgroupValue("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    const size_t used1 = readCgroupValue("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    if (limit1 < ((size_t)1 << 60) && used1 != std::numeric_limits<size_t>::max())
      avail = std::min(avail, limit1 > used1 ? limit1 - used1 : 0);
  }
  return avail;
}

std::string formatBytes(double bytes) {
  char buf[64];
  if (bytes >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

void requireMemory(size_t bytes, const std::string& what) {
  // Small buffers are not worth a /proc read; they cannot decide whether a model fits.
  if (bytes < ((size_t)64 << 20)) return;
  const size_t avail = availableMemoryBytes();
  if (bytes > avail)
    throw std::runtime_error("out of memory: " + what + " needs " + formatBytes((double)bytes) + ", " +
                             formatBytes((double)avail) + " available");
}

void* allocLarge(size_t bytes) {
  constexpr size_t kHuge = size_t(1) << 21;
  void* p = nullptr;
  if (bytes >= kHuge) {
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    p = std::aligned_alloc(kHuge, rounded);
    // Advice, not a requirement: where huge pages are off (or madvise fails) the buffer is ordinary memory.
    if (p) madvise(p, rounded, MADV_HUGEPAGE);
  } else {
    p = std::malloc(bytes > 0 ? bytes : 1);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

template <class T>
static std::shared_ptr<LargeVector<T>> allocZeroed(size_t n, const std::string& what) {
  if (n > std::numeric_limits<size_t>::max() / sizeof(T))
    throw std::runtime_error("out of memory: " + what + " asks for " + std::to_string(n) + " elements");
  requireMemory(n * sizeof(T), what);
  try {
    return std::make_shared<LargeVector<T>>(n, T(0));
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory: " + what + " needs " + formatBytes((double)sizeof(T) * (double)n) +
                             ", allocation failed");
  } catch (const std::length_error&) {
    throw std::runtime_error("out of memory: " + what + " asks for " + std::to_string(n) + " elements");
  }
}

std::shared_ptr<LargeVector<float>> allocFloats(size_t n, const std::string& what) {
  return allocZeroed<float>(n, what);
}
std::shared_ptr<LargeVector<uint16_t>> allocHalves(size_t n, const std::string& what) {
  return allocZeroed<uint16_t>(n, what);
}

}  // namespace aha
