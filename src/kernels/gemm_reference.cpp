// The portable GEMM: plain loops that the compiler vectorizes for whatever
// ISA the build targets (SSE2 without -march). Blocked over k so that a block
// of op(B) rows stays in cache while every row of C streams over it.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "dtrain/kernels/gemm.h"
#include "gemm_check.h"

namespace dtrain::kernels {
namespace detail {
namespace {

// Elements a rows x cols row-major matrix with leading dimension ld spans.
// Throws when ld < cols or the count does not fit in size_t.
std::size_t extent(const char* name, std::size_t rows, std::size_t cols, std::size_t ld) {
  if (ld < cols) {
    throw std::invalid_argument(std::string("sgemm: ld") + name + " = " + std::to_string(ld) +
                                " is less than the row length " + std::to_string(cols));
  }
  if (rows == 0 || cols == 0) return 0;
  if (rows - 1 > (std::numeric_limits<std::size_t>::max() - cols) / ld) {
    throw std::invalid_argument(std::string("sgemm: ") + name + " is too large to address");
  }
  return (rows - 1) * ld + cols;
}

void check_span(const char* name, std::size_t need, std::size_t have) {
  if (have < need) {
    throw std::invalid_argument(std::string("sgemm: ") + name + " has " + std::to_string(have) +
                                " elements, the shape needs " + std::to_string(need));
  }
}

}  // namespace

void check_gemm_args(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                     std::span<const float> a, std::size_t lda, std::span<const float> b,
                     std::size_t ldb, std::span<float> c, std::size_t ldc) {
  const bool at = ta == Transpose::kYes;
  const bool bt = tb == Transpose::kYes;
  check_span("A", extent("a", at ? k : m, at ? m : k, lda), a.size());
  check_span("B", extent("b", bt ? n : k, bt ? k : n, ldb), b.size());
  check_span("C", extent("c", m, n, ldc), c.size());
}

void scale_c(std::size_t m, std::size_t n, float beta, std::span<float> c, std::size_t ldc) {
  if (beta == 1.0f) return;
  for (std::size_t i = 0; i < m; ++i) {
    float* row = c.data() + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else {
      for (std::size_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

}  // namespace detail

void sgemm_reference(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                     float alpha, std::span<const float> a, std::size_t lda,
                     std::span<const float> b, std::size_t ldb, float beta, std::span<float> c,
                     std::size_t ldc) {
  detail::check_gemm_args(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
  detail::scale_c(m, n, beta, c, ldc);
  if (k == 0 || alpha == 0.0f) return;

  // 128 rows of op(B) of up to a few hundred floats: a block fits in L2.
  constexpr std::size_t kBlockK = 128;
  const bool at = ta == Transpose::kYes;
  const bool bt = tb == Transpose::kYes;
  // A transposed B is gathered into contiguous rows, so that the inner loop
  // is always a unit-stride axpy over a row of C.
  std::vector<float> packed(bt ? std::min(k, kBlockK) * n : 0);
  for (std::size_t p0 = 0; p0 < k; p0 += kBlockK) {
    const std::size_t pb = std::min(kBlockK, k - p0);
    const float* brows = b.data() + p0 * ldb;
    std::size_t brow_ld = ldb;
    if (bt) {
      for (std::size_t p = 0; p < pb; ++p) {
        for (std::size_t j = 0; j < n; ++j) packed[p * n + j] = b[j * ldb + p0 + p];
      }
      brows = packed.data();
      brow_ld = n;
    }
    for (std::size_t i = 0; i < m; ++i) {
      float* crow = c.data() + i * ldc;
      for (std::size_t p = 0; p < pb; ++p) {
        const float aip = alpha * (at ? a[(p0 + p) * lda + i] : a[i * lda + p0 + p]);
        const float* brow = brows + p * brow_ld;
        for (std::size_t j = 0; j < n; ++j) crow[j] += aip * brow[j];
      }
    }
  }
}

}  // namespace dtrain::kernels
