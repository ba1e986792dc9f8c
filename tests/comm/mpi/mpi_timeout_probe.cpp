// mpi_timeout_probe: a small MPI program for the failure tests, run under
// mpirun.
//
//   mpi_timeout_probe [--timeout-ms T]   mismatched collectives: rank 0 calls
//       barrier twice, every other rank once, so rank 0's second barrier can
//       never complete and its watchdog must end the job after T ms
//       (default 1000). Exits 0 only if the watchdog did not fire (a bug).
//   mpi_timeout_probe --loop [--seconds S] [--timeout-ms T]   prints
//       "rank R pid P" on every rank, then allreduces in a loop for up to S
//       seconds (default 60), so that a test can kill one rank and watch the
//       job end (kill_rank_test.sh).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "dtrain/comm/mpi.h"

namespace {

int usage() {
  std::fprintf(stderr, "usage: mpi_timeout_probe [--loop] [--seconds S] [--timeout-ms T]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool loop = false;
  double seconds = 60;
  long timeout_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--loop") {
      loop = true;
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--timeout-ms" && i + 1 < argc) {
      timeout_ms = std::atol(argv[++i]);
    } else {
      return usage();
    }
  }
  try {
    dtrain::MpiSession session;
    dtrain::MpiOptions options;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    auto comm = dtrain::make_mpi_communicator(session, options);
    const int rank = comm->rank();
    if (!loop) {
      comm->barrier();
      if (rank == 0) {
        std::printf("rank 0: entering the second barrier, which no other rank calls\n");
        std::fflush(stdout);
        comm->barrier();
        std::printf("rank 0: second barrier returned (the watchdog did not fire)\n");
      }
      return 0;
    }
    std::printf("rank %d pid %ld\n", rank, static_cast<long>(getpid()));
    std::fflush(stdout);
    std::vector<float> buf(1024, 1.0f);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    long iterations = 0;
    while (std::chrono::steady_clock::now() < end) {
      comm->allreduce(std::span<float>(buf));
      std::fill(buf.begin(), buf.end(), 1.0f);
      ++iterations;
      // A gentle loop: oversubscribed ranks need the cores too.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::printf("rank %d: %ld allreduces, nobody failed\n", rank, iterations);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_timeout_probe: %s\n", e.what());
    return 1;
  }
}
