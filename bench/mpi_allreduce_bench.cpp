// bench_mpi_allreduce: in-place float32 sum allreduce under mpirun, through
// dtrain's MPI backend and, in the same run, through a raw
// MPI_Allreduce(MPI_IN_PLACE) on MPI_COMM_WORLD as the reference. Run it as
//   mpirun -np N bench_mpi_allreduce [--sizes 4K,1M] [--iters 20]
//
// Each iteration times both, one after the other, each after an
// MPI_Barrier, alternating which goes first so that drift (frequency,
// other load) hits both alike. The time of one call is the slowest rank's
// time from leaving the barrier to the call's return (an allreduce is done
// when the last rank has its result); the table shows the median over the
// iterations. Columns follow nccl-tests: algbw = bytes / time, busbw =
// algbw * 2(N-1)/N, as in bench_allreduce for the threads backend.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/comm/mpi.h"
#include "mpi_c.h"

#include "bench_util.h"

namespace {
using dtrain::bench::cpu_model;
using dtrain::bench::human;
using dtrain::bench::median;
using dtrain::bench::parse_size;

using Clock = std::chrono::steady_clock;

struct Row {
  double raw_seconds = 0;
  double dtrain_seconds = 0;
  bool correct = false;
};

// Whether both paths sum (rank + 1) over ranks exactly.
bool check(dtrain::Communicator& comm, std::vector<float>& raw, std::vector<float>& ours) {
  const int n = comm.size();
  std::fill(raw.begin(), raw.end(), static_cast<float>(comm.rank() + 1));
  std::fill(ours.begin(), ours.end(), static_cast<float>(comm.rank() + 1));
  MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(raw.size()), MPI_FLOAT, MPI_SUM,
                MPI_COMM_WORLD);
  comm.allreduce(std::span<float>(ours));
  const auto expected = static_cast<float>(n * (n + 1) / 2);
  const auto wrong = [&](float v) { return v != expected; };
  int bad =
      std::any_of(raw.begin(), raw.end(), wrong) || std::any_of(ours.begin(), ours.end(), wrong);
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return bad == 0;
}

