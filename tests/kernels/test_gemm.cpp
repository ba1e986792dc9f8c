// sgemm (whatever backend was built) and sgemm_reference against a naive
// double-precision GEMM, over every transpose pair, odd and empty shapes,
// padded leading dimensions, alpha and beta; and each set of dtrain's small
// kernels (AVX2, AVX-512) on its own, wherever the CPU runs it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "dtrain/kernels/gemm.h"
#include "kernels/gemm_small.h"

namespace dtrain::kernels {
namespace {

using GemmFn = void (*)(Transpose, Transpose, std::size_t, std::size_t, std::size_t, float,
                        std::span<const float>, std::size_t, std::span<const float>, std::size_t,
                        float, std::span<float>, std::size_t);

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Shape {
  std::size_t m, n, k;
  std::size_t pad = 0;  // extra elements per row of A, B and C
  float alpha = 1.0f;
  float beta = 0.0f;
};

// A rows x cols row-major matrix with leading dimension ld, random values in
// the used part and `fill` in the padding.
std::vector<float> random_matrix(std::size_t rows, std::size_t cols, std::size_t ld,
                                 std::mt19937& rng, float fill) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(rows * ld, fill);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) v[i * ld + j] = dist(rng);
  }
  return v;
}

// Runs `gemm` on one shape and checks every element of C against a double
// reference, within the float32 forward-error bound of a length-k dot
// product: |err| <= c * (k + 2) * eps * (|alpha| sum|a||b| + |beta||c|),
// with c ~ 8 for slack. Also checks that C's padding is untouched and that
// A's and B's padding (NaN) is never read.
void check_shape(GemmFn gemm, Transpose ta, Transpose tb, const Shape& s, unsigned seed) {
  std::mt19937 rng(seed);
  const bool at = ta == Transpose::kYes;
  const bool bt = tb == Transpose::kYes;
  const std::size_t a_rows = at ? s.k : s.m, a_cols = at ? s.m : s.k;
  const std::size_t b_rows = bt ? s.n : s.k, b_cols = bt ? s.k : s.n;
  const std::size_t lda = a_cols + s.pad, ldb = b_cols + s.pad, ldc = s.n + s.pad;
  const auto a = random_matrix(a_rows, a_cols, lda, rng, kNaN);
  const auto b = random_matrix(b_rows, b_cols, ldb, rng, kNaN);
  constexpr float kSentinel = 12345.0f;
  // With beta == 0, C's old values must not be read: NaN would show.
  auto c = random_matrix(s.m, s.n, ldc, rng, kSentinel);
  if (s.beta == 0.0f) {
    for (std::size_t i = 0; i < s.m; ++i) {
      for (std::size_t j = 0; j < s.n; ++j) c[i * ldc + j] = kNaN;
    }
  }
  const auto c0 = c;

  gemm(ta, tb, s.m, s.n, s.k, s.alpha, a, lda, b, ldb, s.beta, c, ldc);

  const auto A = [&](std::size_t i, std::size_t p) {
    return static_cast<double>(at ? a[p * lda + i] : a[i * lda + p]);
  };
  const auto B = [&](std::size_t p, std::size_t j) {
    return static_cast<double>(bt ? b[j * ldb + p] : b[p * ldb + j]);
  };
  const double eps = std::numeric_limits<float>::epsilon();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < s.m; ++i) {
    for (std::size_t j = 0; j < ldc; ++j) {
      const float got = c[i * ldc + j];
      if (j >= s.n) {
        if (std::memcmp(&got, &c0[i * ldc + j], sizeof got) != 0 && bad++ < 5) {
          ADD_FAILURE() << "padding C(" << i << "," << j << ") overwritten";
        }
        continue;
      }
      double dot = 0, mag = 0;
      for (std::size_t p = 0; p < s.k; ++p) {
        dot += A(i, p) * B(p, j);
        mag += std::abs(A(i, p) * B(p, j));
      }
      const double old = s.beta == 0.0f ? 0.0 : c0[i * ldc + j];
      const double want = s.alpha * dot + s.beta * old;
      const double scale = std::abs(s.alpha) * mag + std::abs(s.beta * old);
      const double tol = 8.0 * static_cast<double>(s.k + 2) * eps * scale + 1e-30;
      if (!(std::abs(got - want) <= tol) && bad++ < 5) {
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << got << ", want " << want << " (tol "
                      << tol << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0u) << "m=" << s.m << " n=" << s.n << " k=" << s.k << " pad=" << s.pad
                     << " ta=" << at << " tb=" << bt;
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> v = {
      {1, 1, 1},
      {7, 13, 5},
      {13, 7, 5, 3},
      {7, 13, 5, 0, 0.5f, 2.0f},
      {7, 13, 5, 4, -1.5f, -0.25f},
      {17, 31, 129, 1, 1.0f, 1.0f},  // k spans two reference blocks
      {0, 5, 3},                     // empty C
      {5, 0, 3},
      {4, 6, 0, 0, 1.0f, 0.5f},  // k == 0: C = beta * C
      {4, 6, 0, 2, 1.0f, 0.0f},  // k == 0, beta == 0: C = 0
      {4, 6, 3, 1, 0.0f, 3.0f},  // alpha == 0
      {33, 65, 47, 5, 0.75f, 0.5f},
      // Blocks and remainders of the small kernels (gemm_small.cpp): rows
      // past multiples of 3 and 6, columns past 16, 8 and 4, k past 8.
      {5, 3, 7, 1},
      {6, 16, 9, 2, 1.0f, 1.0f},
      {8, 9, 17, 1, -1.0f, 0.0f},
      {11, 10, 13, 3, 0.5f, 2.0f},
      {13, 4, 8},
      {16, 23, 16, 2, 0.5f, 0.5f},
      {2, 1, 33},
      // Wide dot rows (op(B) = B^T, 8 to 16 columns): one pass of 8-12
      // columns, two passes of 7 + 6, 7 + 7, 8 + 7 and 8 + 8, k below, at
      // and past multiples of 8, both with alpha = 1, beta = 0 (the
      // specialised path) and without.
      {3, 8, 16, 1, 1.0f, 0.5f},
      {4, 11, 21, 2, -0.5f, 0.0f},
      {2, 12, 7, 0, 1.0f, 1.0f},
      {5, 13, 8, 3, 2.0f, 0.0f},
      {3, 16, 33, 1, 1.0f, -1.0f},
      {3, 12, 19, 2},
      {5, 15, 8, 1},
      {4, 14, 13, 3, 0.5f, 0.0f},
      {7, 9, 24, 1},
      {2, 11, 9, 2},
      {8, 13, 16, 2},
      // k = 1 through the broadcast kernel's blocks (the first product
      // alone), with padding and the specialised path.
      {13, 16, 1, 1},
      {5, 24, 1, 2, 2.0f, 0.5f},
      {10, 128, 128, 0, 1.0f, 1.0f},  // MLP layer 3 weight gradient, accumulated
      {128, 128, 10},                 // MLP layer 3 input gradient
      {128, 10, 784},                 // softmax regression forward
      {128, 10, 128},                 // MLP layer 3 forward
      {128, 256, 784},                // MLP layer 1 forward
      {784, 256, 128, 0, 1.0f, 1.0f}  // MLP layer 1 weight gradient, accumulated
  };
  return v;
}

struct Backend {
  const char* name;
  GemmFn fn;
};

class GemmTest : public testing::TestWithParam<std::tuple<Backend, Transpose, Transpose>> {};

TEST_P(GemmTest, MatchesDoubleReference) {
  const auto [backend, ta, tb] = GetParam();
  unsigned seed = 1;
  for (const Shape& s : shapes()) check_shape(backend.fn, ta, tb, s, seed++);
}

INSTANTIATE_TEST_SUITE_P(All, GemmTest,
                         testing::Combine(testing::Values(Backend{"sgemm", &sgemm},
                                                          Backend{"reference", &sgemm_reference}),
                                          testing::Values(Transpose::kNo, Transpose::kYes),
                                          testing::Values(Transpose::kNo, Transpose::kYes)),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param).name) +
                                  (std::get<1>(p.param) == Transpose::kYes ? "_T" : "_N") +
                                  (std::get<2>(p.param) == Transpose::kYes ? "T" : "N");
                         });

