// load_partitioned and load_shard on 1..N thread ranks against the reference:
// the whole file read by one reader and partitioned in memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "binary_fixtures.h"
#include "dtrain/comm/threads.h"
#include "dtrain/data/datasets.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/shards.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::read_all;
using test::TempDir;

constexpr int kMaxRanks = 8;

// Runs load_partitioned on `ranks` thread ranks; element r is rank r's result.
std::vector<Dataset> load_on(int ranks, const std::string& path, const LoadOptions& opts,
                             const Partitioner& partitioner,
                             std::vector<LoadStats>* stats = nullptr) {
  std::vector<Dataset> out(static_cast<std::size_t>(ranks));
  if (stats) stats->assign(static_cast<std::size_t>(ranks), LoadStats{});
  run_threads({.workers = ranks}, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    out[r] = load_partitioned(comm, path, opts, partitioner, stats ? &(*stats)[r] : nullptr);
  });
  return out;
}

std::vector<Dataset> load_shards_on(int ranks, const std::string& dir, const LoadOptions& opts) {
  std::vector<Dataset> out(static_cast<std::size_t>(ranks));
  run_threads({.workers = ranks}, [&](Communicator& comm) {
    out[static_cast<std::size_t>(comm.rank())] = load_shard(comm, dir, opts);
  });
  return out;
}

// The reference: the whole file read at once (keeping the hash key column
// the loader keeps), then partitioned.
Dataset read_whole(const std::string& path, const LoadOptions& opts,
                   const Partitioner& partitioner) {
  if (opts.format == FileFormat::kLibsvm) return read_libsvm(path, opts.libsvm);
  if (opts.format == FileFormat::kIdx) return read_idx(path, opts.labels_path, opts.idx);
  if (opts.format == FileFormat::kNpy) return read_npy(path, opts.labels_path, opts.npy);
  CsvOptions csv = opts.csv;
  if (const auto* hash = dynamic_cast<const HashPartitioner*>(&partitioner)) {
    if (csv.key_column.empty()) csv.key_column = hash->key_column();
  }
  return read_csv(path, csv);
}

std::vector<Dataset> expected_parts(const Dataset& whole, const Partitioner& partitioner,
                                    int ranks) {
  const auto parts = static_cast<std::uint32_t>(ranks);
  const std::vector<std::uint32_t> owner = partitioner.assign(whole, whole.rows(), parts);
  std::vector<Dataset> out;
  for (std::uint32_t p = 0; p < parts; ++p) out.push_back(whole.subset(rows_of_part(owner, p)));
  return out;
}

// Bitwise float comparison: -0.0 and NaN payloads count too.
template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

void expect_same(const Dataset& got, const Dataset& want, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.layout(), want.layout());
  EXPECT_EQ(got.rows(), want.rows());
  EXPECT_EQ(got.cols(), want.cols());
  EXPECT_TRUE(std::ranges::equal(got.row_ids(), want.row_ids()));
  EXPECT_TRUE(same_bits(got.labels(), want.labels()));
  EXPECT_TRUE(same_bits(got.dense_values(), want.dense_values()));
  EXPECT_EQ(got.csr().row_ptr, want.csr().row_ptr);
  EXPECT_EQ(got.csr().indices, want.csr().indices);
  EXPECT_TRUE(same_bits(std::span<const float>(got.csr().values),
                        std::span<const float>(want.csr().values)));
  EXPECT_EQ(got.feature_names(), want.feature_names());
  EXPECT_EQ(got.label_name(), want.label_name());
  EXPECT_EQ(got.keys(), want.keys());
}

// Loads on 1..max_ranks ranks and compares every rank with the reference.
void check_file(const std::string& path, const LoadOptions& opts, const Partitioner& partitioner,
                const std::string& what, int max_ranks = kMaxRanks) {
  const Dataset whole = read_whole(path, opts, partitioner);
  for (int n = 1; n <= max_ranks; ++n) {
    const auto want = expected_parts(whole, partitioner, n);
    const auto got = load_on(n, path, opts, partitioner);
    for (int r = 0; r < n; ++r) {
      expect_same(got[r], want[r],
                  what + " " + partitioner.name() + " N=" + std::to_string(n) + " rank " +
                      std::to_string(r));
    }
  }
}

// The partitioners every file is loaded with: range, weighted range (one
// weight per rank, so made per N), hash, hash by a key column, shuffle.
using PartitionerFor = std::function<std::unique_ptr<Partitioner>(int ranks)>;
std::vector<std::pair<std::string, PartitionerFor>> partitioners(const std::string& key_column) {
  std::vector<std::pair<std::string, PartitionerFor>> out;
  out.emplace_back("range", [](int) { return std::make_unique<RangePartitioner>(); });
  out.emplace_back("weighted", [](int n) {
    std::vector<double> w;
    for (int r = 0; r < n; ++r) w.push_back(1.0 + 0.75 * (r % 3));
    return std::make_unique<RangePartitioner>(w);
  });
  out.emplace_back("hash", [](int) { return std::make_unique<HashPartitioner>(); });
  if (!key_column.empty()) {
    out.emplace_back("hash:" + key_column,
                     [key_column](int) { return std::make_unique<HashPartitioner>(key_column); });
  }
  out.emplace_back("shuffle", [](int) { return std::make_unique<ShufflePartitioner>(42); });
  return out;
}

