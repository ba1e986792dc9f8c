// bench_gemm: single-thread float32 GEMM throughput on the layer shapes of a
// 784-256-128-10 MLP at batch 128, for dtrain's sgemm (its built-in backend),
// dtrain's reference loops, and every library found at build time: oneDNN
// dnnl_sgemm, OpenBLAS cblas_sgemm, BLIS bli_sgemm and Eigen (compiled with
// dtrain's flags, so SSE2 only, no -march). The reference is the core's own
// float32 FMA peak, measured in the same run by a register-only FMA loop in
// the widest vectors the CPU has (AVX-512 or AVX2); a 1024^3 row shows what
// each library reaches on a large GEMM.
//
// OpenBLAS and BLIS both export cblas_sgemm. BLIS is called through its
// native typed API (bli_sgemm) and OpenBLAS is linked first, so cblas_sgemm
// is OpenBLAS's; the benchmark checks that at run time with dladdr and prints
// the library the symbol came from. Every library runs on one thread, set
// through its API (no environment variable).
#include <dlfcn.h>
#include <immintrin.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/kernels/gemm.h"
#include "dtrain/util/aligned_vector.h"

#include "bench_util.h"

#ifdef DTRAIN_BENCH_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef DTRAIN_BENCH_HAVE_BLIS
// Also declares the CBLAS API (BLIS builds it in), used for OpenBLAS below.
#include <blis.h>
#elif defined(DTRAIN_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#ifdef DTRAIN_BENCH_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int num_threads);
extern "C" char* openblas_get_config(void);
#endif
#ifdef DTRAIN_BENCH_HAVE_EIGEN
#include <Eigen/Core>
#endif