// The small kernels called directly, so that both sets are checked on a CPU
// that runs both (sgemm only ever picks one), on the shapes they take.
using SmallKernel = void (*)(Transpose, Transpose, std::size_t, std::size_t, std::size_t, float,
                             const float*, std::size_t, const float*, std::size_t, float, float*,
                             std::size_t);

template <SmallKernel kKernel>
void small_kernel(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k,
                  float alpha, std::span<const float> a, std::size_t lda, std::span<const float> b,
                  std::size_t ldb, float beta, std::span<float> c, std::size_t ldc) {
  ASSERT_TRUE(detail::small_sgemm_fits(ta, tb, m, n, k) && m > 0 && n > 0 && k > 0);
  kKernel(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
}

// Shapes for the blocks, tails and chunks of the AVX-512 set (beyond those of
// shapes()): dot kernel widths 1-16 (pairs of B's rows, an odd last row),
// each with row blocks of every height, k past multiples of 8 and across the
// 512-wide chunks of packed B, C written directly (alpha 1, beta 0,
// ldc == even n) or through the sums; broadcast kernel widths past 16, 32,
// 48 and 64 columns.
const std::vector<Shape>& small_kernel_shapes() {
  static const std::vector<Shape> v = [] {
    std::vector<Shape> all = shapes();
    for (std::size_t n = 1; n <= 16; ++n) {
      all.push_back({13, n, 37});                // direct for even n
      all.push_back({9, n, 24, 1, 1.0f, 0.0f});  // padded C: through the sums
      all.push_back({7, n, 19, 0, -0.5f, 0.25f});
    }
    // Every row-block height of every dot width (blocks of up to 8 rows).
    for (std::size_t n = 1; n <= 16; ++n) {
      for (std::size_t m = 1; m <= 17; ++m) all.push_back({m, n, 29});
    }
    all.push_back({128, 10, 128});
    // The whole 32 KiB of packed B (8 pairs x 64 steps), and several chunks
    // with alpha != 1 and beta == 0.
    all.push_back({4, 16, 512});
    all.push_back({4, 15, 513, 1, 0.5f, 0.0f});
    all.push_back({3, 16, 1100, 2, 1.0f, 1.0f});
    for (const std::size_t k : {511u, 512u, 513u, 1100u}) {
      all.push_back({6, 10, k});
      all.push_back({5, 7, k, 2, 0.5f, 1.5f});
    }
    for (const std::size_t n : {15u, 16u, 17u, 31u, 33u, 48u, 63u, 64u, 65u, 130u}) {
      all.push_back({10, n, 12, 1});
      all.push_back({13, n, 5, 0, 2.0f, -1.0f});
    }
    // And a seeded sweep of shapes in the small kernels' range, each with
    // one of the narrow dimensions at most 16, padding and alpha/beta drawn
    // too, for combinations the lists above do not name.
    std::mt19937 rng(20261127);
    const auto draw = [&rng](std::size_t lo, std::size_t hi) {
      return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
    };
    const float alphas[] = {1.0f, 1.0f, -0.5f, 2.0f};
    const float betas[] = {0.0f, 0.0f, 1.0f, 0.5f};
    for (int i = 0; i < 120; ++i) {
      Shape shape{draw(1, 150), draw(1, 150),       draw(1, 150),
                  draw(0, 3),   alphas[draw(0, 3)], betas[draw(0, 3)]};
      switch (i % 3) {  // which dimension is narrow
        case 0:
          shape.m = draw(1, 16);
          break;
        case 1:
          shape.n = draw(1, 16);
          break;
        default:
          shape.k = draw(1, 16);
          break;
      }
      all.push_back(shape);
    }
    return all;
  }();
  return v;
}

class SmallKernelTest : public testing::TestWithParam<std::tuple<Transpose, Transpose>> {
 protected:
  void check_all(GemmFn kernel) const {
    const auto [ta, tb] = GetParam();
    unsigned seed = 1000;
    std::size_t checked = 0;
    for (const Shape& s : small_kernel_shapes()) {
      if (s.m == 0 || s.n == 0 || s.k == 0 || !detail::small_sgemm_fits(ta, tb, s.m, s.n, s.k)) {
        continue;
      }
      check_shape(kernel, ta, tb, s, seed++);
      ++checked;
    }
    // Every pair but A^T B^T has shapes here.
    if (!(ta == Transpose::kYes && tb == Transpose::kYes)) {
      EXPECT_GT(checked, 20u);
    }
  }
};

TEST_P(SmallKernelTest, Avx2MatchesDoubleReference) {
  if (detail::small_sgemm_cpu_isa() == detail::SmallGemmIsa::kNone) {
    GTEST_SKIP() << "this CPU has no AVX2 with FMA";
  }
  check_all(&small_kernel<&detail::small_sgemm_avx2>);
}

TEST_P(SmallKernelTest, Avx512MatchesDoubleReference) {
  if (detail::small_sgemm_cpu_isa() != detail::SmallGemmIsa::kAvx512) {
    GTEST_SKIP() << "this CPU has no AVX-512 (F, DQ, VL)";
  }
  check_all(&small_kernel<&detail::small_sgemm_avx512>);
}

INSTANTIATE_TEST_SUITE_P(All, SmallKernelTest,
                         testing::Combine(testing::Values(Transpose::kNo, Transpose::kYes),
                                          testing::Values(Transpose::kNo, Transpose::kYes)),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param) == Transpose::kYes ? "T" : "N") +
                                  (std::get<1>(p.param) == Transpose::kYes ? "T" : "N");
                         });

