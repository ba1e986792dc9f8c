// load_memory_probe: runs load_partitioned on a file and prints, per rank,
// the bytes it read and the rows it parsed and ended up owning, with the
// process's peak resident memory (VmHWM) before and after loading.
//
//   load_memory_probe FILE N [--format csv|libsvm] [--partition SPEC] [--label NAME]
//                     [--check]
//
// Without MPI the N ranks are threads of this process, so the peak is that of
// all ranks together. Started by mpirun (in a build with the MPI backend) each
// process is one rank, N may be omitted (it must equal the job size if given)
// and every rank's own peak is printed: the per-process memory check.
// Output lines are "key value ..." pairs, easy to grep or parse.
//
// --check then also reads the whole file on every rank, partitions it in
// memory and compares each rank's result with its part ("rank R check ok");
// the exit status is 1 on a mismatch. It costs the whole file per rank, after
// the peaks above were taken.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/comm/threads.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"

#ifdef DTRAIN_HAVE_MPI
#include "dtrain/comm/mpi.h"
#endif

namespace {

using dtrain::LoadStats;

// Peak resident set size of this process in KiB, from /proc/self/status.
std::uint64_t peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      std::uint64_t kib = 0;
      in >> kib;
      return kib;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

struct Args {
  std::string file;
  int ranks = 0;  // 0: the MPI job size
  std::string format;
  std::string partition = "range";
  std::string label;
  bool check = false;
};

[[noreturn]] void usage(const std::string& why) {
  throw dtrain::ConfigError(
      why +
      "\nusage: load_memory_probe FILE N [--format csv|libsvm] "
      "[--partition range|hash|hash:COLUMN|shuffle] [--label NAME] [--check]");
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--format") {
      a.format = value();
    } else if (arg == "--partition") {
      a.partition = value();
    } else if (arg == "--label") {
      a.label = value();
    } else if (arg == "--check") {
      a.check = true;
    } else if (arg.rfind("--", 0) == 0) {
      usage("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.empty() || positional.size() > 2) usage("expected FILE and N");
  a.file = positional[0];
  if (positional.size() == 2) {
    char* end = nullptr;
    const long n = std::strtol(positional[1].c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 4096) usage("N must be a number from 1 to 4096");
    a.ranks = static_cast<int>(n);
  }
  return a;
}

dtrain::LoadOptions load_options(const Args& a) {
  dtrain::LoadOptions o;
  o.format = a.format.empty() ? dtrain::guess_format(a.file) : dtrain::parse_format(a.format);
  o.csv.label = a.label;
  return o;
}

template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

// The first field in which `got` differs from rank `rank`'s part of the
// whole file, or "" when they are the same.
std::string compare_with_whole(const Args& a, const dtrain::LoadOptions& opts,
                               const dtrain::Partitioner& partitioner, const dtrain::Dataset& got,
                               int rank, int ranks) {
  dtrain::Dataset whole;
  if (opts.format == dtrain::FileFormat::kLibsvm) {
    whole = dtrain::read_libsvm(a.file, opts.libsvm);
  } else {
    dtrain::CsvOptions csv = opts.csv;
    if (const auto* hash = dynamic_cast<const dtrain::HashPartitioner*>(&partitioner)) {
      csv.key_column = hash->key_column();
    }
    whole = dtrain::read_csv(a.file, csv);
  }
  const auto owner = partitioner.assign(whole, whole.rows(), static_cast<std::uint32_t>(ranks));
  const dtrain::Dataset want =
      whole.subset(dtrain::rows_of_part(owner, static_cast<std::uint32_t>(rank)));
  if (got.layout() != want.layout()) return "layout";
  if (got.rows() != want.rows()) return "rows";
  if (got.cols() != want.cols()) return "cols";
  if (!std::ranges::equal(got.row_ids(), want.row_ids())) return "row_ids";
  if (!same_bits(got.labels(), want.labels())) return "labels";
  if (!same_bits(got.dense_values(), want.dense_values())) return "dense values";
  if (got.csr().row_ptr != want.csr().row_ptr || got.csr().indices != want.csr().indices ||
      !same_bits(std::span<const float>(got.csr().values),
                 std::span<const float>(want.csr().values))) {
    return "sparse values";
  }
  if (got.feature_names() != want.feature_names()) return "feature_names";
  if (got.label_name() != want.label_name()) return "label_name";
  if (got.keys() != want.keys()) return "keys";
  return "";
}

void print_check(int rank, const std::string& mismatch) {
  if (mismatch.empty()) {
    std::printf("rank %d check ok\n", rank);
  } else {
    std::printf("rank %d check FAILED: %s differs\n", rank, mismatch.c_str());
  }
}

void print_rank(int rank, const LoadStats& s) {
  std::printf(
      "rank %d bytes_read %llu rows_parsed %llu rows_owned %llu rows_sent %llu "
      "rows_received %llu exchange_bytes %llu\n",
      rank, static_cast<unsigned long long>(s.bytes_read),
      static_cast<unsigned long long>(s.rows_parsed), static_cast<unsigned long long>(s.rows_owned),
      static_cast<unsigned long long>(s.rows_sent),
      static_cast<unsigned long long>(s.rows_received),
      static_cast<unsigned long long>(s.exchange_bytes));
}

void print_header(const Args& a, const dtrain::LoadOptions& o, int ranks, const char* backend,
                  std::uint64_t file_bytes) {
  std::printf("file %s bytes %llu format %s partition %s ranks %d backend %s\n", a.file.c_str(),
              static_cast<unsigned long long>(file_bytes),
              o.format == dtrain::FileFormat::kCsv ? "csv" : "libsvm", a.partition.c_str(), ranks,
              backend);
}

int run_threads_probe(const Args& a) {
  if (a.ranks == 0) usage("expected FILE and N");
  const dtrain::LoadOptions opts = load_options(a);
  const auto partitioner = dtrain::make_partitioner(a.partition, 1);
  const std::uint64_t before = peak_rss_kib();
  std::vector<LoadStats> stats(static_cast<std::size_t>(a.ranks));
  std::vector<dtrain::Dataset> kept(a.check ? static_cast<std::size_t>(a.ranks) : 0);
  dtrain::run_threads({.workers = a.ranks}, [&](dtrain::Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    // Without --check the result is dropped at once, as a trainer would
    // keep it: the peak is what loading needed.
    dtrain::Dataset d = dtrain::load_partitioned(comm, a.file, opts, *partitioner, &stats[r]);
    if (a.check) kept[r] = std::move(d);
  });
  const std::uint64_t after = peak_rss_kib();
  print_header(a, opts, a.ranks, "threads", stats[0].file_bytes);
  std::printf("peak_rss_kib_before %llu\n", static_cast<unsigned long long>(before));
  for (int r = 0; r < a.ranks; ++r) print_rank(r, stats[static_cast<std::size_t>(r)]);
  std::printf("peak_rss_kib_after %llu\n", static_cast<unsigned long long>(after));
  bool ok = true;
  for (int r = 0; r < static_cast<int>(kept.size()); ++r) {
    const std::string mismatch =
        compare_with_whole(a, opts, *partitioner, kept[static_cast<std::size_t>(r)], r, a.ranks);
    print_check(r, mismatch);
    ok = ok && mismatch.empty();
  }
  return ok ? 0 : 1;
}

#ifdef DTRAIN_HAVE_MPI
int run_mpi_probe(const Args& a) {
  dtrain::MpiSession session;
  try {
    if (a.ranks != 0 && a.ranks != session.world_size()) {
      usage("N is " + std::to_string(a.ranks) + " but mpirun started " +
            std::to_string(session.world_size()) + " processes");
    }
    const auto comm = dtrain::make_mpi_communicator(session);
    const dtrain::LoadOptions opts = load_options(a);
    const auto partitioner = dtrain::make_partitioner(a.partition, 1);
    const std::uint64_t before = peak_rss_kib();
    LoadStats s;
    dtrain::Dataset d = dtrain::load_partitioned(*comm, a.file, opts, *partitioner, &s);
    const std::uint64_t after = peak_rss_kib();
    std::string mismatch;
    if (a.check) {
      mismatch = compare_with_whole(a, opts, *partitioner, d, comm->rank(), comm->size());
      if (!mismatch.empty()) {
        std::fprintf(stderr, "rank %d check FAILED: %s differs\n", comm->rank(), mismatch.c_str());
      }
    }
    d = dtrain::Dataset();
    // Rank 0 prints every rank's line, in rank order.
    constexpr std::size_t kWidth = 10;
    const std::uint64_t mine[kWidth] = {s.file_bytes,     s.bytes_read, s.rows_parsed,
                                        s.rows_owned,     s.rows_sent,  s.rows_received,
                                        s.exchange_bytes, before,       after};
    std::vector<std::uint64_t> all(kWidth * static_cast<std::size_t>(comm->size()));
    comm->allgather(std::span<const std::uint64_t>(mine), std::span<std::uint64_t>(all));
    if (comm->rank() == 0) {
      print_header(a, opts, comm->size(), "mpi", s.file_bytes);
      for (int r = 0; r < comm->size(); ++r) {
        const std::uint64_t* v = &all[kWidth * static_cast<std::size_t>(r)];
        LoadStats rs;
        rs.file_bytes = v[0];
        rs.bytes_read = v[1];
        rs.rows_parsed = v[2];
        rs.rows_owned = v[3];
        rs.rows_sent = v[4];
        rs.rows_received = v[5];
        rs.exchange_bytes = v[6];
        print_rank(r, rs);
        std::printf("rank %d peak_rss_kib_before %llu peak_rss_kib_after %llu\n", r,
                    static_cast<unsigned long long>(v[7]), static_cast<unsigned long long>(v[8]));
        if (a.check) print_check(r, v[9] == 0 ? "" : "a field (that rank's stderr says which)");
      }
    }
    std::fflush(stdout);
    for (int r = 0; r < comm->size(); ++r) {
      if (all[kWidth * static_cast<std::size_t>(r) + 9] != 0) return 1;
    }
  } catch (const std::exception& e) {
    // The other ranks may be blocked in a collective: end the whole job.
    session.abort_job(std::string("load_memory_probe: ") + e.what());
  }
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse_args(argc, argv);
#ifdef DTRAIN_HAVE_MPI
    if (dtrain::launched_by_mpi()) return run_mpi_probe(a);
#endif
    return run_threads_probe(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_memory_probe: %s\n", e.what());
    return 1;
  }
}