namespace {
using dtrain::bench::cpu_model;
using dtrain::kernels::Transpose;
using Clock = std::chrono::steady_clock;

struct Case {
  std::string name;
  std::size_t m, n, k;
  Transpose ta, tb;
};

// Operands of one case, row-major with lda/ldb/ldc equal to the row length,
// on 64-byte boundaries like the network's buffers.
struct Operands {
  dtrain::AlignedVector<float> a, b, c;
  std::size_t lda, ldb, ldc;
};

Operands make_operands(const Case& cs, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const bool at = cs.ta == Transpose::kYes, bt = cs.tb == Transpose::kYes;
  Operands o;
  o.lda = at ? cs.m : cs.k;
  o.ldb = bt ? cs.k : cs.n;
  o.ldc = cs.n;
  o.a.resize(cs.m * cs.k);
  o.b.resize(cs.k * cs.n);
  o.c.assign(cs.m * cs.n, 0.0f);
  for (float& v : o.a) v = dist(rng);
  for (float& v : o.b) v = dist(rng);
  return o;
}

using GemmCall = std::function<void(const Case&, Operands&)>;

struct Library {
  std::string name;
  GemmCall call;
};

std::vector<Library> libraries() {
  std::vector<Library> libs;
  libs.push_back({"dtrain", [](const Case& cs, Operands& o) {
                    dtrain::kernels::sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, o.a, o.lda, o.b,
                                           o.ldb, 0.0f, o.c, o.ldc);
                  }});
  libs.push_back({"dtrain-ref", [](const Case& cs, Operands& o) {
                    dtrain::kernels::sgemm_reference(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, o.a,
                                                     o.lda, o.b, o.ldb, 0.0f, o.c, o.ldc);
                  }});
#ifdef DTRAIN_BENCH_HAVE_DNNL
  libs.push_back({"oneDNN", [](const Case& cs, Operands& o) {
                    dnnl_sgemm(cs.ta == Transpose::kYes ? 'T' : 'N',
                               cs.tb == Transpose::kYes ? 'T' : 'N', static_cast<dnnl_dim_t>(cs.m),
                               static_cast<dnnl_dim_t>(cs.n), static_cast<dnnl_dim_t>(cs.k), 1.0f,
                               o.a.data(), static_cast<dnnl_dim_t>(o.lda), o.b.data(),
                               static_cast<dnnl_dim_t>(o.ldb), 0.0f, o.c.data(),
                               static_cast<dnnl_dim_t>(o.ldc));
                  }});
#endif
#ifdef DTRAIN_BENCH_HAVE_OPENBLAS
  libs.push_back({"OpenBLAS", [](const Case& cs, Operands& o) {
                    cblas_sgemm(CblasRowMajor, cs.ta == Transpose::kYes ? CblasTrans : CblasNoTrans,
                                cs.tb == Transpose::kYes ? CblasTrans : CblasNoTrans,
                                static_cast<int>(cs.m), static_cast<int>(cs.n),
                                static_cast<int>(cs.k), 1.0f, o.a.data(), static_cast<int>(o.lda),
                                o.b.data(), static_cast<int>(o.ldb), 0.0f, o.c.data(),
                                static_cast<int>(o.ldc));
                  }});
#endif
#ifdef DTRAIN_BENCH_HAVE_BLIS
  libs.push_back({"BLIS", [](const Case& cs, Operands& o) {
                    // BLIS takes row and column strides, so row-major needs no
                    // transposition trick; its API is not const-correct.
                    float one = 1.0f, zero = 0.0f;
                    bli_sgemm(cs.ta == Transpose::kYes ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                              cs.tb == Transpose::kYes ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                              static_cast<dim_t>(cs.m), static_cast<dim_t>(cs.n),
                              static_cast<dim_t>(cs.k), &one, o.a.data(), static_cast<inc_t>(o.lda),
                              1, o.b.data(), static_cast<inc_t>(o.ldb), 1, &zero, o.c.data(),
                              static_cast<inc_t>(o.ldc), 1);
                  }});
#endif
#ifdef DTRAIN_BENCH_HAVE_EIGEN
  libs.push_back({"Eigen", [](const Case& cs, Operands& o) {
                    using RowMat =
                        Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
                    using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
                    using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
                    const auto ix = [](std::size_t v) { return static_cast<Eigen::Index>(v); };
                    const bool at = cs.ta == Transpose::kYes, bt = cs.tb == Transpose::kYes;
                    CMap a(o.a.data(), ix(at ? cs.k : cs.m), ix(at ? cs.m : cs.k),
                           Eigen::OuterStride<>(ix(o.lda)));
                    CMap b(o.b.data(), ix(bt ? cs.n : cs.k), ix(bt ? cs.k : cs.n),
                           Eigen::OuterStride<>(ix(o.ldb)));
                    MMap c(o.c.data(), ix(cs.m), ix(cs.n), Eigen::OuterStride<>(ix(o.ldc)));
                    if (at && bt) {
                      c.noalias() = a.transpose() * b.transpose();
                    } else if (at) {
                      c.noalias() = a.transpose() * b;
                    } else if (bt) {
                      c.noalias() = a * b.transpose();
                    } else {
                      c.noalias() = a * b;
                    }
                  }});
#endif
  return libs;
}

// Calls of one function per timed sample: repeated until a sample lasts
// >= min_sample, so that small shapes are timed over many calls.
std::size_t calls_per_sample(const std::function<void()>& f, double min_sample) {
  f();  // warm-up: page faults, library initialization, packed buffers
  std::size_t reps = 1;
  for (;;) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) f();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= min_sample || reps >= (std::size_t{1} << 20)) return reps;
    reps *= 2;
  }
}

// Seconds per call of each function: the fastest of `samples` samples. The
// functions take turns, sample by sample, so that a burst of load from
// elsewhere on this shared machine slows one sample of each rather than
// every sample of one.
std::vector<double> time_calls(const std::vector<std::function<void()>>& fs, int samples,
                               double min_sample) {
  std::vector<std::size_t> reps;
  for (const auto& f : fs) reps.push_back(calls_per_sample(f, min_sample));
  std::vector<double> best(fs.size(), std::numeric_limits<double>::infinity());
  for (int i = 0; i < samples; ++i) {
    for (std::size_t j = 0; j < fs.size(); ++j) {
      const auto t0 = Clock::now();
      for (std::size_t r = 0; r < reps[j]; ++r) fs[j]();
      const double s =
          std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(reps[j]);
      best[j] = std::min(best[j], s);
    }
  }
  return best;
}

