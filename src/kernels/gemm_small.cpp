// Small-GEMM kernels for AVX2 + FMA (see gemm_small.h), and the choice
// between them and the AVX-512 set of gemm_small_avx512.cpp.
//
// The file is compiled for baseline x86-64: only the functions marked
// DTRAIN_AVX2 use AVX2 and FMA, and they run only after small_sgemm_cpu_isa()
// has said the CPU has them. (Compiling the whole file with -mavx2 would let
// the compiler emit AVX2 in inline functions it shares with other files.)
#include "gemm_small.h"

#include <cassert>
#include <cstdlib>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DTRAIN_SMALL_GEMM 1
#include <immintrin.h>
#endif

namespace dtrain::kernels::detail {

#ifdef DTRAIN_SMALL_GEMM

namespace {

#define DTRAIN_AVX2 __attribute__((target("avx2,fma")))
// For the register blocks, inlined into their loops: left to the compiler,
// dot_row stayed a call per row of C, and the 128 x 10 x 128 product ran at
// 67-73% of peak against 78-80% inlined.
#define DTRAIN_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

// ---- op(B) = B^T: C[i][j] = A row i . B row j, both contiguous in k --------
//
// Every element of C is a dot product accumulated in its own vector over k, 8
// products at a time, and summed across lanes at the end; the last k mod 8
// products are added one by one. Below 8 columns, an MR x NR block of C
// (at most 4 columns wide) makes about 12 accumulators: a 3 x 4 block loads
// 3 + 4 operand vectors per 12 FMAs. From 8 columns on, see dot_row.
constexpr std::size_t kDotCols = 4;

// The sums of a, b, c and d, in that order.
DTRAIN_AVX2 __m128 horizontal_sums4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b);
  const __m256 cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);  // per 128-bit half: a b c d
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

template <std::size_t MR, std::size_t NR>
DTRAIN_AVX2 void dot_block(std::size_t k, float alpha, const float* a, std::size_t lda,
                           const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  __m256 acc[MR][NR];
#pragma GCC unroll 16
  for (std::size_t r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (std::size_t q = 0; q < NR; ++q) acc[r][q] = _mm256_setzero_ps();
  }
  std::size_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 av[MR];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) av[r] = _mm256_loadu_ps(a + r * lda + p);
#pragma GCC unroll 16
    for (std::size_t q = 0; q < NR; ++q) {
      const __m256 bv = _mm256_loadu_ps(b + q * ldb + p);
#pragma GCC unroll 16
      for (std::size_t r = 0; r < MR; ++r) acc[r][q] = _mm256_fmadd_ps(av[r], bv, acc[r][q]);
    }
  }
  // The last k mod 8 products, one float at a time. (A masked vector load
  // would do, but AMD leaves faults on its masked-off lanes implementation
  // dependent, and a row may end just before an unmapped page.)
  alignas(16) float tail[MR][4] = {};
  for (; p < k; ++p) {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (std::size_t q = 0; q < NR; ++q) tail[r][q] += a[r * lda + p] * b[q * ldb + p];
    }
  }
  // Each row's NR sums leave the registers as one vector of 4 floats. A
  // partial one is stored float by float: a masked store (vmaskmovps) is
  // microcoded and slow on AMD cores.
  const __m256 zero = _mm256_setzero_ps();
  const __m128 alpha_v = _mm_set1_ps(alpha);
  const __m128 beta_v = _mm_set1_ps(beta);
#pragma GCC unroll 16
  for (std::size_t r = 0; r < MR; ++r) {
    const __m128 sums = _mm_add_ps(
        horizontal_sums4(acc[r][0], NR > 1 ? acc[r][NR > 1 ? 1 : 0] : zero,
                         NR > 2 ? acc[r][NR > 2 ? 2 : 0] : zero, NR > 3 ? acc[r][NR - 1] : zero),
        _mm_load_ps(tail[r]));
    __m128 out = alpha == 1.0f ? sums : _mm_mul_ps(alpha_v, sums);
    float* crow = c + r * ldc;
    if constexpr (NR == 4) {
      if (beta != 0.0f) out = _mm_add_ps(out, _mm_mul_ps(beta_v, _mm_loadu_ps(crow)));
      _mm_storeu_ps(crow, out);
    } else {
      alignas(16) float part[4];
      _mm_store_ps(part, out);
#pragma GCC unroll 4
      for (std::size_t q = 0; q < NR; ++q) {
        crow[q] = beta == 0.0f ? part[q] : part[q] + beta * crow[q];  // beta == 0 never reads C
      }
    }
  }
}

