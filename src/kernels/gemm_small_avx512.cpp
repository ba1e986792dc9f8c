// Small-GEMM kernels for AVX-512 (see gemm_small.h): the shapes of the AVX2
// kernels in gemm_small.cpp, laid out again for 16-lane vectors rather than
// ported lane for lane. A 16-lane dot product needs a 16-lane sum at the end,
// which at k = 128 costs nearly as much as it saves, so the dot kernel here
// puts two outputs in each vector (see dot_block); tails use masked loads
// and stores, which AVX-512 defines to suppress faults on masked-off lanes.
//
// As in gemm_small.cpp, the file is compiled for baseline x86-64 and only the
// functions marked DTRAIN_AVX512 use AVX-512; they run only after
// small_sgemm_cpu_isa() has said the CPU has it.
#include <algorithm>
#include <cassert>
#include <cstdlib>

#include "gemm_small.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DTRAIN_SMALL_GEMM_AVX512 1
#include <immintrin.h>
#endif

namespace dtrain::kernels::detail {

#ifdef DTRAIN_SMALL_GEMM_AVX512

namespace {

#define DTRAIN_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define DTRAIN_AVX512_INLINE \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"), always_inline)) inline

// The first `count` lanes (count <= 16).
DTRAIN_AVX512_INLINE __mmask16 first_lanes(std::size_t count) {
  return static_cast<__mmask16>((1u << count) - 1u);
}

// ---- op(B) = B: C[i][j..] += a(i, p) * B row p ------------------------------
//
// The AVX2 kernel's scheme with 16-lane vectors: an MR x (16 * NV) block of C
// stays in registers while p runs over k, each step broadcasting MR elements
// of op(A) and loading NV vectors of B's row p. 6 x 64 is 24 accumulators of
// the 32 registers, 6 + 4 operands per 24 FMAs. The block's last vector is
// masked to the columns left, so every column runs at vector speed.
constexpr std::size_t kBroadcastRows = 6;
constexpr std::size_t kBroadcastVectors = 4;

template <bool kPlain, std::size_t MR, std::size_t NV>
DTRAIN_AVX512_INLINE void broadcast_block(std::size_t k, float alpha, const float* a,
                                          std::size_t row_step, std::size_t col_step,
                                          const float* b, std::size_t ldb, float beta, float* c,
                                          std::size_t ldc, __mmask16 last) {
  // The first product initialises the accumulators (k >= 1), as in the AVX2
  // kernel: with k = 10 one more FMA per chain is a tenth more work.
  __m512 acc[MR][NV];
  {
    __m512 bv[NV];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) {
      bv[v] = v + 1 < NV ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(last, b + 16 * v);
    }
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * row_step]);
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = _mm512_mul_ps(av, bv[v]);
    }
  }
  for (std::size_t p = 1; p < k; ++p) {
    const float* brow = b + p * ldb;
    __m512 bv[NV];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) {
      bv[v] =
          v + 1 < NV ? _mm512_loadu_ps(brow + 16 * v) : _mm512_maskz_loadu_ps(last, brow + 16 * v);
    }
    const float* ap = a + p * col_step;
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(ap[r * row_step]);
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m512 alpha_v = _mm512_set1_ps(alpha);
  const __m512 beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (std::size_t r = 0; r < MR; ++r) {
    float* crow = c + r * ldc;
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) {
      const __mmask16 lanes = v + 1 < NV ? __mmask16{0xFFFF} : last;
      __m512 out = acc[r][v];
      if constexpr (!kPlain) {
        if (alpha != 1.0f) out = _mm512_mul_ps(alpha_v, out);
        if (beta != 0.0f) {  // beta == 0 never reads C
          out = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(lanes, crow + 16 * v), out);
        }
      }
      _mm512_mask_storeu_ps(crow + 16 * v, lanes, out);
    }
  }
}