// The core's float32 FMA peak: 12 independent chains of FMAs on registers
// only (enough to cover the FMA latency times the number of FMA pipes on
// current x86 cores), 2 flops per lane, in the widest vectors the CPU has:
// 16-lane AVX-512 where it has avx512f, else 8-lane AVX2. Measured rather than
// computed from the lane count, because some AVX-512 cores have one 512-bit
// FMA pipe and others two. GFLOP/s, or 0 without AVX2+FMA.
__attribute__((target("avx2,fma"))) double fma_chains_gflops_avx2(long iters) {
  volatile float seed = 1.0f;
  const __m256 x = _mm256_set1_ps(seed * 0.999999f);
  const __m256 y = _mm256_set1_ps(seed * 1e-7f);
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * seed);
  const auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  seed = out[0];  // keeps the loop alive
  return static_cast<double>(iters) * 12 * 8 * 2 / s / 1e9;
}

__attribute__((target("avx512f"))) double fma_chains_gflops_avx512(long iters) {
  volatile float seed = 1.0f;
  const __m512 x = _mm512_set1_ps(seed * 0.999999f);
  const __m512 y = _mm512_set1_ps(seed * 1e-7f);
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * seed);
  const auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, sum);
  seed = out[0];  // keeps the loop alive
  return static_cast<double>(iters) * 12 * 16 * 2 / s / 1e9;
}

bool cpu_has_avx512f() { return __builtin_cpu_supports("avx512f"); }

const char* peak_isa() {
  if (cpu_has_avx512f()) return "AVX-512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "AVX2";
  return "none";
}

double fma_peak_gflops(int samples) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  const auto chains = cpu_has_avx512f() ? fma_chains_gflops_avx512 : fma_chains_gflops_avx2;
  chains(10'000'000);  // lets the clock ramp up
  double best = 0;
  for (int i = 0; i < samples; ++i) best = std::max(best, chains(20'000'000));
  return best;
}

std::string shared_object_of(const void* symbol) {
  Dl_info info{};
  if (dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Single-thread float32 GEMM on the MLP 784-256-128-10 shapes, batch 128"};
  // Many short samples rather than a few long ones: on this shared VM a
  // core's speed changes for stretches of a few hundred milliseconds, and
  // the fastest of 31 x 5 ms varied less between runs than that of 11 x 20 ms.
  int samples = 31;
  double min_sample_ms = 5;
  bool quick = false;
  app.add_option("--samples", samples, "timed samples per cell (the fastest is reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-sample-ms", min_sample_ms, "calls are repeated to fill a sample")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "smoke run: 1 sample, 1 call, no 1024^3 row");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    samples = 1;
    min_sample_ms = 0;
  }

  // One thread everywhere, through each library's API.
#ifdef DTRAIN_BENCH_HAVE_DNNL
  omp_set_num_threads(1);  // oneDNN's OpenMP runtime, in this (the only) thread
#endif
#ifdef DTRAIN_BENCH_HAVE_OPENBLAS
  openblas_set_num_threads(1);
#endif
#ifdef DTRAIN_BENCH_HAVE_BLIS
  bli_thread_set_num_threads(1);
#endif
  dtrain::kernels::set_gemm_threads(1);

  const auto N = Transpose::kNo;
  const auto T = Transpose::kYes;
  std::vector<Case> cases = {
      // The calls Network makes for a batch of 128 (src/model/network.cpp),
      // with W stored [out x in]. forward: Z = X W^T
      {"fwd L1", 128, 256, 784, N, T},
      {"fwd L2", 128, 128, 256, N, T},
      {"fwd L3", 128, 10, 128, N, T},
      // weight gradient: dW = dZ^T X
      {"dW L1", 256, 784, 128, T, N},
      {"dW L2", 128, 256, 128, T, N},
      {"dW L3", 10, 128, 128, T, N},
      // input gradient: dX = dZ W (layer 1's is not needed)
      {"dX L2", 128, 256, 128, N, N},
      {"dX L3", 128, 128, 10, N, N},
  };
  if (!quick) cases.push_back({"square", 1024, 1024, 1024, N, N});

  const auto libs = libraries();
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf(
      "# bench_gemm: single-thread float32 row-major GEMM, alpha=1 beta=0, "
      "GFLOP/s = 2mnk / fastest sample's time per call\n");
  std::printf("# command: %s\n", command.c_str());
  std::printf("# machine: %s, nproc=%u\n", cpu_model().c_str(),
              std::thread::hardware_concurrency());
  std::printf("# dtrain sgemm backend: %s\n", dtrain::kernels::gemm_backend_name());
