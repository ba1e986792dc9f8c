// sgemm's backend: oneDNN's dnnl_sgemm when dtrain is built with it
// (DTRAIN_HAVE_DNNL), else sgemm_reference.
#include "dtrain/kernels/gemm.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "gemm_check.h"
#include "gemm_small.h"

#ifdef DTRAIN_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

namespace dtrain::kernels {
namespace {

std::atomic<int> g_threads{1};

#ifdef DTRAIN_HAVE_DNNL
// dnnl_dim_t is int64_t; sizes past it cannot be passed on.
dnnl_dim_t to_dim(std::size_t v) {
  if (v > static_cast<std::size_t>(std::numeric_limits<dnnl_dim_t>::max())) {
    throw std::invalid_argument("sgemm: dimension " + std::to_string(v) + " too large");
  }
  return static_cast<dnnl_dim_t>(v);
}

// The OpenMP build of oneDNN runs a GEMM on omp_get_max_threads() threads,
// which defaults to every core. That ICV is per thread in libgomp, so it is
// set for the duration of the call in the calling thread and then put back:
// the caller's own OpenMP code, and other threads, keep their setting.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int threads) : saved_(omp_get_max_threads()) {
    if (saved_ != threads) omp_set_num_threads(threads);
  }
  ~OmpThreadsScope() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};
#endif

}  // namespace

void sgemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
           std::span<const float> a, std::size_t lda, std::span<const float> b, std::size_t ldb,
           float beta, std::span<float> c, std::size_t ldc) {
#ifdef DTRAIN_HAVE_DNNL
  detail::check_gemm_args(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
  // oneDNN rejects k == 0 (it wants lda >= max(1, k)); BLAS semantics are
  // C = beta * C, done here, as for alpha == 0 (A and B are then not read).
  if (k == 0 || alpha == 0.0f) {
    detail::scale_c(m, n, beta, c, ldc);
    return;
  }
  if (detail::small_sgemm_handles(ta, tb, m, n, k)) {
    detail::small_sgemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
    return;
  }
  OmpThreadsScope threads(g_threads.load(std::memory_order_relaxed));
  const dnnl_status_t status = dnnl_sgemm(
      ta == Transpose::kYes ? 'T' : 'N', tb == Transpose::kYes ? 'T' : 'N', to_dim(m), to_dim(n),
      to_dim(k), alpha, a.data(), to_dim(lda), b.data(), to_dim(ldb), beta, c.data(), to_dim(ldc));
  if (status != dnnl_success) {
    // The checks above rule out every argument error oneDNN reports, so this
    // is a failure inside oneDNN (e.g. out of memory for its packed buffers).
    throw std::runtime_error("sgemm: dnnl_sgemm failed with status " +
                             std::to_string(static_cast<int>(status)));
  }
#else
  sgemm_reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

const char* gemm_backend_name() {
#ifdef DTRAIN_HAVE_DNNL
  return "onednn";
#else
  return "reference";
#endif
}

const char* sgemm_kernel_name(Transpose ta, Transpose tb, std::size_t m, std::size_t n,
                              std::size_t k) {
#ifdef DTRAIN_HAVE_DNNL
  if (m > 0 && n > 0 && k > 0 && detail::small_sgemm_handles(ta, tb, m, n, k)) {
    return detail::small_sgemm_kernel_name();
  }
#else
  (void)ta, (void)tb, (void)m, (void)n, (void)k;
#endif
  return gemm_backend_name();
}

int set_gemm_threads(int threads) {
  if (threads < 1) {
    throw std::invalid_argument("set_gemm_threads: threads = " + std::to_string(threads) +
                                ", must be >= 1");
  }
#ifdef DTRAIN_HAVE_DNNL
  g_threads.store(threads, std::memory_order_relaxed);
#endif
  return gemm_threads();
}

int gemm_threads() { return g_threads.load(std::memory_order_relaxed); }

}  // namespace dtrain::kernels