void check_all_partitioners(const std::string& path, const LoadOptions& opts,
                            const std::string& key_column, const std::string& what,
                            int max_ranks = kMaxRanks) {
  for (const auto& [name, make] : partitioners(key_column)) {
    const Dataset whole = read_whole(path, opts, *make(1));
    for (int n = 1; n <= max_ranks; ++n) {
      const auto partitioner = make(n);
      const auto want = expected_parts(whole, *partitioner, n);
      const auto got = load_on(n, path, opts, *partitioner);
      for (int r = 0; r < n; ++r) {
        expect_same(got[r], want[r],
                    what + " " + name + " N=" + std::to_string(n) + " rank " + std::to_string(r));
      }
    }
  }
}

LoadOptions csv_opts(CsvOptions csv = {}) {
  LoadOptions o;
  o.format = FileFormat::kCsv;
  o.csv = std::move(csv);
  return o;
}

LoadOptions csv_with(const std::function<void(CsvOptions&)>& set) {
  CsvOptions csv;
  set(csv);
  return csv_opts(std::move(csv));
}

LoadOptions libsvm_opts(LibsvmOptions libsvm = {}) {
  LoadOptions o;
  o.format = FileFormat::kLibsvm;
  o.libsvm = libsvm;
  return o;
}

LoadOptions num_features(std::size_t n) {
  LibsvmOptions libsvm;
  libsvm.num_features = n;
  return libsvm_opts(libsvm);
}

// --- Real files ---------------------------------------------------------------

TEST(LoadPartitioned, Diabetes) {
  CsvOptions csv;
  csv.label = "target";
  check_all_partitioners(test::example_path("diabetes.csv"), csv_opts(csv), "sex", "diabetes");
}

TEST(LoadPartitioned, BreastCancer) {
  CsvOptions csv;
  csv.label_kind = LabelKind::kBinary;
  check_all_partitioners(test::example_path("breast_cancer.csv"), csv_opts(csv), "mean_radius",
                         "breast_cancer");
}

TEST(LoadPartitioned, Iris) {
  check_all_partitioners(test::example_path("iris.csv"), csv_opts(), "species", "iris");
}

TEST(LoadPartitioned, HeartScaleLibsvm) {
  LibsvmOptions libsvm;
  libsvm.label_kind = LabelKind::kBinary;
  check_all_partitioners(test::example_path("heart_scale.libsvm"), libsvm_opts(libsvm), "",
                         "heart_scale");
  // A declared width wider than any row is kept.
  libsvm.num_features = 20;
  check_file(test::example_path("heart_scale.libsvm"), libsvm_opts(libsvm), RangePartitioner(),
             "heart_scale num_features=20");
}

TEST(LoadPartitioned, ReportsStats) {
  std::vector<LoadStats> stats;
  const std::string path = test::example_path("breast_cancer.csv");
  const auto got = load_on(4, path, csv_opts(), RangePartitioner(), &stats);
  std::uint64_t parsed = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(stats[r].file_bytes, fs::file_size(path));
    EXPECT_EQ(stats[r].rows_owned, got[r].rows());
    EXPECT_GT(stats[r].bytes_read, 0u);
    parsed += stats[r].rows_parsed;
    sent += stats[r].rows_sent;
    received += stats[r].rows_received;
  }
  EXPECT_EQ(parsed, 569u);
  EXPECT_EQ(sent, received);
  // Range partitioning moves only rows near the range boundaries.
  EXPECT_LT(sent, 12u);
}

// --- Synthetic layouts ------------------------------------------------------

// Random CSV text: a key column, two features and a label, with comment and
// blank lines (also blank lines of spaces and a comment between comment and
// header), CRLF or LF, long fields or comments, optional final newline.
struct CsvShape {
  bool crlf = false;
  bool final_newline = true;
  bool bom = false;
  int rows = 50;
  int long_every = 0;  // every k-th line is very long (padding or a comment)
  double junk = 0.3;   // chance of a blank or comment line before a row
};

std::string make_csv(const CsvShape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string eol = shape.crlf ? "\r\n" : "\n";
  std::string s = shape.bom ? "\xEF\xBB\xBF" : "";
  const auto chance = [&](double p) { return std::uniform_real_distribution<>(0, 1)(rng) < p; };
  if (chance(0.5)) s += "# generated" + eol + eol + "  # indented comment" + eol;
  s += "key, x1 ,x2,y" + eol;
  for (int i = 0; i < shape.rows; ++i) {
    while (chance(shape.junk)) {
      switch (rng() % 4) {
        case 0:
          s += eol;
          break;
        case 1:
          s += "   \t" + eol;
          break;
        case 2:
          s += "#" + std::string(rng() % 30, 'c') + eol;
          break;
        default:
          s += "  # " + std::string(shape.long_every ? 3000 : 5, 'z') + eol;
          break;
      }
    }
    std::string line = std::to_string(rng() % 7) + "," + std::to_string(i) + ".5,";
    if (shape.long_every && i % shape.long_every == 0) line += std::string(2000, ' ');
    line +=
        std::to_string(static_cast<int>(rng() % 1000) - 500) + "e-2, " + std::to_string(rng() % 2);
    s += line;
    if (i + 1 < shape.rows || shape.final_newline) s += eol;
  }
  return s;
}

