// Helpers shared by the comm tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "dtrain/comm/communicator.h"

namespace dtrain::testing_util {

// Deterministic test value for (rank, index). Floating-point values span
// several orders of magnitude across ranks, so that a sum in any other order
// than rank order would (almost surely) round differently somewhere.
template <class T>
T test_value(int rank, std::size_t i, std::uint64_t seed = 0) {
  std::uint64_t h = (static_cast<std::uint64_t>(rank) + 1) * 0x9E3779B97F4A7C15ULL ^
                    (static_cast<std::uint64_t>(i) + seed) * 0xC2B2AE3D27D4EB4FULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  if constexpr (std::is_floating_point_v<T>) {
    const double unit = static_cast<double>(h >> 11) / 9007199254740992.0;  // [0, 1)
    const double scale = static_cast<double>(1 << (rank % 7)) / 8.0;
    return static_cast<T>((unit - 0.5) * scale);
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<T>(static_cast<std::int64_t>(h % 2000001) - 1000000);
  } else {
    return static_cast<T>(h % 1000001);
  }
}

template <class T>
std::vector<T> test_values(int rank, std::size_t n, std::uint64_t seed = 0) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = test_value<T>(rank, i, seed);
  return v;
}

// Serial reference: op over ranks 0..size-1 in rank order, as the contract
// promises.
template <class T>
T reference_reduce(int size, std::size_t i, ReduceOp op, std::uint64_t seed = 0) {
  T acc = test_value<T>(0, i, seed);
  for (int k = 1; k < size; ++k) {
    const T v = test_value<T>(k, i, seed);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kMean:
        acc = acc + v;
        break;
      case ReduceOp::kMax:
        acc = acc < v ? v : acc;
        break;
      case ReduceOp::kMin:
        acc = v < acc ? v : acc;
        break;
    }
  }
  if (op == ReduceOp::kMean) acc = acc / static_cast<T>(size);
  return acc;
}

template <class T>
std::vector<T> reference_reduce_all(int size, std::size_t n, ReduceOp op, std::uint64_t seed = 0) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = reference_reduce<T>(size, i, op, seed);
  return v;
}

// Bitwise equality, so that -0.0 vs 0.0 or a differently rounded last bit
// count as differences.
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Buffer lengths every collective is tried with for a world of n ranks.
inline std::vector<std::size_t> small_lengths(int n) {
  std::vector<std::size_t> lens{0, 1};
  const auto un = static_cast<std::size_t>(n);
  for (std::size_t len : {un - 1, un + 1}) {
    bool seen = false;
    for (std::size_t l : lens) seen = seen || l == len;
    if (!seen) lens.push_back(len);
  }
  return lens;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace dtrain::testing_util
