// Collectives of the MPI backend against serial references, for the edge
// lengths around the world size and for 10^6 elements.
//
// Integers and max/min must be exact. Float sums may combine in any order
// (mpi.h), so they are compared with a double reference to within 1e-6 of
// the sum of magnitudes, and must be bit-identical on every rank and across
// two identical calls.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "../comm_test_util.h"
#include "dtrain/error.h"
#include "mpi_test_env.h"

namespace dtrain {
namespace {

using mpi_test::comm;
using mpi_test::same_on_all_ranks;
using testing_util::reference_reduce;
using testing_util::same_bits;
using testing_util::small_lengths;
using testing_util::test_value;
using testing_util::test_values;

constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin};
constexpr std::size_t kLarge = 1'000'000;

std::vector<std::size_t> lengths() {
  auto lens = small_lengths(comm().size());
  lens.push_back(kLarge);
  return lens;
}

// Number of elements of `got` that differ from the reference of element
// `first + i` of an op over all ranks' test values; `where` names the first.
template <class T>
std::size_t count_wrong(const std::vector<T>& got, std::size_t first, ReduceOp op, int n,
                        std::uint64_t seed, std::string& where) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::size_t k = first + i;
    bool ok = false;
    if constexpr (std::is_floating_point_v<T>) {
      if (op == ReduceOp::kMax || op == ReduceOp::kMin) {
        ok = got[i] == reference_reduce<T>(n, k, op, seed);
      } else {
        double sum = 0;
        double magnitude = 0;
        for (int r = 0; r < n; ++r) {
          const double v = test_value<T>(r, k, seed);
          sum += v;
          magnitude += std::fabs(v);
        }
        if (op == ReduceOp::kMean) {
          sum /= n;
          magnitude /= n;
        }
        ok = std::fabs(static_cast<double>(got[i]) - sum) <= 1e-6 * magnitude + 1e-300;
      }
    } else {
      ok = got[i] == reference_reduce<T>(n, k, op, seed);  // exact
    }
    if (!ok && bad++ == 0) {
      where = "element " + std::to_string(k) + ": got " + std::to_string(got[i]) + ", expected " +
              std::to_string(reference_reduce<T>(n, k, op, seed)) + " (serial reference)";
    }
  }
  return bad;
}

template <class T>
class MpiReduction : public ::testing::Test {};
using ReductionTypes = ::testing::Types<float, double, std::int64_t, std::uint64_t>;
TYPED_TEST_SUITE(MpiReduction, ReductionTypes);

TYPED_TEST(MpiReduction, AllreduceMatchesTheSerialReference) {
  using T = TypeParam;
  const int n = comm().size();
  for (ReduceOp op : kAllOps) {
    for (std::size_t len : lengths()) {
      SCOPED_TRACE(std::string(to_string(op)) + ", length " + std::to_string(len));
      const std::uint64_t seed = len + 17;
      auto buf = test_values<T>(comm().rank(), len, seed);
      comm().allreduce(std::span<T>(buf), op);
      std::string where;
      EXPECT_EQ(count_wrong(buf, 0, op, n, seed, where), 0u) << where;
      EXPECT_TRUE(same_on_all_ranks(buf)) << "ranks ended with different bits";
      auto again = test_values<T>(comm().rank(), len, seed);
      comm().allreduce(std::span<T>(again), op);
      EXPECT_TRUE(same_bits(buf, again)) << "two identical calls gave different bits";
    }
  }
}

TYPED_TEST(MpiReduction, ReduceScatterMatchesTheSerialReference) {
  using T = TypeParam;
  const int n = comm().size();
  for (ReduceOp op : kAllOps) {
    for (std::size_t len : lengths()) {
      SCOPED_TRACE(std::string(to_string(op)) + ", block length " + std::to_string(len));
      const std::uint64_t seed = len + 29;
      const auto send = test_values<T>(comm().rank(), len * static_cast<std::size_t>(n), seed);
      std::vector<T> recv(len, T{42});
      comm().reduce_scatter(std::span<const T>(send), std::span<T>(recv), op);
      std::string where;
      EXPECT_EQ(
          count_wrong(recv, static_cast<std::size_t>(comm().rank()) * len, op, n, seed, where), 0u)
          << where;
    }
  }
}

