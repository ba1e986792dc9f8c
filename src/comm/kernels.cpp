#include "kernels.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

namespace dtrain::comm_detail {
namespace {

// Elements are processed in chunks this big: small enough that the scratch
// chunk stays in L1 while every source is folded into it, large enough that
// the loop overhead per chunk is negligible. (Measured with bench_allreduce
// on the 2-core dev VM: 8, 16 and 32 KiB are within noise of each other,
// 64 KiB was no better.)
constexpr std::size_t kChunkBytes = 16 * 1024;

struct Sum {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_same_v<T, std::int64_t>) {
      // Signed overflow is undefined; wrap around like the unsigned types do.
      return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) +
                                       static_cast<std::uint64_t>(b));
    } else {
      return a + b;
    }
  }
};
// Same semantics as std::max/std::min applied in rank order (a NaN in the
// left operand wins), written as plain selects so that they vectorise.
struct Max {
  template <class T>
  static T apply(T a, T b) {
    return a < b ? b : a;
  }
};
struct Min {
  template <class T>
  static T apply(T a, T b) {
    return b < a ? b : a;
  }
};

// The loops below are deliberately trivial, with restrict-qualified pointers,
// so that the compiler vectorises them. Each is elementwise, so vectorising
// does not reorder any floating-point arithmetic.
template <class Op, class T>
void combine(T* __restrict out, const T* __restrict a, const T* __restrict b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = Op::apply(a[i], b[i]);
}

template <class Op, class T>
void accumulate(T* __restrict acc, const T* __restrict b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) acc[i] = Op::apply(acc[i], b[i]);
}

// A copy loop, not memcpy (see copy_bytes). This file is compiled with
// -fno-tree-loop-distribute-patterns so that GCC does not turn the loop back
// into a memcpy call.
template <class T>
void copy(T* __restrict dst, const T* __restrict src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
}

template <class T>
void divide(T* __restrict acc, T divisor, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) acc[i] = acc[i] / divisor;
}

template <class Op, class T>
void reduce_typed(std::span<const void* const> srcs, std::span<void* const> dsts, std::size_t count,
                  bool mean) {
  constexpr std::size_t kChunk = kChunkBytes / sizeof(T);
  alignas(64) std::array<T, kChunk> scratch;  // fully written before it is read
  T* const tmp = scratch.data();
  const std::size_t n = srcs.size();
  for (std::size_t begin = 0; begin < count; begin += kChunk) {
    const std::size_t m = std::min(kChunk, count - begin);
    const auto src = [&](std::size_t k) { return static_cast<const T*>(srcs[k]) + begin; };
    if (n == 1) {
      copy(tmp, src(0), m);
    } else {
      combine<Op>(tmp, src(0), src(1), m);
      for (std::size_t k = 2; k < n; ++k) accumulate<Op>(tmp, src(k), m);
    }
    if (mean) divide(tmp, static_cast<T>(n), m);
    for (void* dst : dsts) copy(static_cast<T*>(dst) + begin, tmp, m);
  }
}

template <class T>
void reduce_op(ReduceOp op, std::span<const void* const> srcs, std::span<void* const> dsts,
               std::size_t count) {
  switch (op) {
    case ReduceOp::kSum:
      return reduce_typed<Sum, T>(srcs, dsts, count, false);
    case ReduceOp::kMean:
      return reduce_typed<Sum, T>(srcs, dsts, count, true);
    case ReduceOp::kMax:
      return reduce_typed<Max, T>(srcs, dsts, count, false);
    case ReduceOp::kMin:
      return reduce_typed<Min, T>(srcs, dsts, count, false);
  }
}

}  // namespace

void reduce_into(DataType type, ReduceOp op, std::span<const void* const> srcs,
                 std::span<void* const> dsts, std::size_t count) {
  if (count == 0) return;
  switch (type) {
    case DataType::kFloat32:
      return reduce_op<float>(op, srcs, dsts, count);
    case DataType::kFloat64:
      return reduce_op<double>(op, srcs, dsts, count);
    case DataType::kInt64:
      return reduce_op<std::int64_t>(op, srcs, dsts, count);
    case DataType::kUint64:
      return reduce_op<std::uint64_t>(op, srcs, dsts, count);
  }
}

void copy_bytes(void* dst, const void* src, std::size_t bytes) {
  copy(static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), bytes);
}

}  // namespace dtrain::comm_detail