std::string make_libsvm(const CsvShape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string eol = shape.crlf ? "\r\n" : "\n";
  std::string s = shape.bom ? "\xEF\xBB\xBF" : "";
  const auto chance = [&](double p) { return std::uniform_real_distribution<>(0, 1)(rng) < p; };
  for (int i = 0; i < shape.rows; ++i) {
    while (chance(shape.junk)) {
      switch (rng() % 3) {
        case 0:
          s += eol;
          break;
        case 1:
          s += " \t " + eol;
          break;
        default:
          s += "# " + std::string(shape.long_every ? 2500 : 7, 'c') + eol;
          break;
      }
    }
    s += (rng() % 2) ? "+1" : "-1";
    if (chance(0.2)) s += " qid:" + std::to_string(rng() % 5);
    std::uint32_t idx = 0;
    const int nnz = static_cast<int>(rng() % 6);
    for (int k = 0; k < nnz; ++k) {
      idx += 1 + static_cast<std::uint32_t>(rng() % 9);
      // Appended piece by piece: GCC 12 warns wrongly (-Wrestrict) on
      // " " + std::to_string(...) here.
      s += ' ';
      s += std::to_string(idx);
      s += ':';
      s += std::to_string(static_cast<int>(rng() % 200) - 100);
      s += ".25";
    }
    if (shape.long_every && i % shape.long_every == 0) s += std::string(1500, ' ');
    if (chance(0.2)) s += " # trailing comment";
    if (i + 1 < shape.rows || shape.final_newline) s += eol;
  }
  return s;
}

std::vector<CsvShape> shapes() {
  std::vector<CsvShape> out;
  for (int k = 0; k < 16; ++k) {
    CsvShape s;
    s.crlf = k & 1;
    s.final_newline = (k & 2) != 0;
    s.bom = (k & 4) != 0;
    s.long_every = (k & 8) ? 5 : 0;
    s.rows = 3 + 7 * k;
    s.junk = (k % 3) * 0.3;
    out.push_back(s);
  }
  return out;
}

TEST(LoadPartitioned, SyntheticCsvLayouts) {
  TempDir tmp;
  int i = 0;
  for (const CsvShape& shape : shapes()) {
    const std::string name = "s" + std::to_string(i) + ".csv";
    const std::string path = tmp.write(name, make_csv(shape, 100 + i));
    const std::string what = name + " crlf=" + std::to_string(shape.crlf) +
                             " final_nl=" + std::to_string(shape.final_newline) +
                             " bom=" + std::to_string(shape.bom);
    check_file(path, csv_opts(), RangePartitioner(), what);
    check_file(path, csv_opts(), HashPartitioner("key"), what);
    check_file(path, csv_opts(), ShufflePartitioner(9), what);
    ++i;
  }
}

TEST(LoadPartitioned, SyntheticLibsvmLayouts) {
  TempDir tmp;
  int i = 0;
  for (const CsvShape& shape : shapes()) {
    const std::string name = "s" + std::to_string(i) + ".libsvm";
    const std::string path = tmp.write(name, make_libsvm(shape, 200 + i));
    check_file(path, libsvm_opts(), RangePartitioner(), name);
    check_file(path, libsvm_opts(), HashPartitioner(), name);
    ++i;
  }
}

// Every byte offset of a small file becomes a range boundary for some N.
TEST(LoadPartitioned, EveryBoundaryOfASmallFile) {
  TempDir tmp;
  const std::string csv = tmp.write("b.csv", "#c\na,y\n\n1,2\r\n#\n3,4\n  \n5,6\n7,8");
  const std::string svm = tmp.write("b.libsvm", "# c\n1 1:2\n\n0 2:3 # x\r\n#\n1\n \n0 1:1 3:4");
  for (int n : {9, 13, 17, 23, 29, 37, 41}) {
    for (const auto& [path, opts] : {std::pair{csv, csv_opts()}, std::pair{svm, libsvm_opts()}}) {
      const Dataset whole = read_whole(path, opts, RangePartitioner());
      const auto want = expected_parts(whole, RangePartitioner(), n);
      const auto got = load_on(n, path, opts, RangePartitioner());
      for (int r = 0; r < n; ++r) {
        expect_same(got[r], want[r],
                    path + " N=" + std::to_string(n) + " rank " + std::to_string(r));
      }
    }
  }
}

TEST(LoadPartitioned, FilesSmallerThanTheRankCount) {
  TempDir tmp;
  check_file(tmp.write("one.csv", "a\n1"), csv_opts(), RangePartitioner(), "one.csv");
  check_file(tmp.write("two.csv", "a,y\n1,2\n"), csv_opts(), HashPartitioner(), "two.csv");
  check_file(tmp.write("one.libsvm", "1"), libsvm_opts(), RangePartitioner(), "one.libsvm");
  check_file(tmp.write("nl.libsvm", "\n\n1 1:1\n"), libsvm_opts(), ShufflePartitioner(3),
             "nl.libsvm");
}

