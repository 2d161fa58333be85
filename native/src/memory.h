// Memory the engine may still take, and allocation that fails with a message instead of the OOM killer. Linux
// overcommits: a vector of 20 GB "succeeds" and the process dies later while touching it, so every large buffer is
// checked against what the machine (or its cgroup) can really give before it is allocated.
#pragma once
#include <cstddef>
#include <cstdint>
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

// A zero-filled float buffer of n elements, checked by requireMemory first; std::bad_alloc becomes the same message.
std::shared_ptr<std::vector<float>> allocFloats(size_t n, const std::string& what);
// The same for 16-bit elements (weights kept in bf16 or f16).
std::shared_ptr<std::vector<uint16_t>> allocHalves(size_t n, const std::string& what);

}  // namespace aha
