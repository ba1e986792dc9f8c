// The MPI backend and the threads backend agree: each MPI rank also runs the
// threads backend with as many threads as there are ranks, on the same
// deterministic inputs, and compares. Reductions of floating-point values
// may round differently (mpi.h: MPI does not promise rank order), so they
// must agree to 1e-6 relative (inputs are positive, so relative error is
// well defined); everything else must be identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../comm_test_util.h"
#include "dtrain/comm/threads.h"
#include "mpi_test_env.h"

namespace dtrain {
namespace {

using mpi_test::comm;
using testing_util::same_bits;
using testing_util::test_value;

constexpr std::size_t kLen = 100'003;

// Positive inputs spanning a few orders of magnitude.
template <class T>
std::vector<T> inputs(int rank, std::size_t n, std::uint64_t seed) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      v[i] = static_cast<T>(1.0 + std::fabs(static_cast<double>(test_value<T>(rank, i, seed))) * 4);
    } else {
      v[i] = test_value<T>(rank, i, seed);
    }
  }
  return v;
}

// What rank 0 of a threads world of comm().size() workers ends up with when
// every worker runs `fn` on its own inputs.
template <class T, class Fn>
std::vector<T> threads_result(Fn fn) {
  ThreadsOptions opts;
  opts.workers = comm().size();
  std::vector<T> out;
  run_threads(opts, [&](Communicator& c) {
    auto result = fn(c);
    if (c.rank() == comm().rank()) out = std::move(result);
  });
  return out;
}

template <class T>
std::size_t count_far(const std::vector<T>& a, const std::vector<T>& b, std::string& where) {
  if (a.size() != b.size()) {
    where = "sizes differ";
    return 1;
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]);
    const double y = static_cast<double>(b[i]);
    const bool ok =
        std::is_floating_point_v<T> ? std::fabs(x - y) <= 1e-6 * std::fabs(y) : a[i] == b[i];
    if (!ok && bad++ == 0) {
      where = "element " + std::to_string(i) + ": mpi " + std::to_string(x) + ", threads " +
              std::to_string(y);
    }
  }
  return bad;
}

template <class T>
class MpiVsThreads : public ::testing::Test {};
using Types = ::testing::Types<float, double, std::int64_t>;
TYPED_TEST_SUITE(MpiVsThreads, Types);

TYPED_TEST(MpiVsThreads, Allreduce) {
  using T = TypeParam;
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin}) {
    SCOPED_TRACE(to_string(op));
    auto mpi = inputs<T>(comm().rank(), kLen, 7);
    comm().allreduce(std::span<T>(mpi), op);
    const auto threads = threads_result<T>([&](Communicator& c) {
      auto v = inputs<T>(c.rank(), kLen, 7);
      c.allreduce(std::span<T>(v), op);
      return v;
    });
    std::string where;
    EXPECT_EQ(count_far(mpi, threads, where), 0u) << where;
  }
}

TYPED_TEST(MpiVsThreads, ReduceScatter) {
  using T = TypeParam;
  const auto n = static_cast<std::size_t>(comm().size());
  const std::size_t block = 1001;
  const auto mine = inputs<T>(comm().rank(), block * n, 8);
  std::vector<T> mpi(block);
  comm().reduce_scatter(std::span<const T>(mine), std::span<T>(mpi), ReduceOp::kSum);
  const auto threads = threads_result<T>([&](Communicator& c) {
    const auto in = inputs<T>(c.rank(), block * n, 8);
    std::vector<T> out(block);
    c.reduce_scatter(std::span<const T>(in), std::span<T>(out), ReduceOp::kSum);
    return out;
  });
  std::string where;
  EXPECT_EQ(count_far(mpi, threads, where), 0u) << where;
}

// The MPI backend's reduce_scatter_sum_to is the default one: reduce-scatter
// into scratch, handed over alone. Its sums are reduce_scatter's.
template <class T>
void expect_reduce_scatter_sum_to_is_reduce_scatter() {
  const auto n = static_cast<std::size_t>(comm().size());
  const std::size_t block = 1001;
  const auto mine = inputs<T>(comm().rank(), block * n, 8);
  std::vector<T> expected(block);
  comm().reduce_scatter(std::span<const T>(mine), std::span<T>(expected), ReduceOp::kSum);
  std::vector<T> scratch(block);
  int calls = 0;
  comm().reduce_scatter_sum_to(std::span<const T>(mine), std::span<T>(scratch),
                               [&](std::span<const T> a, std::span<const T> b) {
                                 ++calls;
                                 EXPECT_EQ(a.data(), scratch.data());
                                 EXPECT_TRUE(b.empty());
                               });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(scratch, expected);
}

TEST(MpiVsThreadsExact, ReduceScatterSumTo) {
  expect_reduce_scatter_sum_to_is_reduce_scatter<float>();
  expect_reduce_scatter_sum_to_is_reduce_scatter<double>();
}

TEST(MpiVsThreadsExact, BroadcastAllgatherAlltoallv) {
  const int n = comm().size();
  const auto un = static_cast<std::size_t>(n);
  const auto run = [&](Communicator& c) {
    std::vector<std::int64_t> out;
    auto b = inputs<std::int64_t>(c.rank(), 333, 9);
    c.broadcast(std::span<std::int64_t>(b), n - 1);
    out.insert(out.end(), b.begin(), b.end());
    const auto mine = inputs<std::int64_t>(c.rank(), 77, 10);
    std::vector<std::int64_t> all(77 * un);
    c.allgather(std::span<const std::int64_t>(mine), std::span<std::int64_t>(all));
    out.insert(out.end(), all.begin(), all.end());
    std::vector<std::size_t> send_counts(un), recv_counts(un);
    for (std::size_t d = 0; d < un; ++d) {
      send_counts[d] = (static_cast<std::size_t>(c.rank()) + 2 * d) % 4;
      recv_counts[d] = (d + 2 * static_cast<std::size_t>(c.rank())) % 4;
    }
    std::size_t send_total = 0, recv_total = 0;
    for (std::size_t d = 0; d < un; ++d) {
      send_total += send_counts[d];
      recv_total += recv_counts[d];
    }
    const auto send = inputs<std::int64_t>(c.rank(), send_total, 11);
    std::vector<std::int64_t> recv(recv_total);
    c.alltoallv(std::span<const std::int64_t>(send), std::span<const std::size_t>(send_counts),
                std::span<std::int64_t>(recv), std::span<const std::size_t>(recv_counts));
    out.insert(out.end(), recv.begin(), recv.end());
    return out;
  };
  const auto mpi = run(comm());
  const auto threads = threads_result<std::int64_t>(run);
  EXPECT_TRUE(same_bits(mpi, threads));
}

}  // namespace
}  // namespace dtrain