// The rows of one block of NR columns, MR at a time: MR x NR stays near 12
// accumulators whatever the width (3 x 4, 4 x 3, 6 x 2, 8 x 1), and B's NR
// rows stay in L1 while A streams past them.
template <std::size_t NR, std::size_t MR = NR == 4   ? 3
                                           : NR == 3 ? 4
                                           : NR == 2 ? 6
                                                     : 8>
DTRAIN_AVX2 void dot_column_block(std::size_t m, std::size_t k, float alpha, const float* a,
                                  std::size_t lda, const float* b, std::size_t ldb, float beta,
                                  float* c, std::size_t ldc) {
  std::size_t i = 0;
  for (; i + MR <= m; i += MR) {
    dot_block<MR, NR>(k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
  }
  if constexpr (MR > 1) {
    if (i < m) {
      // The remaining m - i < MR rows, as one block of that height.
      dot_column_block<NR, MR - 1>(m - i, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc,
                                   ldc);
    }
  }
}

// Wide dot blocks, for 8 to 16 columns: one row of A against all of B's
// rows, up to 12 at a time. With a single row there is nothing to reuse A
// across, but 6-12 accumulators hide the FMA latency, B's rows stay in L1,
// and the lanes are summed eight outputs at a time (horizontal_sums8), which
// costs half as many shuffles per output as horizontal_sums4. For the
// 10-wide output layer (128 x 10 x 128) this measured 78-80% of peak against
// 62-68% for 4 x 3 / 3 x 4 blocks, which sum four outputs at a time and
// stream A once per column block.
constexpr std::size_t kDotRowCols = 12;

// Lane q of the result is the sum of v[q]'s lanes, added in the same order
// as horizontal_sums4 adds them.
DTRAIN_AVX2 __m256 horizontal_sums8(const __m256* v) {
  const __m256 ab = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 cd = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  // Per 128-bit half: ab holds v0..v3's partial sums, cd v4..v7's.
  return _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31));
}

// Adds the products of the last k mod 8 columns, from `from` on, to sums[q]
// for each of B's `rows` rows. Kept out of line: inlined, it made the
// compiler spill dot_row's accumulators on every row, tail or not.
__attribute__((noinline)) void add_dot_tails(std::size_t from, std::size_t k, std::size_t rows,
                                             const float* a, const float* b, std::size_t ldb,
                                             float* sums) {
  for (std::size_t q = 0; q < rows; ++q) {
    float tail = 0.0f;
    for (std::size_t p = from; p < k; ++p) tail += a[p] * b[q * ldb + p];
    sums[q] += tail;
  }
}

template <bool kPlain, std::size_t NR>
DTRAIN_AVX2_INLINE void dot_row(std::size_t k, float alpha, const float* a, const float* b,
                                std::size_t ldb, float beta, float* c) {
  static_assert(NR >= 1 && NR <= kDotRowCols);
  constexpr std::size_t kPadded = NR <= 8 ? 8 : 16;  // whole groups of 8 accumulators
  __m256 acc[kPadded];
#pragma GCC unroll 16
  for (std::size_t q = 0; q < kPadded; ++q) acc[q] = _mm256_setzero_ps();
  const std::size_t vector_k = k & ~std::size_t{7};
  for (std::size_t p = 0; p < vector_k; p += 8) {
    const __m256 av = _mm256_loadu_ps(a + p);
#pragma GCC unroll 16
    for (std::size_t q = 0; q < NR; ++q) {
      acc[q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + q * ldb + p), acc[q]);
    }
  }
  __m256 sums = horizontal_sums8(acc);
  __m256 more = NR > 8 ? horizontal_sums8(acc + 8) : _mm256_setzero_ps();  // columns 8..
  if (vector_k < k) {
    // The last k mod 8 products, one float at a time (see dot_block).
    alignas(32) float all[16];
    _mm256_store_ps(all, sums);
    _mm256_store_ps(all + 8, more);
    add_dot_tails(vector_k, k, NR, a, b, ldb, all);
    sums = _mm256_load_ps(all);
    more = _mm256_load_ps(all + 8);
  }
  if (!kPlain && alpha != 1.0f) {
    sums = _mm256_mul_ps(_mm256_set1_ps(alpha), sums);
    more = _mm256_mul_ps(_mm256_set1_ps(alpha), more);
  }
  // Eight columns go out as one vector; the rest (all of them below 8) one
  // float at a time.
  std::size_t q = 0;
  __m256 rest = sums;
  if constexpr (NR >= 8) {
    if (!kPlain && beta != 0.0f)
      sums = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), sums);
    _mm256_storeu_ps(c, sums);
    q = 8;
    rest = more;
  }
  alignas(32) float part[8];
  _mm256_store_ps(part, rest);
