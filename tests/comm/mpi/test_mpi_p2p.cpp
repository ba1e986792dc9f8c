// Point-to-point messages of the MPI backend: tags, ordering per tag,
// non-blocking requests, size checks and argument errors. Messages go round
// a ring (to rank + 1, from rank - 1), which with one rank is the rank
// itself, so every test runs at every world size.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "../comm_test_util.h"
#include "dtrain/error.h"
#include "mpi_test_env.h"

namespace dtrain {
namespace {

using mpi_test::comm;
using testing_util::contains;
using testing_util::same_bits;
using testing_util::small_lengths;
using testing_util::test_values;

int next() { return (comm().rank() + 1) % comm().size(); }
int prev() { return (comm().rank() + comm().size() - 1) % comm().size(); }

TEST(MpiP2p, IsendAndRecvRoundTheRing) {
  auto lens = small_lengths(comm().size());
  lens.push_back(1'000'000);
  for (std::size_t len : lens) {
    SCOPED_TRACE("length " + std::to_string(len));
    const auto out = test_values<double>(comm().rank(), len, 1);
    Request sent = comm().isend(std::span<const double>(out), next(), 3);
    std::vector<double> in(len, -1.0);
    comm().recv(std::span<double>(in), prev(), 3);
    sent.wait();
    EXPECT_TRUE(same_bits(in, test_values<double>(prev(), len, 1)));
  }
}

TEST(MpiP2p, BlockingSendAndRecvBetweenPairs) {
  // Pairs (0,1), (2,3), ...: the lower rank sends first, so that blocking
  // sends cannot deadlock; a rank without a partner sits out.
  const int me = comm().rank();
  const int partner = me ^ 1;
  if (partner >= comm().size()) GTEST_SKIP() << "no partner for rank " << me;
  for (std::size_t len :
       {std::size_t{0}, std::size_t{1}, std::size_t{4097}, std::size_t{1'000'000}}) {
    const auto out = test_values<float>(me, len, 2);
    std::vector<float> in(len, -1.0f);
    if (me < partner) {
      comm().send(std::span<const float>(out), partner, 9);
      comm().recv(std::span<float>(in), partner, 9);
    } else {
      comm().recv(std::span<float>(in), partner, 9);
      comm().send(std::span<const float>(out), partner, 9);
    }
    EXPECT_TRUE(same_bits(in, test_values<float>(partner, len, 2))) << "length " << len;
  }
}

TEST(MpiP2p, MessagesArriveInSendOrderPerTag) {
  // Interleaved sends on two tags, received tag by tag: each tag's messages
  // come in the order they were sent, whatever the other tag does.
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t i = 0; i < 6; ++i) out.push_back({comm().rank() * 100 + i, i});
  std::vector<Request> sent;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int tag = i % 2 == 0 ? 10 : 11;
    sent.push_back(comm().isend(std::span<const std::int64_t>(out[i]), next(), tag));
  }
  std::vector<std::int64_t> got(2);
  for (int tag : {11, 10}) {
    for (std::int64_t k = 0; k < 3; ++k) {
      comm().recv(std::span<std::int64_t>(got), prev(), tag);
      const std::int64_t i = 2 * k + (tag == 11 ? 1 : 0);
      EXPECT_EQ(got[0], prev() * 100 + i) << "tag " << tag << ", message " << k;
    }
  }
  for (Request& r : sent) r.wait();
}

TEST(MpiP2p, IrecvTestAndWait) {
  std::vector<int> in(3, -1);
  Request pending = comm().irecv(std::span<int>(in), prev(), 20);
  // Nothing is sent before everyone has passed the barrier.
  EXPECT_FALSE(pending.test());
  EXPECT_FALSE(pending.done());
  comm().barrier();
  const std::vector<int> out{comm().rank(), 7, 8};
  Request sent = comm().isend(std::span<const int>(out), next(), 20);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool complete = false;
  while (!complete && std::chrono::steady_clock::now() < deadline) {
    complete = pending.test();
    if (!complete) std::this_thread::yield();
  }
  EXPECT_TRUE(complete);
  EXPECT_TRUE(pending.done());
  EXPECT_TRUE(pending.test());  // done stays done
  EXPECT_EQ(in, (std::vector<int>{prev(), 7, 8}));
  sent.wait();
  EXPECT_TRUE(sent.done());
  // Requests that are waited for by their destructor.
  {
    Request a = comm().isend(std::span<const int>(out), next(), 21);
    Request b = comm().irecv(std::span<int>(in), prev(), 21);
  }
  EXPECT_EQ(in, (std::vector<int>{prev(), 7, 8}));
}

