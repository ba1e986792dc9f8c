// Failure handling of the threads backend: errors propagate, nobody hangs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "comm_test_util.h"
#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing_util::contains;

ThreadsOptions opts(int workers, std::chrono::milliseconds timeout = 60s) {
  ThreadsOptions o;
  o.workers = workers;
  o.timeout = timeout;
  return o;
}

// Runs run_threads and returns the CommError's message ("" if none).
std::string comm_error_of(const ThreadsOptions& o, const std::function<void(Communicator&)>& fn) {
  try {
    run_threads(o, fn);
  } catch (const CommError& e) {
    return e.what();
  }
  return "";
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST(ThreadsErrors, InvalidOptionsAreConfigErrors) {
  EXPECT_THROW(run_threads(opts(0), [](Communicator&) {}), ConfigError);
  EXPECT_THROW(run_threads(opts(-3), [](Communicator&) {}), ConfigError);
  EXPECT_THROW(run_threads(opts(2, 0ms), [](Communicator&) {}), ConfigError);
}

TEST(ThreadsErrors, FailingRankIsRethrownAndOthersWakeUp) {
  constexpr int kN = 4;
  std::vector<std::string> seen(kN);
  const auto start = Clock::now();
  try {
    run_threads(opts(kN), [&](Communicator& comm) {
      try {
        std::vector<double> v(1000, 1.0);
        comm.allreduce(std::span<double>(v));  // one successful round first
        if (comm.rank() == 2) throw InputError("data.csv:3: boom");
        if (comm.rank() == 1) {
          double x = 0;
          comm.recv(std::span<double>(&x, 1), 3, 0);  // blocked in p2p
        } else {
          comm.allreduce(std::span<double>(v));  // blocked in a collective
        }
      } catch (const std::exception& e) {
        seen[comm.rank()] = e.what();
        throw;
      }
    });
    FAIL() << "run_threads returned normally";
  } catch (const InputError& e) {  // the root cause, with its own type
    EXPECT_STREQ(e.what(), "data.csv:3: boom");
  }
  EXPECT_LT(seconds_since(start), 10.0);  // nobody waited for the 60 s timeout
  EXPECT_EQ(seen[0], "rank 0: allreduce aborted: rank 2 failed: data.csv:3: boom");
  EXPECT_EQ(seen[1], "rank 1: recv from rank 3 (tag 0) aborted: rank 2 failed: data.csv:3: boom");
  EXPECT_EQ(seen[3], "rank 3: allreduce aborted: rank 2 failed: data.csv:3: boom");
}

TEST(ThreadsErrors, NonStandardExceptionIsRethrown) {
  EXPECT_THROW(run_threads(opts(3),
                           [](Communicator& comm) {
                             if (comm.rank() == 1) throw 42;
                             comm.barrier();
                           }),
               int);
}

TEST(ThreadsErrors, MismatchedCollectiveKinds) {
  const auto what = comm_error_of(opts(2), [](Communicator& comm) {
    std::vector<float> v(10);
    if (comm.rank() == 0) {
      comm.allreduce(std::span<float>(v));
    } else {
      comm.broadcast(std::span<float>(v), 0);
    }
  });
  EXPECT_TRUE(contains(what, "collective mismatch")) << what;
  EXPECT_TRUE(contains(what, "rank 0 called allreduce(count=10, float32, sum)")) << what;
  EXPECT_TRUE(contains(what, "rank 1 called broadcast(bytes=40, root=0)")) << what;
}

TEST(ThreadsErrors, MismatchedCounts) {
  const auto what = comm_error_of(opts(3), [](Communicator& comm) {
    std::vector<double> v(comm.rank() == 2 ? 11 : 10);
    comm.allreduce(std::span<double>(v), ReduceOp::kMax);
  });
  EXPECT_TRUE(contains(what, "allreduce(count=10, float64, max)")) << what;
  EXPECT_TRUE(contains(what, "rank 2 called allreduce(count=11, float64, max)")) << what;
}

TEST(ThreadsErrors, MismatchedOpsTypesAndRoots) {
  EXPECT_TRUE(contains(comm_error_of(opts(2),
                                     [](Communicator& comm) {
                                       std::vector<float> v(4);
                                       comm.allreduce(std::span<float>(v), comm.rank() == 0
                                                                               ? ReduceOp::kSum
                                                                               : ReduceOp::kMin);
                                     }),
                       "collective mismatch"));
  EXPECT_TRUE(contains(comm_error_of(opts(2),
                                     [](Communicator& comm) {
                                       std::vector<double> d(4);
                                       std::vector<std::int64_t> i(4);
                                       if (comm.rank() == 0)
                                         comm.allreduce(std::span<double>(d));
                                       else
                                         comm.allreduce(std::span<std::int64_t>(i));
                                     }),
                       "collective mismatch"));
  EXPECT_TRUE(contains(comm_error_of(opts(3),
                                     [](Communicator& comm) {
                                       std::vector<char> v(4);
                                       comm.broadcast(std::span<char>(v), comm.rank() == 1 ? 1 : 0);
                                     }),
                       "root=1"));
  EXPECT_TRUE(contains(comm_error_of(opts(2),
                                     [](Communicator& comm) {
                                       std::vector<char> v(4);
                                       if (comm.rank() == 0)
                                         comm.barrier();
                                       else
                                         comm.broadcast(std::span<char>(v), 0);
                                     }),
                       "rank 0 called barrier()"));
}

TEST(ThreadsErrors, InvalidArgumentsToCollectives) {
  EXPECT_TRUE(contains(comm_error_of(opts(2),
                                     [](Communicator& comm) {
                                       int v = 0;
                                       comm.broadcast(std::span<int>(&v, 1), 2);
                                     }),
                       "invalid root rank 2"));
  EXPECT_TRUE(contains(comm_error_of(opts(3),
                                     [](Communicator& comm) {
                                       std::vector<float> send(2), recv(5);
                                       comm.allgather(std::span<const float>(send),
                                                      std::span<float>(recv));
                                     }),
                       "allgather"));
  EXPECT_TRUE(contains(comm_error_of(opts(2),
                                     [](Communicator& comm) {
                                       std::vector<float> send(5), recv(2);
                                       comm.reduce_scatter(std::span<const float>(send),
                                                           std::span<float>(recv));
                                     }),
                       "reduce_scatter"));
}

TEST(ThreadsErrors, RankThatReturnsEarlyIsDetectedWithoutTimeout) {
  const auto start = Clock::now();
  const auto what = comm_error_of(opts(3), [](Communicator& comm) {
    if (comm.rank() == 1) return;
    comm.barrier();
  });
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_TRUE(contains(what, "barrier: rank 1 returned from its function without calling it"))
      << what;
}

TEST(ThreadsErrors, RecvFromRankThatReturnedFailsAtOnce) {
  std::string what;
  run_threads(opts(2), [&](Communicator& comm) {
    if (comm.rank() == 0) return;
    int v = 0;
    try {
      comm.recv(std::span<int>(&v, 1), 0, 3);
    } catch (const CommError& e) {
      what = e.what();
    }
  });
  EXPECT_TRUE(contains(what, "rank 1: recv from rank 0 (tag 3): rank 0 returned")) << what;
}

TEST(ThreadsErrors, RecvTimesOutNamingRankOpPeerAndTag) {
  std::string what;
  double waited = 0;
  std::latch caught(1);
  run_threads(opts(2, 200ms), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      caught.wait();  // alive but silent
      return;
    }
    int v = 0;
    const auto start = Clock::now();
    try {
      comm.recv(std::span<int>(&v, 1), 0, 5);
    } catch (const CommError& e) {
      what = e.what();
    }
    waited = seconds_since(start);
    caught.count_down();
  });
  EXPECT_EQ(what, "rank 1: recv from rank 0 (tag 5) timed out after 200 ms");
  EXPECT_GE(waited, 0.19);
  EXPECT_LT(waited, 5.0);
}