// One block of MR rows across all n columns, 16 * kBroadcastVectors at a
// time, the rest as one block of as many vectors as it needs.
template <bool kPlain, std::size_t MR>
DTRAIN_AVX512 void broadcast_row_block(std::size_t n, std::size_t k, float alpha, const float* a,
                                       std::size_t row_step, std::size_t col_step, const float* b,
                                       std::size_t ldb, float beta, float* c, std::size_t ldc) {
  constexpr std::size_t kWidth = 16 * kBroadcastVectors;
  std::size_t j = 0;
  for (; j + kWidth <= n; j += kWidth) {
    broadcast_block<kPlain, MR, kBroadcastVectors>(k, alpha, a, row_step, col_step, b + j, ldb,
                                                   beta, c + j, ldc, __mmask16{0xFFFF});
  }
  if (j == n) return;
  const std::size_t rest = n - j;  // 1 .. kWidth - 1
  const __mmask16 last = first_lanes(rest - 16 * ((rest - 1) / 16));
  switch ((rest + 15) / 16) {
    case 1:
      broadcast_block<kPlain, MR, 1>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc,
                                     last);
      break;
    case 2:
      broadcast_block<kPlain, MR, 2>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc,
                                     last);
      break;
    case 3:
      broadcast_block<kPlain, MR, 3>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc,
                                     last);
      break;
    default:
      static_assert(kBroadcastVectors == 4);
      broadcast_block<kPlain, MR, 4>(k, alpha, a, row_step, col_step, b + j, ldb, beta, c + j, ldc,
                                     last);
      break;
  }
}

// Rows in blocks as even as possible, none over kBroadcastRows.
template <bool kPlain>
DTRAIN_AVX512 void broadcast_gemm(std::size_t m, std::size_t n, std::size_t k, float alpha,
                                  const float* a, std::size_t row_step, std::size_t col_step,
                                  const float* b, std::size_t ldb, float beta, float* c,
                                  std::size_t ldc) {
  const EvenBlocks split = even_blocks(m, kBroadcastRows);
  std::size_t i = 0;
  for (std::size_t block = 0; block < split.blocks; ++block) {
    const std::size_t rows = split.size(block);
    const float* ai = a + i * row_step;
    float* ci = c + i * ldc;
    switch (rows) {
#define DTRAIN_BROADCAST_ROWS_CASE(r)                                                           \
  case r:                                                                                       \
    broadcast_row_block<kPlain, r>(n, k, alpha, ai, row_step, col_step, b, ldb, beta, ci, ldc); \
    break;
      DTRAIN_BROADCAST_ROWS_CASE(1)
      DTRAIN_BROADCAST_ROWS_CASE(2)
      DTRAIN_BROADCAST_ROWS_CASE(3)
      DTRAIN_BROADCAST_ROWS_CASE(4)
      DTRAIN_BROADCAST_ROWS_CASE(5)
      DTRAIN_BROADCAST_ROWS_CASE(6)
#undef DTRAIN_BROADCAST_ROWS_CASE
      default:
        std::abort();  // rows <= kBroadcastRows by construction
    }
    i += rows;
  }
}

// ---- op(B) = B^T with n <= 16: C[i][j] = A row i . B row j -------------------
//
// Every element of C is a dot product over k, contiguous in both operands.
// With one output per vector, 16 lanes of partial sums must be added at the
// end: a tree over 16 outputs costs about 3 shuffles and adds per output,
// against 8 FMAs per output at k = 128, and shuffles share a port with FMAs.
// So each vector holds two outputs instead, eight of k's residues each: lanes
// 0-7 sum A row i times B row 2g, lanes 8-15 A row i times B row 2g + 1, over
// k in steps of 8. A's 8 floats are broadcast to both halves by the load
// itself (vbroadcastf32x8); B is packed once per call so that rows 2g and
// 2g + 1 sit side by side. A block of R rows of A keeps R x G accumulators
// (G = ceil(n / 2) pairs of B's rows), and sum_halves adds the lanes of eight
// of them in 15 shuffles and 7 adds, under 1.5 per output (sum_halves4 those
// of the last four or fewer in 8 and 4). With 10 outputs it measured a
// median of 81% of the core's peak at k = 512 and 69-70% at k = 128, where
// the sums weigh four times as much (docs/KERNELS.md; bench_gemm's fastest
// sample at k = 128: 75-77%).
//
// k runs in chunks of kDotChunk, so that the packed B fits a fixed buffer on
// the stack (32 KiB); C takes the first chunk's sums with alpha and beta and
// adds alpha times each later chunk's.
constexpr std::size_t kDotChunk = 512;
constexpr std::size_t kDotMaxPairs = 8;  // n <= 16