TEST(LoadPartitioned, LinesLongerThanARange) {
  TempDir tmp;
  // A header and a comment each longer than several ranges, then short rows.
  std::string header;
  for (int c = 0; c < 300; ++c) header += "feature_with_a_long_name_" + std::to_string(c) + ",";
  header += "y\n";
  std::string row;
  for (int c = 0; c < 300; ++c) row += std::to_string(c % 10) + ",";
  std::string text = "#" + std::string(20000, '-') + "\n" + header;
  for (int i = 0; i < 5; ++i) text += row + std::to_string(i % 2) + "\n";
  check_file(tmp.write("wide.csv", text), csv_opts(), RangePartitioner(), "wide.csv");
  check_file(tmp.write("wide_tail.csv", text + "#" + std::string(50000, '=')), csv_opts(),
             HashPartitioner(), "wide_tail.csv");
}

TEST(LoadPartitioned, CsvOptionsCarryOver) {
  TempDir tmp;
  const std::string path =
      tmp.write("o.csv",
                "\xEF\xBB\xBF# note\nid;name;\"a\";b;label\n1;x;0.5;1e3;-1\n2;y;2;3;1\n"
                "\n3;z;4;-0;-1\n4;w;inf;5;1\n");
  CsvOptions csv;
  csv.delimiter = ';';
  csv.label = "label";
  csv.label_kind = LabelKind::kBinary;
  csv.select_features = {"b", "a"};
  csv.key_column = "name";
  csv.allow_nonfinite = true;
  check_file(path, csv_opts(csv), RangePartitioner(), "o.csv");
  check_file(path, csv_opts(csv), HashPartitioner("name"), "o.csv");
  // No header: the first content line is data and fixes the column count.
  CsvOptions plain;
  plain.has_header = false;
  plain.label = "0";
  const std::string headless = tmp.write("h.csv", "# c\n\n1,2,3\n4,5,6\r\n7,8,9");
  check_file(headless, csv_opts(plain), RangePartitioner(), "h.csv");
  check_file(headless, csv_opts(plain), ShufflePartitioner(1), "h.csv");
}

TEST(LoadPartitioned, EmptyAndHeaderOnly) {
  TempDir tmp;
  const std::string empty = tmp.write("empty.csv", "");
  const std::string comments = tmp.write("comments.csv", "# a\n\n# b\n");
  const std::string header = tmp.write("header.csv", "# a\nx,y\n\n# b\n");
  const std::string header_no_nl = tmp.write("header2.csv", "x,y");
  const std::string svm = tmp.write("empty.libsvm", "# nothing\n\n");
  for (int n = 1; n <= 5; ++n) {
    const auto fails_like_whole = [&](const std::string& path, const LoadOptions& opts) {
      std::string want;
      try {
        read_whole(path, opts, RangePartitioner());
      } catch (const InputError& e) {
        want = e.what();
      }
      ASSERT_FALSE(want.empty()) << path;
      expect_error<InputError>([&] { load_on(n, path, opts, RangePartitioner()); }, {want});
    };
    fails_like_whole(empty, csv_opts());
    fails_like_whole(comments, csv_opts());
    fails_like_whole(header, csv_opts());
    fails_like_whole(header_no_nl, csv_opts());
    fails_like_whole(svm, libsvm_opts());
  }
  CsvOptions csv;
  csv.allow_empty = true;
  LibsvmOptions libsvm;
  libsvm.allow_empty = true;
  libsvm.num_features = 4;
  for (const std::string& path : {empty, comments, header, header_no_nl}) {
    check_file(path, csv_opts(csv), RangePartitioner(), path, 5);
  }
  check_file(svm, libsvm_opts(libsvm), RangePartitioner(), svm, 5);
  const auto got = load_on(3, header, csv_opts(csv), RangePartitioner());
  EXPECT_EQ(got[2].feature_names(), (std::vector<std::string>{"x"}));
  EXPECT_EQ(got[2].label_name(), "y");
  EXPECT_EQ(got[2].cols(), 1u);
}

// --- Errors -----------------------------------------------------------------