TEST(ThreadsErrors, IrecvWaitTimesOutAndTheChannelStaysUsable) {
  std::vector<std::string> log;
  std::latch timed_out(1);
  std::latch received(1);
  run_threads(opts(2, 200ms), [&](Communicator& comm) {
    if (comm.rank() == 0) {
      timed_out.wait();
      const int v = 11;
      comm.send(std::span<const int>(&v, 1), 1, 1);
      received.wait();
      return;
    }
    int v = 0;
    Request req = comm.irecv(std::span<int>(&v, 1), 0, 1);
    try {
      req.wait();
    } catch (const CommError& e) {
      log.push_back(e.what());
    }
    log.push_back(req.done() ? "done" : "pending");
    timed_out.count_down();
    comm.recv(std::span<int>(&v, 1), 0, 1);  // the cancelled irecv must not take it
    log.push_back(std::to_string(v));
    received.count_down();
  });
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0], "rank 1: irecv from rank 0 (tag 1) timed out after 200 ms");
  EXPECT_EQ(log[1], "done");
  EXPECT_EQ(log[2], "11");
}

TEST(ThreadsErrors, CollectiveTimeoutIsTheRootCause) {
  const auto start = Clock::now();
  const auto what = comm_error_of(opts(3, 200ms), [](Communicator& comm) {
    if (comm.rank() == 2) std::this_thread::sleep_for(600ms);  // slow, not gone
    comm.barrier();
  });
  EXPECT_LT(seconds_since(start), 5.0);
  EXPECT_TRUE(contains(what, "barrier timed out after 200 ms waiting for rank(s) 2")) << what;
}

