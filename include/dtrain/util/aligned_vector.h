// A std::vector whose storage starts on a 64-byte boundary (a cache line,
// and an AVX-512 vector). The model's parameters, gradients and activations
// live in these: a GEMM kernel's 32-byte loads from a row that starts
// 16 bytes into a cache line (what malloc gives) split every other load
// across two lines, which measured up to 1.4x slower on small GEMMs.
#pragma once

#include <cstddef>
#include <limits>
#include <new>
#include <vector>

namespace dtrain {

inline constexpr std::size_t kCacheLineBytes = 64;

template <class T>
struct CacheLineAllocator {
  static_assert(alignof(T) <= kCacheLineBytes, "a cache line is not enough alignment for T");
  using value_type = T;

  CacheLineAllocator() = default;
  template <class U>
  constexpr CacheLineAllocator(const CacheLineAllocator<U>& /*other*/) noexcept {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kCacheLineBytes}));
  }
  void deallocate(T* p, std::size_t /*n*/) noexcept {
    ::operator delete (p, std::align_val_t{kCacheLineBytes});
  }

  template <class U>
  bool operator==(const CacheLineAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace dtrain