TEST(Gemm, RejectsShortSpansAndLeadingDimensions) {
  for (GemmFn fn : {GemmFn{&sgemm}, GemmFn{&sgemm_reference}}) {
    std::vector<float> a(6), b(6), c(4);
    // 2x3 * 3x2 fits exactly.
    EXPECT_NO_THROW(fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2));
    EXPECT_THROW(
        fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, std::span(a).first(5), 3, b, 2, 0, c, 2),
        std::invalid_argument);
    EXPECT_THROW(
        fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a, 3, std::span(b).first(5), 2, 0, c, 2),
        std::invalid_argument);
    EXPECT_THROW(
        fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a, 3, b, 2, 0, std::span(c).first(3), 2),
        std::invalid_argument);
    EXPECT_THROW(fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2),
                 std::invalid_argument);  // lda < k
    EXPECT_THROW(fn(Transpose::kYes, Transpose::kNo, 2, 2, 3, 1, a, 1, b, 2, 0, c, 2),
                 std::invalid_argument);  // A^T: lda < m
    EXPECT_THROW(fn(Transpose::kNo, Transpose::kYes, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2),
                 std::invalid_argument);  // B^T: ldb < k
    EXPECT_THROW(fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a, 3, b, 2, 0, c, 1),
                 std::invalid_argument);  // ldc < n
    // A padded ld needs only (rows - 1) * ld + cols elements.
    std::vector<float> a_pad(2 * 5 - 2);
    EXPECT_NO_THROW(fn(Transpose::kNo, Transpose::kNo, 2, 2, 3, 1, a_pad, 5, b, 2, 0, c, 2));
    // Empty shapes need no storage at all.
    EXPECT_NO_THROW(fn(Transpose::kNo, Transpose::kNo, 0, 0, 0, 1, {}, 0, {}, 0, 0, {}, 0));
    // Absurd leading dimensions are rejected, not wrapped around.
    EXPECT_THROW(fn(Transpose::kNo, Transpose::kNo, 3, 2, 3, 1, a,
                    std::numeric_limits<std::size_t>::max() / 2, b, 2, 0, c, 2),
                 std::invalid_argument);
  }
}