TEST(ThreadsErrors, TimeoutRacingTheLastArrivalIsSafe) {
  // A rank arriving just as the others give up must neither be let into a
  // collective whose peers are unwinding (and freeing their buffers) nor
  // leave anyone hanging: each trial either completes or fails cleanly.
  // Run under the sanitizers, this is mostly a memory-safety check.
  for (int trial = 0; trial < 12; ++trial) {
    const auto timeout = 20ms;
    const auto delay = timeout + std::chrono::microseconds(500 * (trial - 6));
    try {
      run_threads(opts(3, timeout), [&](Communicator& comm) {
        std::vector<float> buf(200'000, 1.0f);
        if (comm.rank() == 1) std::this_thread::sleep_for(delay);
        comm.allreduce(std::span<float>(buf));
        if (buf.front() != 3.0f || buf.back() != 3.0f) throw std::logic_error("wrong sum");
      });
    } catch (const CommError& e) {
      EXPECT_TRUE(contains(e.what(), "timed out") || contains(e.what(), "aborted")) << e.what();
    }
  }
}

TEST(ThreadsErrors, UncaughtRecvTimeoutEndsTheRun) {
  const auto what = comm_error_of(opts(2, 200ms), [](Communicator& comm) {
    int v = 0;
    // Rank 0 is busy (not waiting on comm, which could time out first) and
    // then finds the world aborted.
    if (comm.rank() == 1) {
      comm.recv(std::span<int>(&v, 1), 0, 0);
    } else {
      std::this_thread::sleep_for(500ms);
      comm.barrier();
    }
  });
  EXPECT_EQ(what, "rank 1: recv from rank 0 (tag 0) timed out after 200 ms");
}

TEST(ThreadsErrors, ManyWorldsConcurrently) {
  constexpr int kWorlds = 6;
  std::vector<std::string> results(kWorlds);
  {
    std::vector<std::jthread> drivers;
    for (int w = 0; w < kWorlds; ++w) {
      drivers.emplace_back([&results, w] {
        const int n = 2 + w % 3;
        std::vector<int> bad(static_cast<std::size_t>(n), 0);
        try {
          run_threads(opts(n), [&](Communicator& comm) {
            // World 0 fails; the others must be unaffected.
            if (w == 0 && comm.rank() == 1) throw std::runtime_error("world 0 fails");
            for (int i = 0; i < 100; ++i) {
              std::int64_t x = w * 1000 + i + comm.rank();
              comm.allreduce(std::span<std::int64_t>(&x, 1));
              if (x != n * (w * 1000 + i) + n * (n - 1) / 2) bad[comm.rank()]++;
              const int peer = (comm.rank() + 1) % n;
              comm.send(std::span<const std::int64_t>(&x, 1), peer, i);
              std::int64_t y = 0;
              comm.recv(std::span<std::int64_t>(&y, 1), (comm.rank() + n - 1) % n, i);
              if (y != x) bad[comm.rank()]++;
            }
          });
          int total = 0;
          for (int b : bad) total += b;
          results[w] = "ok " + std::to_string(total);
        } catch (const std::exception& e) {
          results[w] = e.what();
        }
      });
    }
  }
  EXPECT_EQ(results[0], "world 0 fails");
  for (int w = 1; w < kWorlds; ++w) EXPECT_EQ(results[w], "ok 0") << "world " << w;
}

}  // namespace
}  // namespace dtrain