TEST(MpiReduction, ReduceScatterInPlace) {
  // recv is the rank's own block of send.
  const int n = comm().size();
  const std::size_t len = 1001;
  auto buf = test_values<double>(comm().rank(), len * static_cast<std::size_t>(n), 5);
  const std::size_t first = static_cast<std::size_t>(comm().rank()) * len;
  comm().reduce_scatter(std::span<const double>(buf), std::span<double>(buf.data() + first, len),
                        ReduceOp::kSum);
  std::vector<double> mine(buf.begin() + static_cast<std::ptrdiff_t>(first),
                           buf.begin() + static_cast<std::ptrdiff_t>(first + len));
  std::string where;
  EXPECT_EQ(count_wrong(mine, first, ReduceOp::kSum, n, 5, where), 0u) << where;
}

TEST(MpiBroadcast, FromEveryRoot) {
  const int n = comm().size();
  for (int root = 0; root < n; ++root) {
    for (std::size_t len : lengths()) {
      SCOPED_TRACE("root " + std::to_string(root) + ", length " + std::to_string(len));
      const auto expected = test_values<double>(root, len, 3);
      std::vector<double> buf = comm().rank() == root ? expected : std::vector<double>(len, -1.0);
      comm().broadcast(std::span<double>(buf), root);
      EXPECT_TRUE(same_bits(buf, expected));
      // Odd byte counts too.
      std::vector<char> text(len % 7 + 3, comm().rank() == root ? 'x' : '?');
      comm().broadcast(std::span<char>(text), root);
      EXPECT_EQ(std::string(text.begin(), text.end()), std::string(text.size(), 'x'));
    }
  }
}

TEST(MpiBroadcast, InvalidRootThrows) {
  std::vector<int> buf(3);
  EXPECT_THROW(comm().broadcast(std::span<int>(buf), comm().size()), CommError);
  EXPECT_THROW(comm().broadcast(std::span<int>(buf), -1), CommError);
}

TEST(MpiAllgather, ConcatenatesInRankOrder) {
  const int n = comm().size();
  for (std::size_t len : lengths()) {
    SCOPED_TRACE("length " + std::to_string(len));
    const auto send = test_values<std::int64_t>(comm().rank(), len, 11);
    std::vector<std::int64_t> recv(len * static_cast<std::size_t>(n), -7);
    comm().allgather(std::span<const std::int64_t>(send), std::span<std::int64_t>(recv));
    std::vector<std::int64_t> expected;
    for (int r = 0; r < n; ++r) {
      const auto part = test_values<std::int64_t>(r, len, 11);
      expected.insert(expected.end(), part.begin(), part.end());
    }
    EXPECT_TRUE(same_bits(recv, expected));
  }
}

TEST(MpiAllgather, InPlace) {
  const int n = comm().size();
  const std::size_t len = 5;
  std::vector<float> buf(len * static_cast<std::size_t>(n), -1.0f);
  const std::size_t first = static_cast<std::size_t>(comm().rank()) * len;
  const auto mine = test_values<float>(comm().rank(), len, 2);
  std::copy(mine.begin(), mine.end(), buf.begin() + static_cast<std::ptrdiff_t>(first));
  comm().allgather(std::span<const float>(buf.data() + first, len), std::span<float>(buf));
  std::vector<float> expected;
  for (int r = 0; r < n; ++r) {
    const auto part = test_values<float>(r, len, 2);
    expected.insert(expected.end(), part.begin(), part.end());
  }
  EXPECT_TRUE(same_bits(buf, expected));
}

TEST(MpiAllgather, WrongBufferSizeThrows) {
  std::vector<int> send(2), recv(2 * static_cast<std::size_t>(comm().size()) + 1);
  EXPECT_THROW(comm().allgather(std::span<const int>(send), std::span<int>(recv)), CommError);
}

// Value of element i of the block that rank src sends to rank dst.
std::int64_t a2a_value(int src, int dst, std::size_t i) {
  return static_cast<std::int64_t>(src) * 1'000'000'000 +
         static_cast<std::int64_t>(dst) * 10'000'000 + static_cast<std::int64_t>(i);
}