// The message a whole-file read gives, which the parallel load must match.
std::string whole_file_error(const std::string& path, const LoadOptions& opts) {
  try {
    read_whole(path, opts, RangePartitioner());
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " reads without error";
  return "";
}

TEST(LoadPartitioned, BadLinesReportTheirGlobalLineNumber) {
  TempDir tmp;
  CsvShape shape;
  shape.rows = 60;
  shape.junk = 0.4;
  const std::string good = make_csv(shape, 7);
  // Lines of the file, to put the bad field on a chosen data line.
  std::vector<std::size_t> row_starts;  // offsets of data lines (after the header)
  {
    std::size_t pos = 0;
    bool header_seen = false;
    while (pos < good.size()) {
      const std::size_t nl = good.find('\n', pos);
      const std::string line = good.substr(pos, nl - pos);
      const bool content = line.find_first_not_of(" \t\r") != std::string::npos &&
                           line[line.find_first_not_of(" \t")] != '#';
      if (content && header_seen) row_starts.push_back(pos);
      if (content) header_seen = true;
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
  }
  ASSERT_EQ(row_starts.size(), 60u);
  for (std::size_t k : {std::size_t{0}, std::size_t{1}, std::size_t{17}, std::size_t{30},
                        std::size_t{58}, std::size_t{59}}) {
    std::string bad = good;
    bad.insert(row_starts[k] + 3, "oops");  // inside the second field: "3,1oops2.5,..."
    const std::string path = tmp.write("bad" + std::to_string(k) + ".csv", bad);
    const std::string want = whole_file_error(path, csv_opts());
    ASSERT_NE(want.find("'"), std::string::npos);
    for (int n = 1; n <= kMaxRanks; ++n) {
      SCOPED_TRACE("row " + std::to_string(k) + " N=" + std::to_string(n));
      expect_error<InputError>([&] { load_on(n, path, csv_opts(), RangePartitioner()); }, {want});
    }
  }
  // Two bad lines far apart: the first one is reported, whoever reads it.
  std::string two = good;
  two.insert(row_starts[50] + 3, "late");
  two.insert(row_starts[5] + 3, "early");
  const std::string path = tmp.write("two.csv", two);
  const std::string want = whole_file_error(path, csv_opts());
  ASSERT_NE(want.find("early"), std::string::npos);
  for (int n = 1; n <= kMaxRanks; ++n) {
    expect_error<InputError>([&] { load_on(n, path, csv_opts(), RangePartitioner()); }, {want});
  }
}

TEST(LoadPartitioned, OtherErrorsMatchTheWholeFileReader) {
  TempDir tmp;
  const std::vector<std::pair<std::string, LoadOptions>> cases = {
      {tmp.write("fields.csv", "a,y\n1,2\n3,4\n\n5,6,7\n8,9\n"), csv_opts()},
      {tmp.write("dup.csv", "# x\na,a,y\n1,2,3\n"), csv_opts()},
      {tmp.write("label.csv", "a,b\n1,2\n"), csv_with([](CsvOptions& o) { o.label = "target"; })},
      {tmp.write("binary.csv", "a,y\n1,0\n1,1\n1,2\n"),
       csv_with([](CsvOptions& o) { o.label_kind = LabelKind::kBinary; })},
      {tmp.write("nan.csv", "a,y\n1,0\r\nnan,1\r\n"), csv_opts()},
      {tmp.write("last.csv", "a,y\n1,0\n2,1\n3,"), csv_opts()},
      {tmp.write("order.libsvm", "1 1:1\n0 2:1 1:3\n"), libsvm_opts()},
      {tmp.write("width.libsvm", "1 1:1\n\n# c\n0 5:1\n"), num_features(4)},
      {tmp.write("label.libsvm", "1 1:1\n0 2:1\nx 1:3"), libsvm_opts()},
  };
  for (const auto& [path, opts] : cases) {
    const std::string want = whole_file_error(path, opts);
    for (int n = 1; n <= kMaxRanks; ++n) {
      SCOPED_TRACE(path + " N=" + std::to_string(n));
      expect_error<InputError>([&] { load_on(n, path, opts, HashPartitioner()); }, {want});
    }
  }
  expect_error<InputError>(
      [&] { load_on(3, tmp.join("missing.csv"), csv_opts(), RangePartitioner()); },
      {tmp.join("missing.csv") + ": cannot open file"});
  expect_error<InputError>([&] { load_on(2, tmp.path().string(), csv_opts(), RangePartitioner()); },
                           {"is a directory"});
}

TEST(LoadPartitioned, OptionErrors) {
  TempDir tmp;
  const std::string path = tmp.write("k.csv", "user,x,y\n1,2,3\n");
  expect_error<ConfigError>(
      [&] {
        load_on(2, test::example_path("heart_scale.libsvm"), libsvm_opts(),
                HashPartitioner("user"));
      },
      {"hash:user", "CSV"});
  expect_error<ConfigError>(
      [&] {
        load_on(2, path, csv_with([](CsvOptions& o) { o.key_column = "x"; }),
                HashPartitioner("user"));
      },
      {"hash:user", "'x'"});
  expect_error<ConfigError>(
      [&] {
        load_on(2, path, csv_opts(), RangePartitioner({1, 2, 3}));
      },
      {"3 weights for 2"});
  expect_error<ConfigError>(
      [&] {
        load_on(2, path, csv_with([](CsvOptions& o) { o.delimiter = '#'; }), RangePartitioner());
      },
      {"delimiter"});
}

// --- Bytes read per rank ------------------------------------------------------

TEST(LoadPartitioned, EachRankReadsItsShareOfTheFile) {
  TempDir tmp;
  std::mt19937_64 rng(5);
  const std::string header = "id,a,b,c,d,label\n";
  std::string text = header;
  std::size_t max_line = header.size();
  while (text.size() < 3u << 20) {
    std::string line = std::to_string(text.size()) + ",";
    for (int c = 0; c < 4; ++c) {
      line += std::to_string(static_cast<double>(rng() % 100000) / 7.0) + ",";
      if (rng() % 50 == 0) line += std::string(rng() % 400, ' ');  // some longer lines
    }
    line += std::to_string(rng() % 2) + "\n";
    max_line = std::max(max_line, line.size());
    text += line;
  }
  const std::string path = tmp.write("big.csv", text);
  const std::uint64_t size = text.size();
  const Dataset whole = read_csv(path);
  for (int n : {1, 2, 4, 8}) {
    std::vector<LoadStats> stats;
    const auto got = load_on(n, path, csv_opts(), RangePartitioner(), &stats);
    const auto want = expected_parts(whole, RangePartitioner(), n);
    std::uint64_t total = 0;
    for (int r = 0; r < n; ++r) {
      expect_same(got[r], want[r], "big.csv N=" + std::to_string(n));
      const std::uint64_t bound = (size + n - 1) / n + 2 * max_line + header.size();
      EXPECT_LE(stats[r].bytes_read, bound) << "N=" << n << " rank " << r;
      total += stats[r].bytes_read;
      // Range partitioning keeps most rows where they were parsed (byte
      // ranges and row ranges differ only as much as line lengths vary).
      EXPECT_LE(stats[r].rows_sent * 20, stats[r].rows_parsed) << "N=" << n << " rank " << r;
    }
    // Ranks read disjoint ranges, plus line tails and the header.
    EXPECT_LE(total, size + n * (max_line + header.size() + 1)) << "N=" << n;
    RecordProperty("bytes_read_N" + std::to_string(n) + "_rank0",
                   std::to_string(stats[0].bytes_read));
  }
}

// --- Shards -------------------------------------------------------------------

TEST(LoadShard, MatchesLoadPartitioned) {
  TempDir tmp;
  struct Case {
    std::string file;
    FileFormat format;
    std::string key;
  };
  const std::vector<Case> cases = {{"diabetes.csv", FileFormat::kCsv, "sex"},
                                   {"breast_cancer.csv", FileFormat::kCsv, "mean_radius"},
                                   {"iris.csv", FileFormat::kCsv, "species"},
                                   {"heart_scale.libsvm", FileFormat::kLibsvm, ""}};
  int dir = 0;
  for (const Case& c : cases) {
    const std::string input = test::example_path(c.file);
    for (const auto& [name, make] : partitioners(c.key)) {
      for (int n : {1, 3, 8}) {
        const auto partitioner = make(n);
        LoadOptions opts;
        opts.format = c.format;
        if (name.rfind("hash:", 0) == 0) opts.csv.key_column = c.key;
        const std::string out = tmp.join("d" + std::to_string(dir++));
        write_shards(input, c.format, opts.csv, *partitioner, static_cast<std::uint32_t>(n), 42,
                     out);
        EXPECT_TRUE(is_shard_directory(out));
        const auto from_shards = load_shards_on(n, out, opts);
        const auto from_file = load_on(n, input, opts, *partitioner);
        for (int r = 0; r < n; ++r) {
          expect_same(
              from_shards[r], from_file[r],
              c.file + " " + name + " N=" + std::to_string(n) + " rank " + std::to_string(r));
        }
      }
    }
  }
  EXPECT_FALSE(is_shard_directory(test::example_path("iris.csv")));
  EXPECT_FALSE(is_shard_directory(tmp.path().string()));
  EXPECT_FALSE(is_shard_directory(tmp.join("absent")));
}

TEST(LoadShard, EmptyShardsAndSyntheticLayouts) {
  TempDir tmp;
  CsvShape shape;
  shape.crlf = true;
  shape.final_newline = false;
  shape.rows = 5;
  shape.junk = 0.5;
  const std::string input = tmp.write("few.csv", make_csv(shape, 3));
  CsvOptions csv;
  csv.allow_empty = true;
  const std::string out = tmp.join("few");
  write_shards(input, FileFormat::kCsv, csv, ShufflePartitioner(5), 8, 5, out);
  const auto from_shards = load_shards_on(8, out, csv_opts());
  const auto from_file = load_on(8, input, csv_opts(), ShufflePartitioner(5));
  std::size_t empty = 0;
  for (int r = 0; r < 8; ++r) {
    expect_same(from_shards[r], from_file[r], "few.csv rank " + std::to_string(r));
    empty += from_shards[r].rows() == 0;
  }
  EXPECT_EQ(empty, 3u);
}

TEST(LoadShard, DetectsWrongWorkerCountFormatAndCorruptIds) {
  TempDir tmp;
  const std::string out = tmp.join("s");
  write_shards(test::example_path("iris.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(),
               3, 0, out);
  expect_error<ConfigError>([&] { load_shards_on(2, out, csv_opts()); },
                            {out + ": has 3 shards but the job has 2 workers"});
  expect_error<ConfigError>([&] { load_shards_on(3, out, libsvm_opts()); }, {"csv"});
  EXPECT_EQ(load_shards_on(3, out, csv_opts())[1].row_ids().front(), 50u);

  // A flipped byte in an id: same size, other checksum.
  const std::string ids = out + "/part-00001.ids";
  std::string bytes = read_all(ids);
  ASSERT_EQ(bytes.size(), 50u * 8);
  bytes[8] ^= 1;
  { std::ofstream(ids, std::ios::binary) << bytes; }
  expect_error<InputError>([&] { load_shards_on(3, out, csv_opts()); }, {ids + ": ", "checksum"});
  expect_error<InputError>([&] { verify_shard(out, read_manifest(out), 1); },
                           {ids + ": ", "checksum"});
  { std::ofstream(ids, std::ios::binary) << bytes.substr(8); }
  expect_error<InputError>([&] { load_shards_on(3, out, csv_opts()); },
                           {ids + ": ", "size 392 bytes, manifest says 400"});
  fs::remove(ids);
  expect_error<InputError>([&] { load_shards_on(3, out, csv_opts()); },
                           {ids + ": cannot open file"});
}

TEST(LoadShard, IdsThatDisagreeWithTheShard) {
  TempDir tmp;
  const std::string out = tmp.join("s");
  write_shards(test::example_path("iris.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(),
               2, 0, out);
  // Rewrite shard 1's ids out of order and fix the manifest's checksum, as a
  // buggy writer would: the ids themselves are checked.
  const std::string ids = out + "/part-00001.ids";
  std::string bytes = read_all(ids);
  std::swap_ranges(bytes.begin(), bytes.begin() + 8, bytes.begin() + 8);
  { std::ofstream(ids, std::ios::binary) << bytes; }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(bytes)));
  std::string manifest = read_all(out + "/manifest.json");
  const ShardManifest m = read_manifest(out);
  const std::size_t at = manifest.find(m.shards[1].ids_checksum);
  ASSERT_NE(at, std::string::npos);
  manifest.replace(at, m.shards[1].ids_checksum.size(), std::string("fnv1a64:") + hex);
  { std::ofstream(out + "/manifest.json", std::ios::binary) << manifest; }
  verify_shard(out, read_manifest(out), 1);
  expect_error<InputError>([&] { load_shards_on(2, out, csv_opts()); },
                           {ids + ": ", "out of order"});
}

// --- Binary files (IDX, .npy) and hashed CSV ------------------------------------

LoadOptions binary_opts(FileFormat format, const std::string& labels_path = "") {
  LoadOptions o;
  o.format = format;
  o.labels_path = labels_path;
  return o;
}

// 23 images of 4 x 3 pixels with distinct rows, labels 0..9, gzipped.
std::string write_idx_pair(const TempDir& tmp) {
  std::vector<double> px;
  std::vector<double> labels;
  for (int i = 0; i < 23; ++i) {
    for (int k = 0; k < 12; ++k) px.push_back((i * 37 + k * 11) % 256);
    labels.push_back(i % 10);
  }
  tmp.write("s-labels-idx1-ubyte.gz", test::gzip(test::idx_file<std::uint8_t>(0x08, {23}, labels)));
  return tmp.write("s-images-idx3-ubyte.gz",
                   test::gzip(test::idx_file<std::uint8_t>(0x08, {23, 4, 3}, px)));
}

TEST(LoadPartitioned, IdxMatchesPartitioningTheWholeFile) {
  TempDir tmp;
  const std::string images = write_idx_pair(tmp);
  LoadOptions opts = binary_opts(FileFormat::kIdx);  // labels path derived
  opts.idx.label_kind = LabelKind::kClass;
  ASSERT_EQ(read_whole(images, opts, RangePartitioner()).rows(), 23u);
  check_all_partitioners(images, opts, "", "idx", 5);
  // Stats: every rank reads both files whole and sends nothing.
  std::vector<LoadStats> stats;
  const auto got = load_on(3, images, opts, RangePartitioner(), &stats);
  const std::uint64_t both =
      fs::file_size(images) + fs::file_size(tmp.join("s-labels-idx1-ubyte.gz"));
  std::uint64_t owned = 0;
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(stats[r].file_bytes, fs::file_size(images));
    EXPECT_EQ(stats[r].bytes_read, both);
    EXPECT_EQ(stats[r].rows_parsed, 23u);
    EXPECT_EQ(stats[r].rows_owned, got[r].rows());
    EXPECT_EQ(stats[r].rows_sent + stats[r].rows_received + stats[r].exchange_bytes, 0u);
    owned += stats[r].rows_owned;
  }
  EXPECT_EQ(owned, 23u);
}

TEST(LoadPartitioned, NpyMatchesPartitioningTheWholeFile) {
  TempDir tmp;
  // 17 x 4, Fortran order, last column the label; and a C-order copy of the
  // features with the labels in a file of their own.
  const int rows = 17;
  std::vector<double> fortran;
  std::vector<double> c_order;
  std::vector<double> labels;
  for (int c = 0; c < 4; ++c) {
    for (int r = 0; r < rows; ++r) fortran.push_back(c == 3 ? r % 2 : r * 0.5 - c);
  }
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < 3; ++c) c_order.push_back(r * 0.5 - c);
    labels.push_back(r % 2);
  }
  const std::string last =
      tmp.write("last.npy", test::npy_file<double>("<f8", "(17, 4)", fortran, /*fortran=*/true));
  const std::string x = tmp.write("x.npy", test::npy_file<float>("<f4", "(17, 3)", c_order));
  const std::string y = tmp.write("y.npy", test::npy_file<std::uint8_t>("|u1", "(17,)", labels));
  check_all_partitioners(last, binary_opts(FileFormat::kNpy), "", "npy last column", 5);
  check_all_partitioners(x, binary_opts(FileFormat::kNpy, y), "", "npy labels file", 5);
  // Both spellings hold the same data.
  const auto a = load_on(2, last, binary_opts(FileFormat::kNpy), ShufflePartitioner(3));
  const auto b = load_on(2, x, binary_opts(FileFormat::kNpy, y), ShufflePartitioner(3));
  for (int r = 0; r < 2; ++r) expect_same(a[r], b[r], "npy rank " + std::to_string(r));
}

