// Kernels for small GEMMs with one narrow dimension (internal to
// src/kernels), such as a network's 10-wide output layer. A general GEMM
// library tiles for large matrices: its register tile is 16-24 wide, so a
// 10-wide operand leaves much of every tile empty, and it packs operands
// into buffers, which costs as much as the arithmetic at these sizes. These
// kernels read the operands in place (or pack only the narrow one) and pick
// a register tile for the narrow dimension. There are two sets, for AVX2
// with FMA (gemm_small.cpp) and for AVX-512 (gemm_small_avx512.cpp); see
// docs/KERNELS.md for the shapes and measurements.
#pragma once

#include <cassert>
#include <cstddef>

#include "dtrain/kernels/gemm.h"

namespace dtrain::kernels::detail {

// The instruction set of the small kernels this CPU runs: AVX-512 (F, DQ
// and VL) where it has it, else AVX2 with FMA, else none (every shape then
// stays on the library).
enum class SmallGemmIsa { kNone, kAvx2, kAvx512 };
SmallGemmIsa small_sgemm_cpu_isa();

// The shapes the small kernels are for, whatever the CPU: no more than
// kSmallGemmMaxMacs multiply-adds, and
//   op(A) = A and op(B) = B^T (B is n x k) with n <= kSmallGemmNarrow, or
//   op(B) = B with m <= kSmallGemmNarrow or k <= kSmallGemmNarrow.
// Threads requested for sgemm do not matter: the shapes are small.
bool small_sgemm_fits(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k);

// Whether small_sgemm runs this shape on this CPU: it fits and the CPU runs
// one of the two sets.
bool small_sgemm_handles(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k);

// "small-avx512" or "small-avx2" for the set this CPU runs; nullptr if none.
const char* small_sgemm_kernel_name();

inline constexpr std::size_t kSmallGemmNarrow = 16;
inline constexpr std::size_t kSmallGemmMaxMacs = std::size_t{1} << 22;

// sgemm's contract, for a shape small_sgemm_handles accepts, with arguments
// already checked and m, n, k > 0: runs the set small_sgemm_cpu_isa() names.
void small_sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                 float beta, float* c, std::size_t ldc);

// Each set on its own, for a shape small_sgemm_fits accepts (m, n, k > 0),
// on a CPU that has its instructions: small_sgemm_cpu_isa() == kAvx512 runs
// both, kAvx2 the first. Tests call both where they can.
void small_sgemm_avx2(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                      float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                      float beta, float* c, std::size_t ldc);
void small_sgemm_avx512(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                        float alpha, const float* a, std::size_t lda, const float* b,
                        std::size_t ldb, float beta, float* c, std::size_t ldc);

// `count` items (>= 1) in ceil(count / most) blocks as even as possible,
// none over `most`: the first count % blocks blocks get one item more (10
// rows in blocks of at most 6 are 5 + 5, not 6 + 4), since a short block has
// too few accumulators to hide the FMA latency.
struct EvenBlocks {
  std::size_t blocks;
  std::size_t base;    // items in the smaller blocks
  std::size_t larger;  // how many blocks, from the first, hold base + 1
  constexpr std::size_t size(std::size_t block) const { return base + (block < larger ? 1 : 0); }
};

constexpr EvenBlocks even_blocks(std::size_t count, std::size_t most) {
  const std::size_t blocks = (count + most - 1) / most;
  return {blocks, count / blocks, count % blocks};
}

// The entry both sets share: op(B) = B^T goes to the set's dot kernel,
// op(B) = B to its broadcast kernel, which reads op(A) through row and
// column strides and is compiled apart for alpha = 1, beta = 0 (the calls a
// training step makes).
template <auto kDot, auto kBroadcastPlain, auto kBroadcast>
void run_small_sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                     float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                     float beta, float* c, std::size_t ldc) {
  if (tb == Transpose::kYes) {
    assert(ta == Transpose::kNo);  // small_sgemm_fits takes no other
    kDot(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const std::size_t row_step = ta == Transpose::kYes ? 1 : lda;
  const std::size_t col_step = ta == Transpose::kYes ? lda : 1;
  if (alpha == 1.0f && beta == 0.0f) {
    kBroadcastPlain(m, n, k, alpha, a, row_step, col_step, b, ldb, beta, c, ldc);
  } else {
    kBroadcast(m, n, k, alpha, a, row_step, col_step, b, ldb, beta, c, ldc);
  }
}

}  // namespace dtrain::kernels::detail
