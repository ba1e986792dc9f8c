// The personalised all-to-all (default point-to-point implementation on the
// threads backend) and the variable-size allgather.
#include <gtest/gtest.h>

#include <array>

#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

// Rank s sends (s + 1) * (d + 1) % 5 values to rank d, each encoding (s, d, k).
std::size_t count(int s, int d) { return static_cast<std::size_t>((s + 1) * (d + 1) % 5); }
double value(int s, int d, std::size_t k) {
  return s * 10000.0 + d * 100.0 + static_cast<double>(k);
}

TEST(AlltoallvTest, EveryBlockArrivesInRankOrder) {
  for (int n = 1; n <= 9; ++n) {
    ThreadsOptions opts;
    opts.workers = n;
    run_threads(opts, [n](Communicator& comm) {
      const int me = comm.rank();
      std::vector<double> send;
      std::vector<std::size_t> send_counts, recv_counts;
      std::size_t total = 0;
      for (int d = 0; d < n; ++d) {
        send_counts.push_back(count(me, d));
        for (std::size_t k = 0; k < count(me, d); ++k) send.push_back(value(me, d, k));
        recv_counts.push_back(count(d, me));
        total += count(d, me);
      }
      std::vector<double> recv(total, -1.0);
      comm.alltoallv(std::span<const double>(send), std::span<const std::size_t>(send_counts),
                     std::span<double>(recv), std::span<const std::size_t>(recv_counts));
      std::size_t i = 0;
      for (int s = 0; s < n; ++s) {
        for (std::size_t k = 0; k < count(s, me); ++k, ++i) {
          ASSERT_EQ(recv[i], value(s, me, k)) << "n=" << n << " rank " << me << " from " << s;
        }
      }
    });
  }
}

TEST(AlltoallvTest, CountsThatDoNotAddUpAreRejected) {
  ThreadsOptions opts;
  opts.workers = 2;
  EXPECT_THROW(run_threads(opts,
                           [](Communicator& comm) {
                             std::vector<float> send(3), recv(3);
                             const std::vector<std::size_t> counts{1, 1};  // 2 != 3
                             comm.alltoallv(
                                 std::span<const float>(send), std::span<const std::size_t>(counts),
                                 std::span<float>(recv), std::span<const std::size_t>(counts));
                           }),
               CommError);
}

// Rank r contributes (r * 3 + 1) % 4 values (some ranks none), each
// encoding (r, k).
std::size_t gather_count(int r) { return static_cast<std::size_t>((r * 3 + 1) % 4); }

TEST(AllgathervTest, EveryRanksBlockArrivesInRankOrder) {
  for (int n = 1; n <= 7; ++n) {
    ThreadsOptions opts;
    opts.workers = n;
    run_threads(opts, [n](Communicator& comm) {
      std::vector<std::size_t> counts;
      std::size_t total = 0;
      for (int r = 0; r < n; ++r) {
        counts.push_back(gather_count(r));
        total += gather_count(r);
      }
      const int me = comm.rank();
      std::vector<double> send;
      for (std::size_t k = 0; k < gather_count(me); ++k) send.push_back(value(me, 0, k));
      std::vector<double> recv(total, -1.0);
      comm.allgatherv(std::span<const double>(send), std::span<double>(recv),
                      std::span<const std::size_t>(counts));
      std::size_t i = 0;
      for (int r = 0; r < n; ++r) {
        for (std::size_t k = 0; k < gather_count(r); ++k, ++i) {
          ASSERT_EQ(recv[i], value(r, 0, k)) << "n=" << n << " rank " << me << " from " << r;
        }
      }
      // In place: the own block already sits at its place in recv.
      std::size_t offset = 0;
      for (int r = 0; r < me; ++r) offset += gather_count(r);
      std::vector<double> again(total, -1.0);
      std::copy(send.begin(), send.end(), again.begin() + static_cast<std::ptrdiff_t>(offset));
      comm.allgatherv(std::span<const double>(again).subspan(offset, send.size()),
                      std::span<double>(again), std::span<const std::size_t>(counts));
      EXPECT_EQ(again, recv);
    });
  }
}

// Two ranks call allgatherv, each with its own counts and a send block of
// `sends[rank]` elements.
void allgatherv_with(const std::vector<std::size_t>& counts0,
                     const std::vector<std::size_t>& counts1, std::array<std::size_t, 2> sends) {
  ThreadsOptions opts;
  opts.workers = 2;
  run_threads(opts, [&](Communicator& comm) {
    const auto& counts = comm.rank() == 0 ? counts0 : counts1;
    std::vector<float> send(sends[static_cast<std::size_t>(comm.rank())]);
    std::vector<float> recv(counts[0] + counts[1]);
    comm.allgatherv(std::span<const float>(send), std::span<float>(recv),
                    std::span<const std::size_t>(counts));
  });
}

TEST(AllgathervTest, WrongCountsAreRejectedOnEveryRank) {
  // Rank 0's block is not the size its count says.
  EXPECT_THROW(allgatherv_with({1, 2}, {1, 2}, {2, 2}), CommError);
  // Ranks that disagree on the counts but not on their sum: still a
  // mismatch, before anyone reads past a peer's block.
  EXPECT_THROW(allgatherv_with({2, 3}, {3, 2}, {2, 2}), CommError);
  // Ranks that disagree on the counts and their sum.
  EXPECT_THROW(allgatherv_with({1, 1}, {1, 2}, {1, 2}), CommError);
  // Agreeing counts work.
  EXPECT_NO_THROW(allgatherv_with({2, 3}, {2, 3}, {2, 3}));
}

}  // namespace
}  // namespace dtrain
