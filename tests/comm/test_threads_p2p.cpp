// Point-to-point messages of the threads backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "comm_test_util.h"
#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing_util::contains;

ThreadsOptions opts(int workers, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  ThreadsOptions o;
  o.workers = workers;
  o.timeout = timeout;
  return o;
}

TEST(ThreadsP2P, RingExchange) {
  constexpr int kN = 6;
  std::vector<int> got(kN, -1);
  run_threads(opts(kN), [&](Communicator& comm) {
    const int r = comm.rank();
    const int mine = 100 + r;
    comm.send(std::span<const int>(&mine, 1), (r + 1) % kN, 7);
    int in = -1;
    comm.recv(std::span<int>(&in, 1), (r + kN - 1) % kN, 7);
    got[r] = in;
  });
  for (int r = 0; r < kN; ++r) EXPECT_EQ(got[r], 100 + (r + kN - 1) % kN);
}

TEST(ThreadsP2P, FifoPerSourceAndTag) {
  constexpr int kMessages = 200;
  std::vector<int> order;
  run_threads(opts(3), [&](Communicator& comm) {
    if (comm.rank() != 2) {
      for (int i = 0; i < kMessages; ++i) {
        const int v = comm.rank() * 1000 + i;
        comm.send(std::span<const int>(&v, 1), 2, 1);
      }
    } else {
      // Interleave the two sources; each must come out in its send order.
      for (int i = 0; i < kMessages; ++i) {
        for (int src : {1, 0}) {
          int v = -1;
          comm.recv(std::span<int>(&v, 1), src, 1);
          order.push_back(v);
        }
      }
    }
  });
  ASSERT_EQ(order.size(), 2u * kMessages);
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(order[2 * i], 1000 + i);
    EXPECT_EQ(order[2 * i + 1], i);
  }
}

TEST(ThreadsP2P, TagsReceivedOutOfSendOrder) {
  std::vector<double> got;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      for (int tag = 1; tag <= 3; ++tag) {
        const std::vector<double> v(static_cast<std::size_t>(tag), tag * 1.5);
        comm.send(std::span<const double>(v), 1, tag);
      }
    } else {
      for (int tag : {3, 1, 2}) {
        std::vector<double> v(static_cast<std::size_t>(tag));
        comm.recv(std::span<double>(v), 0, tag);
        got.insert(got.end(), v.begin(), v.end());
      }
    }
  });
  EXPECT_EQ(got, (std::vector<double>{4.5, 4.5, 4.5, 1.5, 3.0, 3.0}));
}

TEST(ThreadsP2P, IrecvPostedBeforeSendTestThenWait) {
  std::vector<std::string> errors(2);
  run_threads(opts(2), [&](Communicator& comm) {
    std::vector<float> buf(1000, 0.0f);
    if (comm.rank() == 1) {
      Request req = comm.irecv(std::span<float>(buf), 0, 4);
      if (req.done() || req.test()) errors[1] += "complete before the send; ";
      comm.barrier();  // now rank 0 sends
      req.wait();
      if (!req.done() || !req.test()) errors[1] += "not done after wait; ";
      if (buf != std::vector<float>(1000, 2.5f)) errors[1] += "wrong payload; ";
    } else {
      std::vector<float> msg(1000, 2.5f);
      comm.barrier();
      Request s = comm.isend(std::span<const float>(msg), 1, 4);
      if (!s.done()) errors[0] += "isend not complete after buffering; ";
      msg.assign(1000, -1.0f);  // buffered: reusing the buffer is safe
    }
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(ThreadsP2P, IrecvPollingWithTest) {
  std::uint64_t got = 0;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      const std::uint64_t v = 42;
      comm.send(std::span<const std::uint64_t>(&v, 1), 1, 0);
    } else {
      Request req = comm.irecv(std::span<std::uint64_t>(&got, 1), 0, 0);
      while (!req.test()) std::this_thread::yield();
    }
  });
  EXPECT_EQ(got, 42u);
}

TEST(ThreadsP2P, ReceivesMatchInPostOrder) {
  // An irecv posted first gets the first message even if a later blocking
  // recv on the same (src, tag) runs before the irecv is waited for.
  int first = -1, second = -1;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      for (int v : {1, 2}) comm.send(std::span<const int>(&v, 1), 1, 9);
    } else {
      Request req = comm.irecv(std::span<int>(&first, 1), 0, 9);
      comm.recv(std::span<int>(&second, 1), 0, 9);
      req.wait();
    }
  });
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
}

