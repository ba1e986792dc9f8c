// dtrain's dense GEMM: row-major float32 C = alpha * op(A) * op(B) + beta * C.
//
// One backend is compiled in, chosen when dtrain is configured: oneDNN's
// dnnl_sgemm when libdnnl is found (it picks AVX-512, AVX2 or SSE4.1 code at
// run time from CPUID, so one binary runs at its best on every x86-64), else
// the portable blocked loops of sgemm_reference. With oneDNN, small products
// with one narrow dimension run on dtrain's own AVX2 kernels where the CPU
// has AVX2 and no AVX-512. See docs/KERNELS.md for the measurements behind
// these choices.
#pragma once

#include <cstddef>
#include <span>

namespace dtrain::kernels {

enum class Transpose { kNo, kYes };

// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, all row-major.
// op(A) is A (m rows of k, row stride lda) for Transpose::kNo and A^T (A then
// has k rows of m) for kYes; likewise B. lda/ldb/ldc may exceed the row
// length; padding elements are neither read nor written. As in BLAS, beta == 0
// overwrites C without reading it (NaNs in C do not propagate), and k == 0 or
// alpha == 0 only scales C by beta. C must not overlap A or B.
//
// Throws std::invalid_argument when a leading dimension is shorter than its
// row or a span is too small for the shape. Runs on gemm_threads() threads
// (1 unless set_gemm_threads says otherwise), and is safe to call from
// several threads at once on distinct C.
void sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
           std::span<const float> a, std::size_t lda, std::span<const float> b, std::size_t ldb,
           float beta, std::span<float> c, std::size_t ldc);

// The portable fallback kernel, always compiled, with sgemm's contract. It is
// what sgemm calls when dtrain is built without oneDNN, and what the tests
// check the backend against.
void sgemm_reference(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                     float alpha, std::span<const float> a, std::size_t lda,
                     std::span<const float> b, std::size_t ldb, float beta, std::span<float> c,
                     std::size_t ldc);

// "onednn" or "reference".
const char* gemm_backend_name();

// The kernel sgemm multiplies with for this shape on this CPU:
// "small-avx512" or "small-avx2" (dtrain's own kernels for small products
// with one narrow dimension, such as a 10-class output layer, on CPUs with
// AVX-512, or else AVX2 with FMA; see docs/KERNELS.md), else
// gemm_backend_name(). A call with alpha == 0 or
// k == 0 multiplies nothing: sgemm only scales C by beta, in its own loop.
const char* sgemm_kernel_name(Transpose ta, Transpose tb, std::size_t m, std::size_t n,
                              std::size_t k);

// Intra-op threads for each later sgemm call, process-wide. Single-threaded
// by default because dtrain already runs one worker per core. The reference
// backend has no threads: it always uses 1. Returns the count that sgemm
// will use; throws std::invalid_argument for threads < 1.
int set_gemm_threads(int threads);
int gemm_threads();

}  // namespace dtrain::kernels