TEST(MpiP2p, ReceiveOfTheWrongSizeThrows) {
  const std::vector<std::int64_t> four{1, 2, 3, 4};
  const std::vector<std::int64_t> two{5, 6};
  std::vector<std::int64_t> three(3);
  const std::string who = "rank " + std::to_string(comm().rank()) + ": ";

  // Larger message than buffer (MPI truncates: MPI_ERR_TRUNCATE).
  Request a = comm().isend(std::span<const std::int64_t>(four), next(), 30);
  try {
    comm().recv(std::span<std::int64_t>(three), prev(), 30);
    ADD_FAILURE() << "a 32-byte message into a 24-byte buffer did not throw";
  } catch (const CommError& e) {
    EXPECT_TRUE(contains(e.what(), who + "recv from rank " + std::to_string(prev()))) << e.what();
    EXPECT_TRUE(contains(e.what(), "larger than the 24-byte buffer")) << e.what();
  }
  a.wait();

  // Smaller message than buffer.
  Request b = comm().isend(std::span<const std::int64_t>(two), next(), 31);
  try {
    comm().recv(std::span<std::int64_t>(three), prev(), 31);
    ADD_FAILURE() << "a 16-byte message into a 24-byte buffer did not throw";
  } catch (const CommError& e) {
    EXPECT_TRUE(contains(e.what(), "message of 16 bytes into a buffer of 24")) << e.what();
  }
  b.wait();

  // The same through irecv + wait, and irecv + test.
  Request c = comm().isend(std::span<const std::int64_t>(two), next(), 32);
  Request d = comm().irecv(std::span<std::int64_t>(three), prev(), 32);
  EXPECT_THROW(d.wait(), CommError);
  EXPECT_TRUE(d.done());
  c.wait();

  Request e = comm().isend(std::span<const std::int64_t>(four), next(), 33);
  Request f = comm().irecv(std::span<std::int64_t>(three), prev(), 33);
  bool threw = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!threw && std::chrono::steady_clock::now() < deadline) {
    try {
      if (f.test()) break;
    } catch (const CommError&) {
      threw = true;
    }
  }
  EXPECT_TRUE(threw);
  EXPECT_TRUE(f.done());
  e.wait();

  // The communicator still works afterwards.
  Request g = comm().isend(std::span<const std::int64_t>(two), next(), 34);
  std::vector<std::int64_t> in(2);
  comm().recv(std::span<std::int64_t>(in), prev(), 34);
  EXPECT_EQ(in, two);
  g.wait();
  comm().barrier();
}

TEST(MpiP2p, BadPeerOrTagThrowsWithoutCommunicating) {
  const std::vector<int> buf(2);
  std::vector<int> in(2);
  const int n = comm().size();
  try {
    comm().send(std::span<const int>(buf), n, 1);
    ADD_FAILURE() << "send to a rank past the end did not throw";
  } catch (const CommError& e) {
    EXPECT_TRUE(contains(e.what(), "no such rank")) << e.what();
  }
  EXPECT_THROW(comm().recv(std::span<int>(in), -1, 1), CommError);
  EXPECT_THROW((void)comm().isend(std::span<const int>(buf), n + 3, 1), CommError);
  EXPECT_THROW((void)comm().irecv(std::span<int>(in), -2, 1), CommError);
  try {
    comm().send(std::span<const int>(buf), next(), -5);
    ADD_FAILURE() << "a negative tag did not throw";
  } catch (const CommError& e) {
    EXPECT_TRUE(contains(e.what(), "non-negative")) << e.what();
  }
}

TEST(MpiP2p, LargeTagsUpToTheReservedRange) {
  // OpenMPI's MPI_TAG_UB is INT_MAX, so user tags just below dtrain's
  // reserved range and the reserved tags themselves both work.
  for (int tag : {Communicator::kReservedTagBase - 1, Communicator::kReservedTagBase + 5}) {
    const std::vector<int> out{comm().rank(), tag};
    Request sent = comm().isend(std::span<const int>(out), next(), tag);
    std::vector<int> in(2);
    comm().recv(std::span<int>(in), prev(), tag);
    sent.wait();
    EXPECT_EQ(in, (std::vector<int>{prev(), tag}));
  }
}

TEST(MpiCommunicator, CallsFromAnotherThreadThrow) {
  // MPI_THREAD_FUNNELED: only the session's thread may call MPI; the check
  // happens before any MPI call, so the other ranks are not involved.
  bool threw = false;
  std::thread other([&] {
    try {
      comm().barrier();
    } catch (const CommError& e) {
      threw = contains(e.what(), "MPI_THREAD_FUNNELED");
    }
  });
  other.join();
  EXPECT_TRUE(threw);
}

}  // namespace
}  // namespace dtrain