#pragma GCC unroll 8
  for (std::size_t r = 0; q < NR; ++q, ++r) {
    c[q] = kPlain || beta == 0.0f ? part[r] : part[r] + beta * c[q];  // beta == 0 never reads C
  }
}

template <std::size_t NR>
DTRAIN_AVX2 void dot_rows(std::size_t m, std::size_t k, float alpha, const float* a,
                          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                          std::size_t ldc) {
  if (alpha == 1.0f && beta == 0.0f) {
    for (std::size_t i = 0; i < m; ++i) {
      dot_row<true, NR>(k, alpha, a + i * lda, b, ldb, beta, c + i * ldc);
    }
  } else {
    for (std::size_t i = 0; i < m; ++i) {
      dot_row<false, NR>(k, alpha, a + i * lda, b, ldb, beta, c + i * ldc);
    }
  }
}

// All m rows against B's first `width` rows, 6 <= width <= kDotRowCols.
DTRAIN_AVX2 void dot_rows_of_width(std::size_t width, std::size_t m, std::size_t k, float alpha,
                                   const float* a, std::size_t lda, const float* b, std::size_t ldb,
                                   float beta, float* c, std::size_t ldc) {
  switch (width) {
#define DTRAIN_DOT_ROWS_CASE(w)                             \
  case w:                                                   \
    dot_rows<w>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); \
    return;
    DTRAIN_DOT_ROWS_CASE(6)
    DTRAIN_DOT_ROWS_CASE(7)
    DTRAIN_DOT_ROWS_CASE(8)
    DTRAIN_DOT_ROWS_CASE(9)
    DTRAIN_DOT_ROWS_CASE(10)
    DTRAIN_DOT_ROWS_CASE(11)
    DTRAIN_DOT_ROWS_CASE(12)
#undef DTRAIN_DOT_ROWS_CASE
    default:
      std::abort();  // dot_gemm asks for no other width
  }
}

