// Element types of weight storage. Trained tensors are always float32; frozen ones (a LoRA base, a model used only for
// sampling or evaluation) may stay in the 16-bit type of their checkpoint, and every product widens them on the fly,
// so a result equals float32 math on the rounded weights.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace aha {

enum class DType : uint8_t { F32, BF16, F16 };

inline size_t dtypeBytes(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtypeName(DType t) { return t == DType::F32 ? "f32" : t == DType::BF16 ? "bf16" : "f16"; }
inline DType dtypeFromName(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "f16" || s == "float16") return DType::F16;
  throw std::runtime_error("unknown weight dtype '" + s + "' (f32, bf16 or f16)");
}

// A weight tensor of any dtype: the start of its elements and their type.
struct WeightRef {
  const void* p = nullptr;
  DType t = DType::F32;
  WeightRef() = default;
  WeightRef(const float* f) : p(f), t(DType::F32) {}  // NOLINT: a float32 pointer is a weight of that type
  WeightRef(const void* ptr, DType type) : p(ptr), t(type) {}
  bool isF32() const { return t == DType::F32; }
  const float* f32() const { return static_cast<const float*>(p); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(p); }
  // The weight `elements` further on.
  WeightRef at(size_t elements) const { return {static_cast<const char*>(p) + elements * dtypeBytes(t), t}; }
};

inline float bf16ToFloat(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even, as torch's .to(torch.bfloat16); NaN stays a (quiet) NaN.
inline uint16_t floatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
// IEEE half precision, exactly (subnormals and infinities included).
inline float f16ToFloat(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = man;
      do {
        e++;
        m <<= 1;
      } while ((m & 0x400u) == 0);
      u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even; overflow becomes infinity, as torch's .half().
inline uint16_t floatToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);   // NaN
  if (u >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520: infinity
  if (u < 0x38800000u) {                                    // below the smallest normal half: subnormal or zero
    if (u < 0x33000000u) return (uint16_t)sign;             // under half the smallest subnormal
    const uint32_t e = u >> 23, m = (u & 0x7fffffu) | 0x800000u;
    const int shift = 126 - (int)e;  // the result counts units of 2^-24, the smallest subnormal
    const uint32_t q = m >> (shift - 0), rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    uint32_t r = q;
    if (rem > half || (rem == half && (q & 1u))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = u - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return (uint16_t)(sign | (r >> 13));
}

inline float toFloat(uint16_t h, DType t) { return t == DType::BF16 ? bf16ToFloat(h) : f16ToFloat(h); }
inline uint16_t fromFloat(float f, DType t) { return t == DType::BF16 ? floatToBf16(f) : floatToF16(f); }

}  // namespace aha