Row measure(dtrain::Communicator& comm, std::size_t bytes, int iters, int warmup,
            std::chrono::milliseconds min_warmup) {
  const std::size_t count = bytes / sizeof(float);
  // Separate buffers, each first touched by its own rank.
  std::vector<float> raw(count, 1.0f);
  std::vector<float> ours(count, 1.0f);
  const auto run_raw = [&] {
    MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
  };
  const auto run_ours = [&] { comm.allreduce(std::span<float>(ours)); };

  const auto warm_start = Clock::now();
  for (int i = 0;; ++i) {
    // Rank 0 decides when warm-up is over; everybody must agree.
    int more = i < warmup || Clock::now() - warm_start < min_warmup;
    MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!more) break;
    run_raw();
    run_ours();
  }

  std::vector<double> raw_s(static_cast<std::size_t>(iters));
  std::vector<double> ours_s(static_cast<std::size_t>(iters));
  const auto timed = [](const auto& fn) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (int i = 0; i < iters; ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (i % 2 == 0) {
      raw_s[k] = timed(run_raw);
      ours_s[k] = timed(run_ours);
    } else {
      ours_s[k] = timed(run_ours);
      raw_s[k] = timed(run_raw);
    }
  }
  // The slowest rank's time, iteration by iteration.
  MPI_Allreduce(MPI_IN_PLACE, raw_s.data(), iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, ours_s.data(), iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return {median(raw_s), median(ours_s), check(comm, raw, ours)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Allreduce benchmark of the MPI backend against raw MPI_Allreduce (run under mpirun)"};
  std::vector<std::string> size_args;
  int iters = 20;
  int warmup = 3;
  bool quick = false;
  std::chrono::milliseconds min_warmup{50};
  app.add_option("--sizes", size_args,
                 "buffer sizes in bytes, e.g. 4K,64K,1M (default 4K..64M, x4)")
      ->delimiter(',');
  app.add_option("--iters", iters, "timed iterations per row (median reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed iterations before those")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--quick", quick, "tiny smoke run (4K and 64K, 3 iterations)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::size_t> sizes;
  try {
    for (const auto& s : size_args) sizes.push_back(parse_size(s) / sizeof(float) * sizeof(float));
  } catch (const std::exception& e) {
    std::cerr << "bench_mpi_allreduce: " << e.what() << "\n";
    return 2;
  }
  if (quick) {
    if (sizes.empty()) sizes = {4096, 65536};
    iters = 3;
    warmup = 1;
    min_warmup = std::chrono::milliseconds(0);
  }
  sizes.erase(std::remove(sizes.begin(), sizes.end(), std::size_t{0}), sizes.end());
  if (sizes.empty()) {
    for (std::size_t s = 4096; s <= (std::size_t{64} << 20); s *= 4) sizes.push_back(s);
  }

  try {
    dtrain::MpiSession session;
    auto comm = dtrain::make_mpi_communicator(session);
    const int n = comm->size();
    const bool lead = comm->rank() == 0;
    const unsigned cores = std::thread::hardware_concurrency();
    if (lead) {
      std::string command = argv[0];
      for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
      int major = 0;
      int minor = 0;
      MPI_Get_version(&major, &minor);
      char library[MPI_MAX_LIBRARY_VERSION_STRING];
      int len = 0;
      MPI_Get_library_version(library, &len);
      std::string lib(library, static_cast<std::size_t>(len));
      lib = lib.substr(0, lib.find_first_of(",\n"));
      std::printf(
          "# bench_mpi_allreduce: float32 sum, in place; raw MPI_Allreduce vs dtrain's MPI "
          "backend\n");
      std::printf("# command: %s (N=%d)\n", command.c_str(), n);
      std::printf("# machine: %s, nproc=%u; %s (MPI %d.%d)\n", cpu_model().c_str(), cores,
                  lib.c_str(), major, minor);
      std::printf(
          "# time: median over %d iterations (after >= %d warm-up ones and >= %lld ms) of the "
          "slowest rank's time from leaving a barrier to the call's return; raw and dtrain "
          "alternate which goes first\n",
          iters, warmup, static_cast<long long>(min_warmup.count()));
      std::printf(
          "# busbw = algbw * 2(N-1)/N (nccl-tests); overhead = dtrain time / raw time - 1\n");
      std::printf("%3s %10s %12s %11s %11s %12s %11s %11s %10s\n", "N", "size", "raw_us",
                  "raw_algbw", "raw_busbw", "dtrain_us", "dt_algbw", "dt_busbw", "overhead");
    }
    bool all_correct = true;
    for (const std::size_t bytes : sizes) {
      const Row r = measure(*comm, bytes, iters, warmup, min_warmup);
      all_correct = all_correct && r.correct;
      if (!lead) continue;
      const double b = static_cast<double>(bytes);
      const double bus = 2.0 * (n - 1) / n;
      const double raw_alg = b / r.raw_seconds / 1e9;
      const double our_alg = b / r.dtrain_seconds / 1e9;
      std::printf("%3d %10s %12.1f %11.2f %11.2f %12.1f %11.2f %11.2f %+9.1f%%%s%s\n", n,
                  human(bytes).c_str(), r.raw_seconds * 1e6, raw_alg, raw_alg * bus,
                  r.dtrain_seconds * 1e6, our_alg, our_alg * bus,
                  (r.dtrain_seconds / r.raw_seconds - 1) * 100,
                  cores != 0 && static_cast<unsigned>(n) > cores ? "  (oversubscribed)" : "",
                  r.correct ? "" : "  WRONG RESULT");
      std::fflush(stdout);
    }
    comm.reset();
    return all_correct ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_mpi_allreduce: " << e.what() << "\n";
    return 1;
  }
}