TEST(Gemm, BackendNameAndThreads) {
  const std::string name = gemm_backend_name();
  EXPECT_TRUE(name == "onednn" || name == "reference") << name;
  EXPECT_EQ(gemm_threads(), 1);
  EXPECT_THROW(set_gemm_threads(0), std::invalid_argument);
  const int got = set_gemm_threads(2);
  EXPECT_EQ(got, name == "reference" ? 1 : 2);
  // A multi-threaded call gives the same answers.
  check_shape(&sgemm, Transpose::kNo, Transpose::kYes, {128, 256, 784, 3, 1.0f, 0.5f}, 99);
  EXPECT_EQ(set_gemm_threads(1), 1);
}

// Which kernel runs which shape: the narrow layer shapes go to dtrain's small
// kernels wherever the CPU has AVX-512 (F, DQ, VL) or AVX2 with FMA, and only
// with the oneDNN backend; the wide ones, and op(A)^T op(B)^T, never do.
TEST(Gemm, KernelChoiceFollowsShapeAndCpu) {
  const std::string backend = gemm_backend_name();
  const auto N = Transpose::kNo;
  const auto T = Transpose::kYes;
  std::string small = backend;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (backend == "onednn" && avx2) {
    small = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl")
                ? "small-avx512"
                : "small-avx2";
  }
#endif
  EXPECT_EQ(sgemm_kernel_name(N, T, 128, 10, 128), small);  // forward, 10 outputs
  EXPECT_EQ(sgemm_kernel_name(T, N, 10, 128, 128), small);  // weight gradient
  EXPECT_EQ(sgemm_kernel_name(N, N, 128, 128, 10), small);  // input gradient
  EXPECT_EQ(sgemm_kernel_name(N, T, 128, 256, 784), backend);
  EXPECT_EQ(sgemm_kernel_name(T, N, 256, 784, 128), backend);
  EXPECT_EQ(sgemm_kernel_name(T, T, 128, 10, 128), backend);
  EXPECT_EQ(sgemm_kernel_name(N, T, 60000, 10, 784), backend);  // too large
  EXPECT_EQ(sgemm_kernel_name(N, T, 0, 10, 784), backend);      // empty
}

// dtrain calls sgemm from one worker thread per rank at once.
TEST(Gemm, ConcurrentCallsFromSeveralThreads) {
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 3; ++t) {
    threads.emplace_back([t] {
      for (unsigned r = 0; r < 5; ++r) {
        check_shape(&sgemm, Transpose::kYes, Transpose::kNo, {64, 48, 96, 1, 1.0f, 1.0f},
                    100 + 10 * t + r);
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace dtrain::kernels