// Elements rank src sends to rank dst: 0 for some pairs, varied otherwise.
std::size_t a2a_count(int src, int dst, std::size_t scale) {
  return static_cast<std::size_t>((src * 7 + dst * 3) % 5) * scale;
}

void check_alltoallv(Communicator& c, std::size_t scale) {
  const int n = c.size();
  const int me = c.rank();
  std::vector<std::size_t> send_counts, recv_counts;
  std::vector<std::int64_t> send;
  std::size_t recv_total = 0;
  for (int d = 0; d < n; ++d) {
    send_counts.push_back(a2a_count(me, d, scale));
    for (std::size_t i = 0; i < send_counts.back(); ++i) send.push_back(a2a_value(me, d, i));
    recv_counts.push_back(a2a_count(d, me, scale));
    recv_total += recv_counts.back();
  }
  std::vector<std::int64_t> recv(recv_total, -1);
  c.alltoallv(std::span<const std::int64_t>(send), std::span<const std::size_t>(send_counts),
              std::span<std::int64_t>(recv), std::span<const std::size_t>(recv_counts));
  std::vector<std::int64_t> expected;
  for (int s = 0; s < n; ++s) {
    for (std::size_t i = 0; i < recv_counts[static_cast<std::size_t>(s)]; ++i) {
      expected.push_back(a2a_value(s, me, i));
    }
  }
  EXPECT_TRUE(same_bits(recv, expected)) << "scale " << scale;
}

TEST(MpiAlltoallv, VaryingCountsIncludingEmptyBlocks) {
  for (std::size_t scale : {std::size_t{1}, std::size_t{3}, std::size_t{250'000}}) {
    check_alltoallv(comm(), scale);
  }
}

TEST(MpiAlltoallv, AllEmpty) { check_alltoallv(comm(), 0); }

// The variable-size allgather (built on alltoallv): rank r contributes
// a2a_count(r, 0, scale) values, some ranks none.
TEST(MpiAllgatherv, EveryRanksBlockInRankOrder) {
  for (std::size_t scale : {std::size_t{0}, std::size_t{1}, std::size_t{100'000}}) {
    const int n = comm().size();
    std::vector<std::size_t> counts;
    std::size_t total = 0;
    for (int r = 0; r < n; ++r) {
      counts.push_back(a2a_count(r, 0, scale));
      total += counts.back();
    }
    const int me = comm().rank();
    std::vector<std::int64_t> send;
    for (std::size_t i = 0; i < counts[static_cast<std::size_t>(me)]; ++i) {
      send.push_back(a2a_value(me, 0, i));
    }
    std::vector<std::int64_t> recv(total, -1);
    comm().allgatherv(std::span<const std::int64_t>(send), std::span<std::int64_t>(recv),
                      std::span<const std::size_t>(counts));
    std::vector<std::int64_t> expected;
    for (int r = 0; r < n; ++r) {
      for (std::size_t i = 0; i < counts[static_cast<std::size_t>(r)]; ++i) {
        expected.push_back(a2a_value(r, 0, i));
      }
    }
    EXPECT_TRUE(same_bits(recv, expected)) << "scale " << scale;
  }
}

TEST(MpiBarrier, WaitsForTheSlowestRank) {
  const auto delay = std::chrono::milliseconds(200);
  if (comm().rank() == 0) std::this_thread::sleep_for(delay);
  const auto t0 = std::chrono::steady_clock::now();
  comm().barrier();
  const auto waited = std::chrono::steady_clock::now() - t0;
  if (comm().rank() != 0) {
    EXPECT_GE(waited, delay / 2);
  }
  for (int i = 0; i < 100; ++i) comm().barrier();
}

TEST(MpiCommunicator, Identity) {
  EXPECT_EQ(comm().backend(), "mpi");
  EXPECT_EQ(comm().rank(), mpi_test::session().world_rank());
  EXPECT_EQ(comm().size(), mpi_test::session().world_size());
  EXPECT_EQ(comm().timeout(), std::chrono::seconds(60));
  EXPECT_TRUE(mpi_available());
  EXPECT_TRUE(launched_by_mpi());
}

}  // namespace
}  // namespace dtrain
