// Run-time choice of a compile-time tile. A tiled product's full tiles are MR x NR, but its edges are smaller, and
// each size is its own instantiation (the accumulators must be registers, so the sizes must be constants).
#pragma once
#include <array>
#include <utility>

namespace aha::cpu {

namespace detail {
template <class Kernel, int NR, int M, int... N>
constexpr std::array<typename Kernel::Fn, NR> tileRow(std::integer_sequence<int, N...>) {
  return {&Kernel::template run<M, N + 1>...};
}
template <class Kernel, int MR, int NR, int... M>
constexpr std::array<std::array<typename Kernel::Fn, NR>, MR> tileTable(std::integer_sequence<int, M...>) {
  return {tileRow<Kernel, NR, M + 1>(std::make_integer_sequence<int, NR>{})...};
}
}  // namespace detail

// Kernel::run<mr, nr> for 1 <= mr <= MR, 1 <= nr <= NR. Kernel is a struct with a function-pointer type Fn and a
// static member template run<MR, NR> of that type.
template <class Kernel, int MR, int NR>
typename Kernel::Fn pickTile(int mr, int nr) {
  static constexpr auto table = detail::tileTable<Kernel, MR, NR>(std::make_integer_sequence<int, MR>{});
  return table[mr - 1][nr - 1];
}

}  // namespace aha::cpu