// Rows of A per block: as many as keep R x G <= 25 accumulators, R
// broadcasts of A and one vector of B within the 32 registers; at most 8
// (enough independent chains to cover the FMA latency with G = 1). For the
// 10-wide layer (G = 5) that is 5 rows, which measured about 2% faster than
// 4 rows with their 20 accumulators.
constexpr std::size_t dot_block_rows(std::size_t pairs) {
  return std::min<std::size_t>({8, 25 / pairs, 31 / (pairs + 1)});
}

// packed[(s * G + g) * 16 + 8 h + e] = B[2g + h][8 s + e] for the chunk's
// steps s, zero past n rows or kc columns.
template <std::size_t G>
DTRAIN_AVX512 void pack_row_pairs(const float* b, std::size_t ldb, std::size_t n, std::size_t kc,
                                  float* packed) {
  const std::size_t steps = (kc + 7) / 8;
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t valid = std::min<std::size_t>(8, kc - 8 * s);
    const auto lanes = static_cast<__mmask8>((1u << valid) - 1u);
    for (std::size_t g = 0; g < G; ++g) {
      const float* b0 = b + 2 * g * ldb + 8 * s;
      const __m256 lo = _mm256_maskz_loadu_ps(lanes, b0);
      const __m256 hi =
          2 * g + 1 < n ? _mm256_maskz_loadu_ps(lanes, b0 + ldb) : _mm256_setzero_ps();
      _mm512_store_ps(packed + (s * G + g) * 16,
                      _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
    }
  }
}

// Per 128-bit lane: x0+x2, x1+x3, y0+y2, y1+y3 of x's and y's 64-bit halves.
DTRAIN_AVX512_INLINE __m512 add_pair_halves(__m512 x, __m512 y) {
  const __m512d xd = _mm512_castps_pd(x), yd = _mm512_castps_pd(y);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(xd, yd)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(xd, yd)));
}

// Given eight vectors v[0..7], each holding two outputs as above, returns
// the 16 sums in the order v[0]'s first, v[0]'s second, v[1]'s first, ...
DTRAIN_AVX512_INLINE __m512 sum_halves(const __m512* v) {
  // Per 128-bit lane: x0+x2, y0+y2, x1+x3, y1+y3 for the pair (x, y).
  const __m512 s0 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
  const __m512 s1 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
  const __m512 s2 = _mm512_add_ps(_mm512_unpacklo_ps(v[4], v[5]), _mm512_unpackhi_ps(v[4], v[5]));
  const __m512 s3 = _mm512_add_ps(_mm512_unpacklo_ps(v[6], v[7]), _mm512_unpackhi_ps(v[6], v[7]));
  // Per 128-bit lane L: the sums of lanes 4L..4L+3 of v0, v1, v2, v3 (t0)
  // and of v4..v7 (t1).
  const __m512 t0 = add_pair_halves(s0, s1);
  const __m512 t1 = add_pair_halves(s2, s3);
  // 128-bit lanes: first halves of v0..v3, second halves of v0..v3, first
  // halves of v4..v7, second halves of v4..v7.
  const __m512 r = _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88),   // lanes 0, 2 | 0, 2
                                 _mm512_shuffle_f32x4(t0, t1, 0xDD));  // lanes 1, 3 | 1, 3
  const __m512i order = _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0);
  return _mm512_permutexvar_ps(order, r);
}

// The same for four vectors v[0..3]: their 8 sums in lanes 0-7, in half the
// shuffles of sum_halves (lanes 8-15 are not meant to be used).
DTRAIN_AVX512_INLINE __m512 sum_halves4(const __m512* v) {
  const __m512 s0 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
  const __m512 s1 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
  const __m512 t = add_pair_halves(s0, s1);
  // 128-bit lanes 0 and 2: the first and second halves of v0..v3.
  const __m512 r = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, 0xB1));  // lanes 1, 0, 3, 2
  const __m512i order = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
  return _mm512_permutexvar_ps(order, r);
}