#ifdef DTRAIN_BENCH_HAVE_DNNL
  {
    const dnnl_version_t* v = dnnl_version();
    std::printf("# oneDNN %d.%d.%d, cpu runtime %u, effective ISA 0x%x (0x7 avx2, 0x27+ avx512)\n",
                v->major, v->minor, v->patch, v->cpu_runtime,
                static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
  }
#endif
#ifdef DTRAIN_BENCH_HAVE_OPENBLAS
  std::printf("# OpenBLAS: %s; cblas_sgemm from %s\n", openblas_get_config(),
              shared_object_of(reinterpret_cast<const void*>(&cblas_sgemm)).c_str());
#endif
#ifdef DTRAIN_BENCH_HAVE_BLIS
  std::printf("# BLIS %s (native bli_sgemm), arch %s; from %s\n", bli_info_get_version_str(),
              bli_arch_string(bli_arch_query_id()),
              shared_object_of(reinterpret_cast<const void*>(&bli_sgemm)).c_str());
#endif
#ifdef DTRAIN_BENCH_HAVE_EIGEN
  std::printf("# Eigen %d.%d.%d, %s\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
              EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse());
#endif
  const double peak = fma_peak_gflops(quick ? 1 : 5);
  std::printf(
      "# peak: %.1f GFLOP/s single-core float32 (12 chains of %s FMA on registers, "
      "best of samples)\n",
      peak, peak_isa());
  std::printf(
      "# time: fastest of %d samples, each >= %.0f ms of back-to-back calls; the libraries "
      "take turns, sample by sample\n",
      samples, min_sample_ms);

  std::printf("%-8s %16s", "shape", "m x n x k");
  for (const auto& lib : libs) std::printf(" %10s", lib.name.c_str());
  std::printf(" %12s  %s\n", "dtrain/peak", "dtrain kernel");

  std::mt19937 rng(42);
  bool all_correct = true;
  for (const Case& cs : cases) {
    Operands o = make_operands(cs, rng);
    // Every library's C is checked against dtrain's reference loops.
    Operands want = o;
    dtrain::kernels::sgemm_reference(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, want.a, want.lda, want.b,
                                     want.ldb, 0.0f, want.c, want.ldc);
    float scale = 1.0f;
    for (float v : want.c) scale = std::max(scale, std::abs(v));
    char dims[64];
    std::snprintf(dims, sizeof dims, "%zux%zux%zu %c%c", cs.m, cs.n, cs.k, cs.ta == T ? 'T' : 'N',
                  cs.tb == T ? 'T' : 'N');
    std::printf("%-8s %16s", cs.name.c_str(), dims);
    std::vector<std::function<void()>> calls;
    for (const auto& lib : libs) calls.push_back([&] { lib.call(cs, o); });
    const std::vector<double> seconds = time_calls(calls, samples, min_sample_ms / 1000.0);
    double dtrain_gflops = 0;
    std::string wrong;
    for (std::size_t j = 0; j < libs.size(); ++j) {
      const auto& lib = libs[j];
      const double gflops = 2.0 * static_cast<double>(cs.m * cs.n * cs.k) / seconds[j] / 1e9;
      if (lib.name == "dtrain") dtrain_gflops = gflops;
      std::fill(o.c.begin(), o.c.end(), 0.0f);
      lib.call(cs, o);
      float err = 0;
      for (std::size_t i = 0; i < o.c.size(); ++i)
        err = std::max(err, std::abs(o.c[i] - want.c[i]));
      if (err > 1e-4f * scale) wrong += " " + lib.name;
      std::printf(" %10.1f", gflops);
    }
    if (peak > 0) {
      std::printf(" %11.0f%%", 100.0 * dtrain_gflops / peak);
    } else {
      std::printf(" %12s", "n/a");
    }
    std::printf("  %s", dtrain::kernels::sgemm_kernel_name(cs.ta, cs.tb, cs.m, cs.n, cs.k));
    if (!wrong.empty()) std::printf("  WRONG RESULT:%s", wrong.c_str());
    std::printf("\n");
    std::fflush(stdout);
    all_correct = all_correct && wrong.empty();
  }
  return all_correct ? 0 : 1;
}
