// Buffers over MPI's int counts, simulated: a communicator whose per-call
// count limit is a few elements runs the chunked collectives, the
// broadcast-based allgather, the reduce-based reduce_scatter, the
// point-to-point alltoallv fallback (and allgatherv's fallback onto it) and
// derived-datatype messages on small buffers, and must agree with the
// normal communicator. Also the checks done when communicators and sessions
// are created.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../comm_test_util.h"
#include "dtrain/error.h"
#include "mpi_internal.h"
#include "mpi_test_env.h"

namespace dtrain {
namespace {

using mpi_test::comm;
using mpi_test::session;
using testing_util::contains;
using testing_util::same_bits;
using testing_util::test_values;

std::unique_ptr<Communicator> limited(std::size_t max_count) {
  MpiOptions options;
  options.timeout = std::chrono::seconds(60);
  return comm_detail::make_mpi_communicator(session(), options, comm_detail::MpiLimits{max_count});
}

class MpiCountLimit : public ::testing::TestWithParam<std::size_t> {};

TEST_P(MpiCountLimit, CollectivesMatchTheUnlimitedCommunicator) {
  auto small = limited(GetParam());
  const int n = comm().size();
  const auto un = static_cast<std::size_t>(n);
  for (std::size_t len : {std::size_t{1}, std::size_t{6}, std::size_t{7}, std::size_t{8},
                          std::size_t{100}, std::size_t{10'001}}) {
    SCOPED_TRACE("length " + std::to_string(len));
    // Integer sums and max are exact whatever the chunking.
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax}) {
      auto a = test_values<std::int64_t>(comm().rank(), len, 4);
      auto b = a;
      comm().allreduce(std::span<std::int64_t>(a), op);
      small->allreduce(std::span<std::int64_t>(b), op);
      EXPECT_TRUE(same_bits(a, b)) << "allreduce " << to_string(op);

      const auto send = test_values<std::int64_t>(comm().rank(), len * un, 5);
      std::vector<std::int64_t> ra(len), rb(len);
      comm().reduce_scatter(std::span<const std::int64_t>(send), std::span<std::int64_t>(ra), op);
      small->reduce_scatter(std::span<const std::int64_t>(send), std::span<std::int64_t>(rb), op);
      EXPECT_TRUE(same_bits(ra, rb)) << "reduce_scatter " << to_string(op);
    }
    // Floats: the same values within rounding.
    auto fa = test_values<float>(comm().rank(), len, 6);
    auto fb = fa;
    comm().allreduce(std::span<float>(fa));
    small->allreduce(std::span<float>(fb));
    for (std::size_t i = 0; i < len; ++i) EXPECT_NEAR(fa[i], fb[i], 1e-5) << "element " << i;

    for (int root = 0; root < n; ++root) {
      const auto expected = test_values<double>(root, len, 7);
      std::vector<double> buf = comm().rank() == root ? expected : std::vector<double>(len);
      small->broadcast(std::span<double>(buf), root);
      EXPECT_TRUE(same_bits(buf, expected)) << "broadcast from " << root;
    }

    const auto mine = test_values<std::int64_t>(comm().rank(), len, 8);
    std::vector<std::int64_t> ga(len * un), gb(len * un);
    comm().allgather(std::span<const std::int64_t>(mine), std::span<std::int64_t>(ga));
    small->allgather(std::span<const std::int64_t>(mine), std::span<std::int64_t>(gb));
    EXPECT_TRUE(same_bits(ga, gb)) << "allgather";

    std::vector<std::size_t> counts(un, len);
    const auto send = test_values<std::int64_t>(comm().rank(), len * un, 9);
    std::vector<std::int64_t> aa(len * un), ab(len * un);
    comm().alltoallv(std::span<const std::int64_t>(send), std::span<const std::size_t>(counts),
                     std::span<std::int64_t>(aa), std::span<const std::size_t>(counts));
    small->alltoallv(std::span<const std::int64_t>(send), std::span<const std::size_t>(counts),
                     std::span<std::int64_t>(ab), std::span<const std::size_t>(counts));
    EXPECT_TRUE(same_bits(aa, ab)) << "alltoallv";

    // Blocks of different sizes (rank r sends len + r values): over the
    // limit, allgatherv falls back to alltoallv.
    std::vector<std::size_t> block(un);
    std::size_t total = 0;
    for (std::size_t r = 0; r < un; ++r) total += block[r] = len + r;
    const auto own = test_values<std::int64_t>(comm().rank(),
                                               block[static_cast<std::size_t>(comm().rank())], 10);
    std::vector<std::int64_t> va(total), vb(total);
    comm().allgatherv(std::span<const std::int64_t>(own), std::span<std::int64_t>(va),
                      std::span<const std::size_t>(block));
    small->allgatherv(std::span<const std::int64_t>(own), std::span<std::int64_t>(vb),
                      std::span<const std::size_t>(block));
    EXPECT_TRUE(same_bits(va, vb)) << "allgatherv";
  }
}

TEST_P(MpiCountLimit, MessagesOverTheLimitKeepTheirSizeCheck) {
  auto small = limited(GetParam());
  const int next = (comm().rank() + 1) % comm().size();
  const int prev = (comm().rank() + comm().size() - 1) % comm().size();
  for (std::size_t len : {std::size_t{0}, std::size_t{3}, std::size_t{1000}, std::size_t{1001}}) {
    const auto out = test_values<double>(comm().rank(), len, 12);
    Request sent = small->isend(std::span<const double>(out), next, 40);
    std::vector<double> in(len);
    small->recv(std::span<double>(in), prev, 40);
    sent.wait();
    EXPECT_TRUE(same_bits(in, test_values<double>(prev, len, 12))) << "length " << len;
  }
  // Derived datatype on one side only (the sender's 1-byte message fits the
  // limit), or on both, with sizes that differ by one byte either way.
  for (const auto& [send_len, recv_len] : std::vector<std::pair<std::size_t, std::size_t>>{
           {1, 100}, {100, 99}, {99, 100}, {101, 100}}) {
    const std::vector<unsigned char> out(send_len, 7);
    std::vector<unsigned char> in(recv_len);
    Request sent = small->isend(std::span<const unsigned char>(out), next, 41);
    EXPECT_THROW(small->recv(std::span<unsigned char>(in), prev, 41), CommError)
        << send_len << " bytes into " << recv_len;
    sent.wait();
  }
  small->barrier();
}

INSTANTIATE_TEST_SUITE_P(Limits, MpiCountLimit, ::testing::Values(1, 7, 64));

TEST(MpiSetup, NonPositiveTimeoutIsAConfigError) {
  MpiOptions options;
  options.timeout = std::chrono::milliseconds(0);
  EXPECT_THROW((void)make_mpi_communicator(session(), options), ConfigError);
}

TEST(MpiSetup, ASecondSessionIsAConfigError) {
  try {
    MpiSession second;
    ADD_FAILURE() << "a second MpiSession was created";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "at most one MpiSession")) << e.what();
  }
}

TEST(MpiSetup, ManyCommunicatorsOneAfterTheOther) {
  // Each owns an MPI_Comm_dup and a watchdog thread, both released on
  // destruction.
  for (int i = 0; i < 20; ++i) {
    auto c = make_mpi_communicator(session());
    std::int64_t x = c->rank();
    c->allreduce(std::span<std::int64_t>(&x, 1));
    EXPECT_EQ(x, static_cast<std::int64_t>(c->size()) * (c->size() - 1) / 2);
  }
}

}  // namespace
}  // namespace dtrain
