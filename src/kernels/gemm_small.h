// Kernels for small GEMMs with one narrow dimension (internal to
// src/kernels), such as a network's 10-wide output layer. A general GEMM
// library tiles for large matrices: its register tile is 16-24 wide, so a
// 10-wide operand leaves much of every tile empty, and it packs operands
// into buffers, which costs as much as the arithmetic at these sizes. These
// kernels read the operands in place and pick a register tile for the narrow
// dimension. They are written for AVX2 with FMA; see docs/KERNELS.md for the
// shapes and measurements.
#pragma once

#include <cstddef>

#include "dtrain/kernels/gemm.h"

namespace dtrain::kernels::detail {

// Whether small_sgemm runs this shape, on this CPU: AVX2 and FMA without
// AVX-512 (where the measurements were made; an AVX-512 CPU stays on the
// library's AVX-512 code), no more than kSmallGemmMaxMacs multiply-adds, and
//   op(A) = A and op(B) = B^T (B is n x k) with n <= kSmallGemmNarrow, or
//   op(B) = B with m <= kSmallGemmNarrow or k <= kSmallGemmNarrow.
// Threads requested for sgemm do not matter: the shapes are small.
bool small_sgemm_handles(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k);

inline constexpr std::size_t kSmallGemmNarrow = 16;
inline constexpr std::size_t kSmallGemmMaxMacs = std::size_t{1} << 22;

// sgemm's contract, for a shape small_sgemm_handles accepts, with arguments
// already checked and m, n, k > 0.
void small_sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                 float beta, float* c, std::size_t ldc);

}  // namespace dtrain::kernels::detail