// R rows of A (from a, row stride lda) against the packed pairs of B over
// `steps` full steps of 8 and then `tail` (< 8) more columns; writes the
// R x 2G sums to sums[r * 2G + j], R x 2G floats in all (for an odd n,
// column j = n sums against the packed zeros and is never stored in C).
template <std::size_t G, std::size_t R>
DTRAIN_AVX512 void dot_block(std::size_t steps, std::size_t tail, const float* a, std::size_t lda,
                             const float* packed, float* sums) {
  constexpr std::size_t kAcc = R * G;
  __m512 acc[kAcc];
#pragma GCC unroll 64
  for (std::size_t q = 0; q < kAcc; ++q) acc[q] = _mm512_setzero_ps();
  for (std::size_t s = 0; s < steps; ++s) {
    __m512 av[R];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) {
      av[r] = _mm512_broadcast_f32x8(_mm256_loadu_ps(a + r * lda + 8 * s));
    }
    const float* bp = packed + s * G * 16;
#pragma GCC unroll 16
    for (std::size_t g = 0; g < G; ++g) {
      const __m512 bv = _mm512_load_ps(bp + 16 * g);
#pragma GCC unroll 16
      for (std::size_t r = 0; r < R; ++r)
        acc[r * G + g] = _mm512_fmadd_ps(av[r], bv, acc[r * G + g]);
    }
  }
  if (tail != 0) {
    // A's last columns through a masked load: never past the row's end. The
    // packed B is zero there.
    const auto lanes = static_cast<__mmask8>((1u << tail) - 1u);
    const float* bp = packed + steps * G * 16;
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) {
      const __m512 av =
          _mm512_broadcast_f32x8(_mm256_maskz_loadu_ps(lanes, a + r * lda + 8 * steps));
#pragma GCC unroll 16
      for (std::size_t g = 0; g < G; ++g) {
        acc[r * G + g] = _mm512_fmadd_ps(av, _mm512_load_ps(bp + 16 * g), acc[r * G + g]);
      }
    }
  }
  // Accumulator q = r * G + g holds outputs (r, 2g) and (r, 2g + 1), which
  // are sums[2q] and sums[2q + 1]: eight accumulators make 16 sums in a row.
#pragma GCC unroll 8
  for (std::size_t q0 = 0; q0 < kAcc; q0 += 8) {
    __m512 group[8];
#pragma GCC unroll 8
    for (std::size_t i = 0; i < 8; ++i) {
      group[i] = q0 + i < kAcc ? acc[q0 + i < kAcc ? q0 + i : 0] : _mm512_setzero_ps();
    }
    if (q0 + 8 <= kAcc) {
      _mm512_storeu_ps(sums + 2 * q0, sum_halves(group));
    } else if (q0 + 4 >= kAcc) {
      _mm512_mask_storeu_ps(sums + 2 * q0, first_lanes(2 * (kAcc - q0)), sum_halves4(group));
    } else {
      _mm512_mask_storeu_ps(sums + 2 * q0, first_lanes(2 * (kAcc - q0)), sum_halves(group));
    }
  }
}

template <std::size_t G, std::size_t R = dot_block_rows(G)>
DTRAIN_AVX512 void dot_block_of_height(std::size_t rows, std::size_t steps, std::size_t tail,
                                       const float* a, std::size_t lda, const float* packed,
                                       float* sums) {
  if constexpr (R > 1) {
    if (rows < R) {
      dot_block_of_height<G, R - 1>(rows, steps, tail, a, lda, packed, sums);
      return;
    }
  }
  assert(rows == R);
  dot_block<G, R>(steps, tail, a, lda, packed, sums);
}

