// bench_allreduce: in-place float32 sum allreduce on the threads backend,
// with a single-threaded memcpy of the same size, measured in the same run,
// as the reference. Columns follow nccl-tests: algbw = bytes / time and
// busbw = algbw * 2(N-1)/N, the per-rank traffic a ring allreduce would need,
// so that numbers are comparable across N.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/comm/threads.h"

#include "bench_util.h"

namespace {
using dtrain::bench::cpu_model;
using dtrain::bench::human;
using dtrain::bench::median;
using dtrain::bench::parse_size;

using Clock = std::chrono::steady_clock;

// Keeps the compiler from merging or dropping repeated copies into memory it
// can see no reader of.
void clobber_memory() { __asm__ volatile("" : : : "memory"); }

// Median seconds of one memcpy of `bytes`. Small copies are repeated inside
// each sample so that one sample is long enough to time. Both buffers start
// on a page boundary: with glibc 2.36 on AMD Zen 3, memcpy runs ~25x slower
// when (dst - src) mod 4096 is in [1, 31], which two vectors allocated back
// to back often give, and the reference should be memcpy at its best.
double memcpy_seconds(std::size_t bytes, int iters, int warmup) {
  constexpr std::size_t kPage = 4096;
  std::vector<char> src_store(bytes + kPage, 1), dst_store(bytes + kPage, 0);
  const auto page_align = [](char* p) {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    return p + (kPage - addr % kPage) % kPage;
  };
  char* const src = page_align(src_store.data());
  char* const dst = page_align(dst_store.data());
  const std::size_t reps = std::max<std::size_t>(1, (std::size_t{1} << 20) / bytes);
  std::vector<double> samples;
  for (int i = 0; i < warmup + iters; ++i) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) {
      std::memcpy(dst, src, bytes);
      clobber_memory();
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i >= warmup) samples.push_back(s / static_cast<double>(reps));
  }
  return median(samples);
}

struct Result {
  double seconds = 0;
  bool correct = false;
};

// One world per N for all sizes, so that the threads have long settled on
// their cores (a fresh thread can share its parent's core for a few ms,
// until the scheduler balances it away).
std::vector<Result> allreduce_seconds(int workers, const std::vector<std::size_t>& sizes, int iters,
                                      int warmup, std::chrono::milliseconds min_warmup) {
  std::vector<Result> results(sizes.size());
  dtrain::ThreadsOptions opts;
  opts.workers = workers;
  dtrain::run_threads(opts, [&](dtrain::Communicator& comm) {
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      // Each rank allocates (and so first-touches) its own buffer.
      std::vector<float> buf(sizes[s] / sizeof(float), 1.0f);
      const auto warm_start = Clock::now();
      for (int i = 0;; ++i) {
        // Rank 0 decides when warm-up is over; everybody must agree.
        int more = i < warmup || Clock::now() - warm_start < min_warmup;
        comm.broadcast(std::span<int>(&more, 1), 0);
        if (!more) break;
        comm.allreduce(std::span<float>(buf));
      }
      std::vector<double> samples;
      for (int i = 0; i < iters; ++i) {
        comm.barrier();
        const auto t0 = Clock::now();
        comm.allreduce(std::span<float>(buf));
        // allreduce returns only once every rank is done with every buffer,
        // so rank 0's clock covers the whole collective.
        samples.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      // Correctness check, so that a fast but wrong result cannot pass.
      std::fill(buf.begin(), buf.end(), static_cast<float>(comm.rank() + 1));
      comm.allreduce(std::span<float>(buf));
      const auto expected = static_cast<float>(workers * (workers + 1) / 2);
      std::uint64_t bad =
          std::count_if(buf.begin(), buf.end(), [&](float v) { return v != expected; });
      comm.allreduce(std::span<std::uint64_t>(&bad, 1));
      if (comm.rank() == 0) results[s] = {median(samples), bad == 0};
    }
  });
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Allreduce benchmark of the threads backend (float32 sum, in place)"};
  std::vector<std::string> size_args;
  std::vector<int> workers{2, 4, 8};
  int iters = 20;
  int warmup = 3;
  bool quick = false;
  std::chrono::milliseconds min_warmup{50};
  app.add_option("--sizes", size_args,
                 "buffer sizes in bytes, e.g. 4K,64K,1M (default 4K..64M, x4)")
      ->delimiter(',');
  app.add_option("--workers", workers, "world sizes N (default 2,4,8)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "timed iterations per row (median reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed iterations before those")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--quick", quick, "tiny smoke run (4K and 64K, N=2 and 3, 3 iterations)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::size_t> sizes;
  try {
    for (const auto& s : size_args) sizes.push_back(parse_size(s) / sizeof(float) * sizeof(float));
  } catch (const std::exception& e) {
    std::cerr << "bench_allreduce: " << e.what() << "\n";
    return 2;
  }
  if (quick) {
    if (sizes.empty()) sizes = {4096, 65536};
    workers = {2, 3};
    iters = 3;
    warmup = 1;
    min_warmup = std::chrono::milliseconds(0);
  }
  sizes.erase(std::remove(sizes.begin(), sizes.end(), std::size_t{0}), sizes.end());
  if (sizes.empty()) {
    for (std::size_t s = 4096; s <= (std::size_t{64} << 20); s *= 4) sizes.push_back(s);
  }

  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  const unsigned cores = std::thread::hardware_concurrency();
  std::printf("# bench_allreduce: threads backend, float32 sum, in place\n");
  std::printf("# command: %s\n", command.c_str());
  std::printf("# machine: %s, nproc=%u\n", cpu_model().c_str(), cores);
  std::printf(
      "# time: median of %d iterations after >= %d warm-up ones and >= %lld ms; memcpy: one "
      "thread, same size, page-aligned buffers\n",
      iters, warmup, static_cast<long long>(min_warmup.count()));
  std::printf(
      "# busbw = algbw * 2(N-1)/N (nccl-tests); rows with N > nproc oversubscribe the cores\n");
  std::printf("%3s %10s %12s %11s %11s %12s %13s\n", "N", "size", "time_us", "algbw_GB/s",
              "busbw_GB/s", "memcpy_GB/s", "busbw/memcpy");

  bool all_correct = true;
  for (int n : workers) {
    const auto results = allreduce_seconds(n, sizes, iters, warmup, min_warmup);
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      const std::size_t bytes = sizes[s];
      const Result& r = results[s];
      const double copy_s = memcpy_seconds(bytes, iters, warmup);
      const double b = static_cast<double>(bytes);
      const double algbw = b / r.seconds / 1e9;
      const double busbw = algbw * 2.0 * (n - 1) / n;
      const double copybw = b / copy_s / 1e9;
      std::printf("%3d %10s %12.1f %11.2f %11.2f %12.2f %13.2f%s%s\n", n, human(bytes).c_str(),
                  r.seconds * 1e6, algbw, busbw, copybw, busbw / copybw,
                  cores != 0 && static_cast<unsigned>(n) > cores ? "  (oversubscribed)" : "",
                  r.correct ? "" : "  WRONG RESULT");
      all_correct = all_correct && r.correct;
    }
    std::fflush(stdout);
  }
  return all_correct ? 0 : 1;
}
