// main() of test_mpi_comm, which runs under mpirun: every rank runs every
// test (they are SPMD: each calls the same collectives in the same order),
// only rank 0 prints GoogleTest's report, other ranks print one line per
// failure ("rank R: FAILED ..."), and every rank exits non-zero if any rank
// had a failure.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "dtrain/util/fnv1a.h"
#include "mpi_c.h"
#include "mpi_test_env.h"

namespace dtrain::mpi_test {
namespace {

// Test fixtures reach these through session() and comm(); main owns them.
const MpiSession* g_session = nullptr;
Communicator* g_comm = nullptr;

// On ranks other than 0: failures only, each tagged with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "rank %d: failure at %s:%d: %s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.summary());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed()) {
      std::fprintf(stderr, "rank %d: FAILED test %s.%s\n", rank_, info.test_suite_name(),
                   info.name());
    }
  }

 private:
  int rank_;
};

}  // namespace

const MpiSession& session() { return *g_session; }
Communicator& comm() { return *g_comm; }

bool same_on_all_ranks(std::span<const unsigned char> bytes) {
  unsigned long long mine[2] = {fnv1a64(bytes), bytes.size()};
  unsigned long long lo[2] = {mine[0], mine[1]};
  unsigned long long hi[2] = {mine[0], mine[1]};
  MPI_Allreduce(mine, lo, 2, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(mine, hi, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  return lo[0] == hi[0] && lo[1] == hi[1];
}

bool all_ranks(bool ok) {
  int bad = ok ? 0 : 1;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return bad == 0;
}

// The harness's own check (failure_report_test.sh runs it): a failure on the
// last rank alone must fail every rank and be printed with its rank.
TEST(MpiHarness, DISABLED_InjectedFailureOnTheLastRank) {
  const bool last = comm().rank() == comm().size() - 1;
  EXPECT_FALSE(last) << "injected failure";
  comm().barrier();  // the other ranks carry on, as after any EXPECT failure
}

}  // namespace dtrain::mpi_test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dtrain::MpiSession session;
  const int rank = session.world_rank();
  dtrain::MpiOptions options;
  // Long enough for N = 4 on 2 cores under a sanitizer; a hang still ends
  // the job well within CTest's TIMEOUT, with the watchdog's message.
  options.timeout = std::chrono::seconds(60);
  auto comm = dtrain::make_mpi_communicator(session, options);
  dtrain::mpi_test::g_session = &session;
  dtrain::mpi_test::g_comm = comm.get();

  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    // Release hands back ownership of the default printer.
    std::unique_ptr<::testing::TestEventListener> printer(
        listeners.Release(listeners.default_result_printer()));
    listeners.Append(std::make_unique<dtrain::mpi_test::RankFailurePrinter>(rank).release());
  }

  const bool passed = RUN_ALL_TESTS() == 0;
  const bool all_passed = dtrain::mpi_test::all_ranks(passed);
  if (rank == 0) {
    std::printf("[  MPI     ] %d rank(s): %s\n", session.world_size(),
                all_passed ? "all passed" : "FAILED on some rank (see the 'rank R: FAILED' lines)");
    std::fflush(stdout);
  }
  dtrain::mpi_test::g_comm = nullptr;
  comm.reset();
  return all_passed ? 0 : 1;
}