template <std::size_t G>
DTRAIN_AVX512 void dot_gemm_pairs(std::size_t m, std::size_t n, std::size_t k, float alpha,
                                  const float* a, std::size_t lda, const float* b, std::size_t ldb,
                                  float beta, float* c, std::size_t ldc) {
  constexpr std::size_t kRows = dot_block_rows(G);
  alignas(64) float packed[kDotChunk / 8 * G * 16];
  alignas(64) float sums[2 * kRows * G + 16];
  const __mmask16 columns = first_lanes(n);
  const __m512 alpha_v = _mm512_set1_ps(alpha);
  const __m512 beta_v = _mm512_set1_ps(beta);
  const EvenBlocks split = even_blocks(m, kRows);
  // The sums come out of dot_block in C's own layout when C is contiguous
  // with an even n, so that a plain product (alpha = 1, beta = 0, k in one
  // chunk, as a training step's forward pass makes) writes them there
  // directly: a round trip through `sums` cost about 5% at 128 x 10 x 128.
  const bool direct = alpha == 1.0f && beta == 0.0f && k <= kDotChunk && n == 2 * G && ldc == n;
  for (std::size_t k0 = 0; k0 < k; k0 += kDotChunk) {
    const std::size_t kc = std::min(kDotChunk, k - k0);
    pack_row_pairs<G>(b + k0, ldb, n, kc, packed);
    std::size_t i = 0;
    for (std::size_t block = 0; block < split.blocks; i += split.size(block), ++block) {
      const std::size_t rows = split.size(block);
      float* ci = c + i * ldc;
      dot_block_of_height<G>(rows, kc / 8, kc % 8, a + i * lda + k0, lda, packed,
                             direct ? ci : sums);
      if (direct) continue;
      for (std::size_t r = 0; r < rows; ++r) {
        float* crow = ci + r * ldc;
        const __m512 s = _mm512_maskz_loadu_ps(columns, sums + r * 2 * G);
        __m512 out;
        if (k0 == 0) {
          out = alpha == 1.0f ? s : _mm512_mul_ps(alpha_v, s);
          if (beta != 0.0f) {  // beta == 0 never reads C
            out = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(columns, crow), out);
          }
        } else {
          out = _mm512_fmadd_ps(alpha_v, s, _mm512_maskz_loadu_ps(columns, crow));
        }
        _mm512_mask_storeu_ps(crow, columns, out);
      }
    }
  }
}

DTRAIN_AVX512 void dot_gemm(std::size_t m, std::size_t n, std::size_t k, float alpha,
                            const float* a, std::size_t lda, const float* b, std::size_t ldb,
                            float beta, float* c, std::size_t ldc) {
  switch ((n + 1) / 2) {
#define DTRAIN_DOT_PAIRS_CASE(g)                                     \
  case g:                                                            \
    dot_gemm_pairs<g>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); \
    return;
    DTRAIN_DOT_PAIRS_CASE(1)
    DTRAIN_DOT_PAIRS_CASE(2)
    DTRAIN_DOT_PAIRS_CASE(3)
    DTRAIN_DOT_PAIRS_CASE(4)
    DTRAIN_DOT_PAIRS_CASE(5)
    DTRAIN_DOT_PAIRS_CASE(6)
    DTRAIN_DOT_PAIRS_CASE(7)
    DTRAIN_DOT_PAIRS_CASE(8)
#undef DTRAIN_DOT_PAIRS_CASE
    default:
      static_assert(kDotMaxPairs * 2 == kSmallGemmNarrow);
      std::abort();  // small_sgemm_fits takes n <= kSmallGemmNarrow only
  }
}

}  // namespace

void small_sgemm_avx512(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                        float alpha, const float* a, std::size_t lda, const float* b,
                        std::size_t ldb, float beta, float* c, std::size_t ldc) {
  run_small_sgemm<dot_gemm, broadcast_gemm<true>, broadcast_gemm<false>>(ta, tb, m, n, k, alpha, a,
                                                                         lda, b, ldb, beta, c, ldc);
}

#else  // not x86-64 with GCC or clang

void small_sgemm_avx512(Transpose, Transpose, std::size_t, std::size_t, std::size_t, float,
                        const float*, std::size_t, const float*, std::size_t, float, float*,
                        std::size_t) {
  std::abort();  // small_sgemm_cpu_isa() never says kAvx512 here
}

#endif

}  // namespace dtrain::kernels::detail
