// Argument checks shared by the GEMM backends (internal to src/kernels).
#pragma once

#include <cstddef>
#include <span>

#include "dtrain/kernels/gemm.h"

namespace dtrain::kernels::detail {

// Throws std::invalid_argument unless A, B and C fit their shapes and leading
// dimensions (see sgemm in gemm.h).
void check_gemm_args(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                     std::span<const float> a, std::size_t lda, std::span<const float> b,
                     std::size_t ldb, std::span<float> c, std::size_t ldc);

// C[m x n] *= beta; beta == 0 stores zeros so that NaNs in C are dropped.
void scale_c(std::size_t m, std::size_t n, float beta, std::span<float> c, std::size_t ldc);

}  // namespace dtrain::kernels::detail