TEST(ThreadsP2P, SelfSendZeroBytesAndLargeMessages) {
  std::vector<std::string> errors(2);
  run_threads(opts(2), [&](Communicator& comm) {
    const int r = comm.rank();
    const int v = 17 + r;
    comm.send(std::span<const int>(&v, 1), r, 3);
    int back = 0;
    comm.recv(std::span<int>(&back, 1), r, 3);
    if (back != v) errors[r] += "self; ";

    std::vector<char> none;
    comm.send(std::span<const char>(none), 1 - r, 5);
    comm.recv(std::span<char>(none), 1 - r, 5);

    std::vector<double> big(1'000'000);
    std::iota(big.begin(), big.end(), r * 1e7);
    comm.send(std::span<const double>(big), 1 - r, 6);
    std::vector<double> in(big.size());
    comm.recv(std::span<double>(in), 1 - r, 6);
    if (in[0] != (1 - r) * 1e7 || in.back() != (1 - r) * 1e7 + 999'999) errors[r] += "big; ";
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(ThreadsP2P, SizeMismatchIsCommError) {
  std::string what;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      const std::vector<double> v(2, 1.0);
      comm.send(std::span<const double>(v), 1, 8);
    } else {
      std::vector<double> v(1);
      try {
        comm.recv(std::span<double>(v), 0, 8);
      } catch (const CommError& e) {
        what = e.what();
      }
    }
  });
  EXPECT_TRUE(contains(what, "rank 1: recv from rank 0 (tag 8)")) << what;
  EXPECT_TRUE(contains(what, "16 bytes")) << what;
  EXPECT_TRUE(contains(what, "8 bytes")) << what;
}

TEST(ThreadsP2P, InvalidRanksAreCommErrors) {
  std::vector<std::string> errors;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() != 0) return;
    int v = 0;
    const auto expect_error = [&](const char* label, auto&& call) {
      try {
        call();
        errors.push_back(std::string(label) + ": no error");
      } catch (const CommError& e) {
        if (!contains(e.what(), "no such rank"))
          errors.push_back(label + std::string(": ") + e.what());
      }
    };
    expect_error("send", [&] { comm.send(std::span<const int>(&v, 1), 2, 0); });
    expect_error("recv", [&] { comm.recv(std::span<int>(&v, 1), -1, 0); });
    expect_error("isend", [&] { (void)comm.isend(std::span<const int>(&v, 1), 5, 0); });
    expect_error("irecv", [&] { (void)comm.irecv(std::span<int>(&v, 1), 2, 0); });
  });
  EXPECT_TRUE(errors.empty()) << errors.front();
}

TEST(ThreadsP2P, RequestMoveAssignWaitsForTheOldReceive) {
  int a = -1, b = -1;
  bool a_ready_after_assign = false;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      comm.barrier();
      for (int tag : {1, 2}) comm.send(std::span<const int>(&tag, 1), 1, tag);
    } else {
      Request req = comm.irecv(std::span<int>(&a, 1), 0, 1);
      comm.barrier();
      req = comm.irecv(std::span<int>(&b, 1), 0, 2);
      a_ready_after_assign = a == 1;
      req.wait();
    }
  });
  EXPECT_TRUE(a_ready_after_assign);
  EXPECT_EQ(b, 2);
}

TEST(ThreadsP2P, RequestDestructorWaitsAndDiscardsErrors) {
  int got = -1;
  bool survived = false;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      comm.barrier();
      const int v = 5;
      comm.send(std::span<const int>(&v, 1), 1, 1);
      const std::int64_t wide = 6;
      comm.send(std::span<const std::int64_t>(&wide, 1), 1, 2);
    } else {
      {
        Request req = comm.irecv(std::span<int>(&got, 1), 0, 1);
        comm.barrier();
      }  // waits here
      {
        int narrow = 0;
        Request bad = comm.irecv(std::span<int>(&narrow, 1), 0, 2);  // size mismatch
      }  // waits, the CommError is discarded
      survived = true;
    }
  });
  EXPECT_EQ(got, 5);
  EXPECT_TRUE(survived);
}

}  // namespace
}  // namespace dtrain
