// FNV-1a 64 (Fowler, Noll, Vo): the checksum of model and shard files, and
// the first stage of the partitioning hash. Fixed forever: files written by
// one version are verified by the next.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace dtrain {

inline constexpr std::uint64_t kFnv1a64Offset = 14695981039346656037ULL;
inline constexpr std::uint64_t kFnv1a64Prime = 1099511628211ULL;

// Continues a running hash over `bytes`; start with kFnv1a64Offset.
inline std::uint64_t fnv1a64(std::span<const unsigned char> bytes,
                             std::uint64_t hash = kFnv1a64Offset) {
  for (const unsigned char b : bytes) {
    hash ^= b;
    hash *= kFnv1a64Prime;
  }
  return hash;
}

inline std::uint64_t fnv1a64(std::string_view text, std::uint64_t hash = kFnv1a64Offset) {
  return fnv1a64(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()),
                                                text.size()),
                 hash);
}

}  // namespace dtrain
