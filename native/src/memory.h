// Memory the engine may still take, and allocation that fails with a message instead of the OOM killer. Linux
// overcommits: a vector of 20 GB "succeeds" and the process dies later while touching it, so every large buffer is
// checked against what the machine (or its cgroup) can really give before it is allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace aha {

// Bytes that can be allocated without swapping: MemAvailable, capped by the cgroup's limit when there is one.
size_t availableMemoryBytes();

// "4.68 GB"
std::string formatBytes(double bytes);

// Throws std::runtime_error naming `what`, the bytes it needs and the bytes available when it does not fit.
void requireMemory(size_t bytes, const std::string& what);

// Memory for a large buffer: aligned to 2 MiB and marked for transparent huge pages when it spans at least one, so
// that streaming it (decode reads every weight once per token) walks one page-table entry per 2 MiB instead of per
// 4 KiB (measured: 17-29 GB/s against 13-19 GB/s for a 2-thread pass over 52 MB of bf16 weights on a Zen 4 EPYC, whose
// kernel gives huge pages only on request). std::bad_alloc when it fails; freed with std::free.
void* allocLarge(size_t bytes);

template <class T>
struct LargeAllocator {
  using value_type = T;
  LargeAllocator() = default;
  template <class U>
  LargeAllocator(const LargeAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocLarge(n * sizeof(T))); }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const LargeAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const LargeAllocator<U>&) const {
    return false;
  }
};
template <class T>
using LargeVector = std::vector<T, LargeAllocator<T>>;

// A zero-filled float buffer of n elements, checked by requireMemory first; std::bad_alloc becomes the same message.
std::shared_ptr<LargeVector<float>> allocFloats(size_t n, const std::string& what);
// The same for 16-bit elements (weights kept in bf16 or f16).
std::shared_ptr<LargeVector<uint16_t>> allocHalves(size_t n, const std::string& what);

}  // namespace aha
