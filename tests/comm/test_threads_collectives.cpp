// Collectives of the threads backend: results against serial references, for
// every world size 1..16 and the edge-case buffer lengths around it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "comm_test_util.h"
#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing_util::reference_reduce_all;
using testing_util::same_bits;
using testing_util::small_lengths;
using testing_util::test_values;

constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin};
constexpr std::size_t kLarge = 1'000'000;

ThreadsOptions opts(int workers) {
  ThreadsOptions o;
  o.workers = workers;
  o.timeout = std::chrono::seconds(60);
  return o;
}

// Runs an allreduce of test values on every rank and returns what each rank
// ended up with.
template <class T>
std::vector<std::vector<T>> run_allreduce(int n, std::size_t len, ReduceOp op,
                                          std::uint64_t seed = 0) {
  std::vector<std::vector<T>> out(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    auto buf = test_values<T>(comm.rank(), len, seed);
    comm.allreduce(std::span<T>(buf), op);
    out[static_cast<std::size_t>(comm.rank())] = std::move(buf);
  });
  return out;
}

class ThreadsCollectives : public ::testing::TestWithParam<int> {};

// One world per element type runs every op and length in sequence, which
// also exercises many back-to-back collectives on one world.
template <class T>
void check_allreduce_small(int n) {
  const auto lens = small_lengths(n);
  std::vector<std::string> failures(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    for (ReduceOp op : kAllOps) {
      for (std::size_t len : lens) {
        auto buf = test_values<T>(comm.rank(), len);
        comm.allreduce(std::span<T>(buf), op);
        if (!same_bits(buf, reference_reduce_all<T>(n, len, op))) {
          failures[static_cast<std::size_t>(comm.rank())] +=
              std::string(to_string(op)) + " len " + std::to_string(len) + "; ";
        }
      }
    }
  });
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(failures[r], "") << "rank " << r << " " << to_string(data_type_of<T>());
}

TEST_P(ThreadsCollectives, AllreduceMatchesRankOrderReference) {
  const int n = GetParam();
  check_allreduce_small<float>(n);
  check_allreduce_small<double>(n);
  check_allreduce_small<std::int64_t>(n);
  check_allreduce_small<std::uint64_t>(n);
}