DTRAIN_AVX2 void dot_gemm(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                          std::size_t ldc) {
  if (n >= 8) {
    // 8-12 columns in one pass over A, 13-16 in two near-equal ones (7 + 6
    // up to 8 + 8).
    const std::size_t first = n <= kDotRowCols ? n : (n + 1) / 2;
    dot_rows_of_width(first, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (first < n) {
      dot_rows_of_width(n - first, m, k, alpha, a, lda, b + first * ldb, ldb, beta, c + first, ldc);
    }
    return;
  }
  // Narrower: blocks of several rows, so that MR x NR still makes about 12
  // accumulators. Column blocks as even as possible (5 = 3 + 2, not 4 + 1):
  // a narrow block has too few accumulators, or too little reuse of A.
  const EvenBlocks split = even_blocks(n, kDotCols);
  std::size_t j = 0;
  for (std::size_t block = 0; block < split.blocks; ++block) {
    const std::size_t width = split.size(block);
    const float* bj = b + j * ldb;
    float* cj = c + j;
    switch (width) {
      case 4:
        dot_column_block<4>(m, k, alpha, a, lda, bj, ldb, beta, cj, ldc);
        break;
      case 3:
        dot_column_block<3>(m, k, alpha, a, lda, bj, ldb, beta, cj, ldc);
        break;
      case 2:
        dot_column_block<2>(m, k, alpha, a, lda, bj, ldb, beta, cj, ldc);
        break;
      default:
        dot_column_block<1>(m, k, alpha, a, lda, bj, ldb, beta, cj, ldc);
        break;
    }
    j += width;
  }
}

// ---- op(B) = B: C[i][j..] += a(i, p) * B row p ------------------------------
//
// An MR x (8 * NV) block of C stays in registers while p runs over k: each
// step broadcasts MR elements of op(A) and loads NV vectors of B's row p.
// Element (i, p) of op(A) is a[i * row_step + p * col_step], which covers
// both op(A) = A (row_step = lda, col_step = 1) and A^T (1, lda). 6 x 16 is
// 12 accumulators, 6 + 2 operands per 12 FMAs. The last n mod 8 columns are
// computed one float at a time.
constexpr std::size_t kBroadcastRows = 6;

// kPlain: alpha == 1 and beta == 0, as the forward pass, the input gradient
// and the weight gradient of a step pass them (they overwrite their outputs;
// accumulate_gradient's weight gradient adds, beta = 1, and takes the
// general path). Templated on it, the
// blocks keep no alpha or beta in registers: 12 accumulators and 3 operands
// leave one of the 16 vector registers, and a live alpha made the compiler
// spill.
template <bool kPlain, std::size_t MR, std::size_t NV>
DTRAIN_AVX2_INLINE void broadcast_block(std::size_t k, float alpha, const float* a,
                                        std::size_t row_step, std::size_t col_step, const float* b,
                                        std::size_t ldb, float beta, float* c, std::size_t ldc) {
  // The first product initialises the accumulators (k >= 1): with k as short
  // as 10 (the output layer's input gradient), a 6 x 16 block starting from
  // zeros, with one more FMA per chain, measured 71-73% of peak against
  // 90-91%. a * b rounds exactly as fma(a, b, +0) does, so the sums are the
  // same, up to the sign of a zero sum (-0 where there was +0).
  __m256 acc[MR][NV];
  {
    __m256 bv[NV];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * row_step);
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = _mm256_mul_ps(av, bv[v]);
    }
  }
  for (std::size_t p = 1; p < k; ++p) {
    const float* brow = b + p * ldb;
    __m256 bv[NV];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(brow + 8 * v);
    const float* ap = a + p * col_step;
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(ap + r * row_step);
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m256 alpha_v = _mm256_set1_ps(alpha);
  const __m256 beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 16
  for (std::size_t r = 0; r < MR; ++r) {
    float* crow = c + r * ldc;
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) {
      if constexpr (kPlain) {
        _mm256_storeu_ps(crow + 8 * v, acc[r][v]);
        continue;
      }
      __m256 out = alpha == 1.0f ? acc[r][v] : _mm256_mul_ps(alpha_v, acc[r][v]);
      if (beta != 0.0f) {  // beta == 0 never reads C
        out = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(crow + 8 * v), out);
      }
      _mm256_storeu_ps(crow + 8 * v, out);
    }
  }
}

// The last n mod 8 columns of an MR-row block, one float at a time (see the
// dot kernel on masked vector loads).
template <std::size_t MR>
DTRAIN_AVX2 void broadcast_tail_columns(std::size_t columns, std::size_t k, float alpha,
                                        const float* a, std::size_t row_step, std::size_t col_step,
                                        const float* b, std::size_t ldb, float beta, float* c,
                                        std::size_t ldc) {
  for (std::size_t r = 0; r < MR; ++r) {
    for (std::size_t j = 0; j < columns; ++j) {
      float sum = 0.0f;
      for (std::size_t p = 0; p < k; ++p) sum += a[r * row_step + p * col_step] * b[p * ldb + j];
      float& out = c[r * ldc + j];
      out = beta == 0.0f ? alpha * sum : alpha * sum + beta * out;  // beta == 0 never reads C
    }
  }
}