TEST(LoadPartitioned, BinaryErrorsOnEveryRank) {
  TempDir tmp;
  const std::string images = write_idx_pair(tmp);
  const LoadOptions opts = binary_opts(FileFormat::kIdx);
  expect_error<ConfigError>([&] { load_on(2, images, opts, HashPartitioner("user")); },
                            {"hash:user", "CSV", "idx"});
  const std::string bytes = read_all(images);
  const std::string cut = tmp.write("cut-images-idx3-ubyte.gz", bytes.substr(0, bytes.size() / 2));
  expect_error<InputError>([&] { load_on(3, cut, opts, RangePartitioner()); },
                           {cut + ": corrupt gzip data"});
  // The labels file of "cut" is missing too, but the images are read first.
  const std::string lone =
      tmp.write("lone-images-idx3-ubyte", test::idx_file<std::uint8_t>(0x08, {2, 1, 1}, {1, 2}));
  expect_error<InputError>([&] { load_on(3, lone, opts, RangePartitioner()); },
                           {tmp.join("lone-labels-idx1-ubyte") + ": cannot open file"});
  LoadOptions cls = opts;
  cls.labels_path = tmp.write("l", test::idx_file<std::int8_t>(0x09, {2}, {0, -4}));
  cls.idx.label_kind = LabelKind::kClass;
  expect_error<InputError>([&] { load_on(2, lone, cls, ShufflePartitioner(1)); },
                           {cls.labels_path + ": row 1: label -4 is not a class id"});
  expect_error<InputError>(
      [&] { load_on(2, lone, binary_opts(FileFormat::kNpy, cls.labels_path), RangePartitioner()); },
      {lone + ": not a .npy file"});
}