TEST_P(ThreadsCollectives, BroadcastFromSeveralRoots) {
  const int n = GetParam();
  std::vector<std::string> failures(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    for (int root : {0, n - 1, n / 2}) {
      for (std::size_t len : small_lengths(n)) {
        auto buf = test_values<double>(comm.rank(), len);
        comm.broadcast(std::span<double>(buf), root);
        if (!same_bits(buf, test_values<double>(root, len))) {
          failures[comm.rank()] += "root " + std::to_string(root) + " len " + std::to_string(len);
        }
      }
    }
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

TEST_P(ThreadsCollectives, Allgather) {
  const int n = GetParam();
  std::vector<std::string> failures(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    for (std::size_t len : small_lengths(n)) {
      const auto send = test_values<std::int64_t>(comm.rank(), len);
      std::vector<std::int64_t> recv(len * static_cast<std::size_t>(n), -1);
      comm.allgather(std::span<const std::int64_t>(send), std::span<std::int64_t>(recv));
      std::vector<std::int64_t> expected;
      for (int k = 0; k < n; ++k) {
        const auto block = test_values<std::int64_t>(k, len);
        expected.insert(expected.end(), block.begin(), block.end());
      }
      if (recv != expected) failures[comm.rank()] += "len " + std::to_string(len) + "; ";

      // In place: the send block is this rank's own block of recv.
      std::vector<std::int64_t> inplace(len * static_cast<std::size_t>(n), -1);
      std::copy(send.begin(), send.end(), inplace.begin() + comm.rank() * static_cast<long>(len));
      comm.allgather(std::span<const std::int64_t>(inplace).subspan(comm.rank() * len, len),
                     std::span<std::int64_t>(inplace));
      if (inplace != expected) failures[comm.rank()] += "in-place len " + std::to_string(len);
    }
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

template <class T>
void check_reduce_scatter(int n, std::size_t per_rank, ReduceOp op, std::string& failures,
                          Communicator& comm) {
  const auto un = static_cast<std::size_t>(n);
  const auto send = test_values<T>(comm.rank(), per_rank * un);
  std::vector<T> recv(per_rank);
  comm.reduce_scatter(std::span<const T>(send), std::span<T>(recv), op);
  const auto all = reference_reduce_all<T>(n, per_rank * un, op);
  const auto first = all.begin() + static_cast<long>(per_rank * comm.rank());
  if (!same_bits(recv, std::vector<T>(first, first + static_cast<long>(per_rank)))) {
    failures += std::string(to_string(data_type_of<T>())) + " " + to_string(op) + " per_rank " +
                std::to_string(per_rank) + "; ";
  }
}

TEST_P(ThreadsCollectives, ReduceScatterMatchesReference) {
  const int n = GetParam();
  std::vector<std::string> failures(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    auto& f = failures[comm.rank()];
    for (ReduceOp op : kAllOps) {
      for (std::size_t len : small_lengths(n)) {
        check_reduce_scatter<float>(n, len, op, f, comm);
        check_reduce_scatter<double>(n, len, op, f, comm);
        check_reduce_scatter<std::int64_t>(n, len, op, f, comm);
      }
    }
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

// reduce_scatter_sum_to hands this rank's block to the consumer as a + b:
// added elementwise in float, that is reduce_scatter's sum bit for bit (the
// peers' blocks are read in place, the first N-1 folded in rank order). The
// consumer runs once per call, and nothing is written to scratch with two
// ranks or fewer.
template <class T>
void check_reduce_scatter_sum_to(int n, std::size_t per_rank, std::string& failures,
                                 Communicator& comm) {
  const auto un = static_cast<std::size_t>(n);
  const auto send = test_values<T>(comm.rank(), per_rank * un);
  std::vector<T> expected(per_rank);
  comm.reduce_scatter(std::span<const T>(send), std::span<T>(expected), ReduceOp::kSum);
  constexpr T kUntouched = T(-12345);
  std::vector<T> scratch(per_rank, kUntouched);
  std::vector<T> got;
  int calls = 0;
  comm.reduce_scatter_sum_to(std::span<const T>(send), std::span<T>(scratch),
                             [&](std::span<const T> a, std::span<const T> b) {
                               ++calls;
                               got.assign(a.begin(), a.end());
                               if (!b.empty()) {
                                 if (b.size() != a.size()) failures += "b size; ";
                                 for (std::size_t i = 0; i < got.size(); ++i) got[i] += b[i];
                               }
                             });
  const std::string what =
      std::string(to_string(data_type_of<T>())) + " per_rank " + std::to_string(per_rank) + ": ";
  if (calls != 1) failures += what + std::to_string(calls) + " calls; ";
  if (!same_bits(got, expected)) failures += what + "sum differs; ";
  if (n <= 2 && scratch != std::vector<T>(per_rank, kUntouched)) {
    failures += what + "scratch written; ";
  }
}

TEST_P(ThreadsCollectives, ReduceScatterSumToMatchesReduceScatter) {
  const int n = GetParam();
  std::vector<std::string> failures(static_cast<std::size_t>(n));
  run_threads(opts(n), [&](Communicator& comm) {
    auto& f = failures[comm.rank()];
    for (std::size_t len : small_lengths(n)) {
      check_reduce_scatter_sum_to<float>(n, len, f, comm);
      check_reduce_scatter_sum_to<double>(n, len, f, comm);
    }
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

// A consumer that throws on one rank: that rank still releases its peers
// (who are reading its buffer) before the exception leaves the call, and the
// exception ends the world as any rank's does, instead of a hang. (With one
// rank: the exception simply comes out.)
TEST_P(ThreadsCollectives, ReduceScatterSumToReleasesPeersWhenTheConsumerThrows) {
  const int n = GetParam();
  ThreadsOptions o = opts(n);
  o.timeout = std::chrono::seconds(20);
  EXPECT_THROW(run_threads(o,
                           [&](Communicator& comm) {
                             const auto send = test_values<float>(comm.rank(), 64 * n);
                             std::vector<float> scratch(64);
                             comm.reduce_scatter_sum_to(
                                 std::span<const float>(send), std::span<float>(scratch),
                                 [&](std::span<const float>, std::span<const float>) {
                                   if (comm.rank() == n - 1) throw InputError("consumer failed");
                                 });
                             comm.barrier();
                           }),
               InputError);
}

TEST_P(ThreadsCollectives, BarrierSeparatesRounds) {
  const int n = GetParam();
  std::atomic<int> arrived{0};
  std::atomic<int> wrong{0};
  run_threads(opts(n), [&](Communicator& comm) {
    for (int round = 1; round <= 20; ++round) {
      arrived.fetch_add(1);
      comm.barrier();
      // Everybody has arrived for this round, nobody for the next one yet.
      if (arrived.load() < n * round) wrong.fetch_add(1);
      comm.barrier();
    }
  });
  EXPECT_EQ(arrived.load(), 20 * n);
  EXPECT_EQ(wrong.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Workers, ThreadsCollectives, ::testing::Range(1, 17));

// --- Large buffers, for a subset of world sizes -----------------------------

class ThreadsLargeCollectives : public ::testing::TestWithParam<int> {};

TEST_P(ThreadsLargeCollectives, AllreduceFloatSumMillion) {
  const int n = GetParam();
  const auto out = run_allreduce<float>(n, kLarge, ReduceOp::kSum);
  const auto expected = reference_reduce_all<float>(n, kLarge, ReduceOp::kSum);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(same_bits(out[r], expected)) << "rank " << r;
}

TEST_P(ThreadsLargeCollectives, AllreduceDoubleMeanAndMaxMillion) {
  const int n = GetParam();
  for (ReduceOp op : {ReduceOp::kMean, ReduceOp::kMax}) {
    const auto out = run_allreduce<double>(n, kLarge, op, 7);
    const auto expected = reference_reduce_all<double>(n, kLarge, op, 7);
    for (int r = 0; r < n; ++r) EXPECT_TRUE(same_bits(out[r], expected)) << "rank " << r;
  }
}

TEST_P(ThreadsLargeCollectives, BroadcastReduceScatterAllgatherMillion) {
  const int n = GetParam();
  const auto un = static_cast<std::size_t>(n);
  const std::size_t per_rank = kLarge / un + 1;  // not a multiple of the slice alignment
  const auto expected_rs = reference_reduce_all<float>(n, per_rank * un, ReduceOp::kSum);
  std::vector<int> bad(un, 0);
  run_threads(opts(n), [&](Communicator& comm) {
    const int r = comm.rank();
    auto buf = test_values<float>(r, kLarge);
    comm.broadcast(std::span<float>(buf), n - 1);
    if (!same_bits(buf, test_values<float>(n - 1, kLarge))) bad[r] |= 1;

    const auto send = test_values<float>(r, per_rank * un);
    std::vector<float> mine(per_rank);
    comm.reduce_scatter(std::span<const float>(send), std::span<float>(mine));
    const auto first = expected_rs.begin() + static_cast<long>(per_rank * r);
    if (!same_bits(mine, std::vector<float>(first, first + static_cast<long>(per_rank))))
      bad[r] |= 2;

    // Gathering the scattered blocks back gives the full allreduce result.
    std::vector<float> all(per_rank * un);
    comm.allgather(std::span<const float>(mine), std::span<float>(all));
    if (!same_bits(all, expected_rs)) bad[r] |= 4;
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(bad[r], 0) << "rank " << r;
}

INSTANTIATE_TEST_SUITE_P(Workers, ThreadsLargeCollectives, ::testing::Values(1, 2, 3, 4, 7, 8, 16));

// --- Determinism -------------------------------------------------------------

TEST(ThreadsDeterminism, SameBitsOnEveryRankAndEveryRun) {
  constexpr int kN = 7;
  constexpr std::size_t kLen = 100'003;
  const auto first = run_allreduce<float>(kN, kLen, ReduceOp::kSum, 3);
  const auto second = run_allreduce<float>(kN, kLen, ReduceOp::kSum, 3);
  for (int r = 0; r < kN; ++r) {
    EXPECT_TRUE(same_bits(first[r], first[0])) << "rank " << r << " differs from rank 0";
    EXPECT_TRUE(same_bits(second[r], first[r])) << "rank " << r << " differs between runs";
  }
  EXPECT_TRUE(same_bits(first[0], reference_reduce_all<float>(kN, kLen, ReduceOp::kSum, 3)));
}

TEST(ThreadsDeterminism, SumIsOrderSensitiveSoTheTestMeansSomething) {
  // Summing the test values in reverse rank order must differ somewhere,
  // otherwise the reference comparisons above could not catch reordering.
  constexpr int kN = 7;
  constexpr std::size_t kLen = 10'000;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < kLen; ++i) {
    float reversed = testing_util::test_value<float>(kN - 1, i, 3);
    for (int k = kN - 2; k >= 0; --k) reversed += testing_util::test_value<float>(k, i, 3);
    const float forward = testing_util::reference_reduce<float>(kN, i, ReduceOp::kSum, 3);
    if (std::memcmp(&reversed, &forward, sizeof(float)) != 0) ++differing;
  }
  EXPECT_GT(differing, 0u);
}

TEST(ThreadsCollectivesMisc, ManyMixedCollectivesBackToBack) {
  // Alternates single-barrier and two-barrier collectives, so that fast ranks
  // post their next call while slow ones still read the previous one.
  constexpr int kN = 5;
  std::vector<int> bad(kN, 0);
  run_threads(opts(kN), [&](Communicator& comm) {
    for (int i = 0; i < 300; ++i) {
      std::uint64_t x = static_cast<std::uint64_t>(comm.rank() + i);
      comm.allreduce(std::span<std::uint64_t>(&x, 1));
      if (x != static_cast<std::uint64_t>(kN * i + kN * (kN - 1) / 2)) bad[comm.rank()]++;
      comm.barrier();
      int root_value = comm.rank() == i % kN ? i : -1;
      comm.broadcast(std::span<int>(&root_value, 1), i % kN);
      if (root_value != i) bad[comm.rank()]++;
      std::vector<double> empty;
      comm.allreduce(std::span<double>(empty), ReduceOp::kMax);
    }
  });
  for (int r = 0; r < kN; ++r) EXPECT_EQ(bad[r], 0) << "rank " << r;
}

TEST(ThreadsCollectivesMisc, CommunicatorBasics) {
  std::vector<int> ranks(3, -1);
  run_threads(opts(3), [&](Communicator& comm) {
    EXPECT_EQ(comm.size(), 3);
    EXPECT_EQ(comm.backend(), "threads");
    EXPECT_EQ(comm.timeout(), std::chrono::milliseconds(60'000));
    ranks[comm.rank()] = comm.rank();
  });
  EXPECT_EQ(ranks, (std::vector<int>{0, 1, 2}));
}

}  // namespace
}  // namespace dtrain