template <bool kPlain, std::size_t MR>
DTRAIN_AVX2 void broadcast_row_block(std::size_t n, std::size_t k, float alpha, const float* a,
                                     std::size_t row_step, std::size_t col_step, const float* b,
                                     std::size_t ldb, float beta, float* c, std::size_t ldc) {
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    broadcast_block<kPlain, MR, 2>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc);
  }
  if (j + 8 <= n) {
    broadcast_block<kPlain, MR, 1>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc);
    j += 8;
  }
  if (j < n) {
    broadcast_tail_columns<MR>(n - j, k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j,
                               ldc);
  }
}

// Rows in blocks of MR, the last m mod MR as one shorter block.
template <bool kPlain, std::size_t MR = kBroadcastRows>
DTRAIN_AVX2 void broadcast_gemm(std::size_t m, std::size_t n, std::size_t k, float alpha,
                                const float* a, std::size_t row_step, std::size_t col_step,
                                const float* b, std::size_t ldb, float beta, float* c,
                                std::size_t ldc) {
  std::size_t i = 0;
  for (; i + MR <= m; i += MR) {
    broadcast_row_block<kPlain, MR>(n, k, alpha, a + i * row_step, row_step, col_step, b, ldb, beta,
                                    c + i * ldc, ldc);
  }
  if constexpr (MR > 1) {
    if (i < m) {
      broadcast_gemm<kPlain, MR - 1>(m - i, n, k, alpha, a + i * row_step, row_step, col_step, b,
                                     ldb, beta, c + i * ldc, ldc);
    }
  }
}

}  // namespace

SmallGemmIsa small_sgemm_cpu_isa() {
  // GCC's and clang's CPU checks include the OS's support for the AVX and
  // AVX-512 register state.
  static const SmallGemmIsa isa = [] {
    // The AVX-512 set is compiled for AVX2 and FMA too; every AVX-512 CPU
    // has them, but a hypervisor may hide some features and not others.
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
      return SmallGemmIsa::kAvx512;
    }
    return avx2 ? SmallGemmIsa::kAvx2 : SmallGemmIsa::kNone;
  }();
  return isa;
}

bool small_sgemm_fits(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k) {
  // m, n, k > 0 is the caller's; the product is formed without overflow.
  if (m > kSmallGemmMaxMacs || n > kSmallGemmMaxMacs || k > kSmallGemmMaxMacs ||
      m * n > kSmallGemmMaxMacs || m * n * k > kSmallGemmMaxMacs) {
    return false;
  }
  if (tb == Transpose::kYes) return ta == Transpose::kNo && n <= kSmallGemmNarrow;
  return m <= kSmallGemmNarrow || k <= kSmallGemmNarrow;
}

void small_sgemm_avx2(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                      float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                      float beta, float* c, std::size_t ldc) {
  run_small_sgemm<dot_gemm, broadcast_gemm<true>, broadcast_gemm<false>>(ta, tb, m, n, k, alpha, a,
                                                                         lda, b, ldb, beta, c, ldc);
}

#else  // not x86-64 with GCC or clang: the library does everything

SmallGemmIsa small_sgemm_cpu_isa() { return SmallGemmIsa::kNone; }

bool small_sgemm_fits(Transpose, Transpose, std::size_t, std::size_t, std::size_t) { return false; }

void small_sgemm_avx2(Transpose, Transpose, std::size_t, std::size_t, std::size_t, float,
                      const float*, std::size_t, const float*, std::size_t, float, float*,
                      std::size_t) {
  std::abort();  // small_sgemm_cpu_isa() never says kAvx2 here
}

#endif

bool small_sgemm_handles(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k) {
  return small_sgemm_cpu_isa() != SmallGemmIsa::kNone && small_sgemm_fits(ta, tb, m, n, k);
}

const char* small_sgemm_kernel_name() {
  switch (small_sgemm_cpu_isa()) {
    case SmallGemmIsa::kAvx512:
      return "small-avx512";
    case SmallGemmIsa::kAvx2:
      return "small-avx2";
    case SmallGemmIsa::kNone:
      break;
  }
  return nullptr;
}

void small_sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                 float beta, float* c, std::size_t ldc) {
  if (small_sgemm_cpu_isa() == SmallGemmIsa::kAvx512) {
    small_sgemm_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    assert(small_sgemm_cpu_isa() == SmallGemmIsa::kAvx2);
    small_sgemm_avx2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

}  // namespace dtrain::kernels::detail