TEST(LoadPartitioned, RealFashionMnistTestSplit) {
  std::optional<DatasetFiles> files;
  try {
    files = resolve_dataset_shortcut("fashion-mnist:test");
  } catch (const ConfigError& e) {
    GTEST_SKIP() << "Fashion-MNIST is not installed: " << e.what();
  }
  const LoadOptions opts = binary_opts(FileFormat::kIdx, files->labels);
  const ShufflePartitioner shuffle(7);
  const Dataset whole = read_whole(files->features, opts, shuffle);
  const auto want = expected_parts(whole, shuffle, 3);
  const auto got = load_on(3, files->features, opts, shuffle);
  for (int r = 0; r < 3; ++r)
    expect_same(got[r], want[r], "fashion-mnist rank " + std::to_string(r));
}

// CSV rows with two categorical columns (one sometimes empty) between
// numeric ones.
std::string make_categorical_csv(int rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const char* colours[] = {"red", "green", "blue", "teal", "plum"};
  std::string s = "user,x,colour,city,z,y\n";
  // Appended piece by piece: GCC 12 warns wrongly (-Wrestrict) on chains of
  // std::string + here.
  for (int i = 0; i < rows; ++i) {
    s += std::to_string(rng() % 9);
    s += ',';
    s += std::to_string(static_cast<int>(rng() % 5) - 2);
    s += ',';
    s += colours[rng() % 5];
    s += ',';
    if (rng() % 4 != 0) {
      s += "city";
      s += std::to_string(rng() % 40);
    }
    s += ',';
    s += std::to_string(rng() % 3);
    s += ".5,";
    s += std::to_string(rng() % 2);
    s += '\n';
  }
  return s;
}

TEST(LoadPartitioned, HashedCsvColumns) {
  TempDir tmp;
  const std::string path = tmp.write("cat.csv", make_categorical_csv(61, 11));
  CsvOptions csv;
  csv.hashed_columns = {"colour", "city"};
  csv.hash_dimension = 32;
  const LoadOptions opts = csv_opts(csv);
  const Dataset whole = read_csv(path, csv);
  ASSERT_TRUE(whole.is_sparse());
  ASSERT_EQ(whole.cols(), 3u + 32u);
  for (int n : {1, 3}) {
    const auto got = load_on(n, path, opts, RangePartitioner());
    const auto want = expected_parts(whole, RangePartitioner(), n);
    for (int r = 0; r < n; ++r) {
      expect_same(got[r], want[r], "hashed N=" + std::to_string(n) + " rank " + std::to_string(r));
    }
  }
  check_all_partitioners(path, opts, "user", "hashed csv", 5);
}

}  // namespace
}  // namespace dtrain
