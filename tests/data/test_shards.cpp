#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dtrain/data/shards.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::read_all;
using test::TempDir;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Data lines of a CSV file with a header and no comments.
std::vector<std::string> csv_rows(const std::string& path) {
  auto l = lines_of(read_all(path));
  l.erase(l.begin());
  return l;
}

bool is_subsequence(const std::vector<std::string>& sub, const std::vector<std::string>& seq) {
  std::size_t j = 0;
  for (const std::string& s : seq) {
    if (j < sub.size() && sub[j] == s) ++j;
  }
  return j == sub.size();
}

std::string checksum_of_file(const fs::path& p) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(read_all(p))));
  return std::string("fnv1a64:") + hex;
}

// Names in `dir` other than the ones given (leftover temp dirs show up here).
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(WriteShards, DiabetesRangeRoundTrip) {
  TempDir tmp;
  const std::string input = test::example_path("diabetes.csv");
  const std::string out = tmp.join("shards");
  CsvOptions opts;
  opts.label = "target";
  const ShardManifest m =
      write_shards(input, FileFormat::kCsv, opts, RangePartitioner(), 4, 0, out);
  EXPECT_EQ(m.source, input);
  EXPECT_EQ(m.format, "csv");
  EXPECT_EQ(m.partitioner, "range");
  EXPECT_EQ(m.parts, 4u);
  EXPECT_EQ(m.total_rows, 442u);
  ASSERT_EQ(m.shards.size(), 4u);
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"shards"}));  // no temp left

  const std::string header = lines_of(read_all(input)).front();
  std::vector<std::string> all_rows;
  const std::vector<std::uint64_t> expected_rows{111, 111, 110, 110};
  for (std::uint32_t p = 0; p < 4; ++p) {
    const ShardInfo& s = m.shards[p];
    const fs::path file = fs::path(out) / s.file;
    EXPECT_EQ(s.file, "part-0000" + std::to_string(p) + ".csv");
    EXPECT_EQ(s.rows, expected_rows[p]);
    EXPECT_EQ(s.bytes, fs::file_size(file));
    EXPECT_EQ(s.checksum, checksum_of_file(file));
    EXPECT_EQ(s.ids_file, "part-0000" + std::to_string(p) + ".ids");
    EXPECT_EQ(s.ids_checksum, checksum_of_file(fs::path(out) / s.ids_file));
    EXPECT_EQ(lines_of(read_all(file)).front(), header);
    const Dataset d = read_csv(file.string(), opts);
    EXPECT_EQ(d.rows(), s.rows);
    const auto rows = csv_rows(file.string());
    all_rows.insert(all_rows.end(), rows.begin(), rows.end());
    verify_shard(out, m, p);
  }
  EXPECT_EQ(all_rows, csv_rows(input));  // original text, range order

  const ShardManifest back = read_manifest(out);
  EXPECT_EQ(back.source, m.source);
  EXPECT_EQ(back.partitioner, "range");
  EXPECT_EQ(back.total_rows, 442u);
  ASSERT_EQ(back.shards.size(), 4u);
  for (std::size_t p = 0; p < 4; ++p) {
    EXPECT_EQ(back.shards[p].file, m.shards[p].file);
    EXPECT_EQ(back.shards[p].rows, m.shards[p].rows);
    EXPECT_EQ(back.shards[p].bytes, m.shards[p].bytes);
    EXPECT_EQ(back.shards[p].checksum, m.shards[p].checksum);
    EXPECT_EQ(back.shards[p].ids_file, m.shards[p].ids_file);
    EXPECT_EQ(back.shards[p].ids_checksum, m.shards[p].ids_checksum);
  }

  const BalanceStats b = balance_of(m);
  EXPECT_EQ(b.min, 110u);
  EXPECT_EQ(b.max, 111u);
  EXPECT_DOUBLE_EQ(b.mean, 110.5);
  EXPECT_DOUBLE_EQ(b.imbalance, 111.0 / 110.5);

  // A refused second run leaves the first one untouched.
  expect_error<ConfigError>(
      [&] { write_shards(input, FileFormat::kCsv, opts, RangePartitioner(), 2, 0, out); },
      {"'" + out + "'", "not empty"});
  EXPECT_EQ(read_manifest(out).parts, 4u);
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"shards"}));
}

TEST(WriteShards, ShuffleKeepsEveryLineOnceInRowOrder) {
  TempDir tmp;
  const std::string input = test::example_path("breast_cancer.csv");
  const std::string out = tmp.join("bc") + "/";  // trailing slash is fine
  CsvOptions opts;
  opts.label_kind = LabelKind::kBinary;
  const ShardManifest m =
      write_shards(input, FileFormat::kCsv, opts, ShufflePartitioner(7), 5, 7, out);
  EXPECT_EQ(m.seed, 7u);
  EXPECT_EQ(m.partitioner, "shuffle");
  const auto original = csv_rows(input);
  std::vector<std::string> all;
  for (const ShardInfo& s : m.shards) {
    const auto rows = csv_rows(tmp.join("bc/" + s.file));
    EXPECT_TRUE(is_subsequence(rows, original)) << s.file;  // row-id order
    EXPECT_TRUE(s.rows == 113 || s.rows == 114);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  EXPECT_EQ(all.size(), original.size());
  auto sorted_all = all;
  auto sorted_original = original;
  std::sort(sorted_all.begin(), sorted_all.end());
  std::sort(sorted_original.begin(), sorted_original.end());
  EXPECT_EQ(sorted_all, sorted_original);
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"bc"}));
}

TEST(WriteShards, LibsvmHashIntoEmptyExistingDir) {
  TempDir tmp;
  const std::string input = test::example_path("heart_scale.libsvm");
  const std::string out = tmp.join("svm");
  fs::create_directory(out);  // an empty directory is accepted
  CsvOptions opts;
  opts.label_kind = LabelKind::kBinary;
  const ShardManifest m =
      write_shards(input, FileFormat::kLibsvm, opts, HashPartitioner(), 3, 0, out);
  EXPECT_EQ(m.format, "libsvm");
  EXPECT_EQ(m.total_rows, 270u);
  const auto original = lines_of(read_all(input));
  const Dataset full = read_libsvm(input);
  const auto owner = HashPartitioner().assign(full, 270, 3);
  std::uint64_t rows = 0;
  for (std::uint32_t p = 0; p < 3; ++p) {
    const std::string file = out + "/" + m.shards[p].file;
    EXPECT_EQ(m.shards[p].file, "part-0000" + std::to_string(p) + ".libsvm");
    const auto got = lines_of(read_all(file));
    std::vector<std::string> want;
    for (std::size_t i : rows_of_part(owner, p)) want.push_back(original[i]);
    EXPECT_EQ(got, want);  // verbatim lines, trailing blanks included
    rows += read_libsvm(file).rows();
    verify_shard(out, m, p);
  }
  EXPECT_EQ(rows, 270u);
}

TEST(WriteShards, HashByKeyColumnAndCrlf) {
  TempDir tmp;
  const std::string input = tmp.write(
      "k.csv", "# exported\r\nuser,x,y\r\n7,1,0\r\n8,2,1\r\n\r\n7,3,0\r\n9,4,1\r\n8,5,0\r\n");
  const std::string out = tmp.join("k");
  const ShardManifest m =
      write_shards(input, FileFormat::kCsv, CsvOptions{}, HashPartitioner("user"), 3, 0, out);
  EXPECT_EQ(m.partitioner, "hash:user");
  EXPECT_EQ(m.total_rows, 5u);
  for (const ShardInfo& s : m.shards) {
    const std::string text = read_all(out + "/" + s.file);
    EXPECT_EQ(text.find('\r'), std::string::npos);  // lines end in '\n'
    const auto lines = lines_of(text);
    EXPECT_EQ(lines.front(), "user,x,y");
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const std::string key = lines[i].substr(0, lines[i].find(','));
      EXPECT_EQ(&s - m.shards.data(), reduce_to_range(hash_bytes(key), 3)) << lines[i];
    }
  }
  // LibSVM has no columns to hash.
  expect_error<ConfigError>(
      [&] {
        write_shards(test::example_path("heart_scale.libsvm"), FileFormat::kLibsvm, CsvOptions{},
                     HashPartitioner("user"), 3, 0, tmp.join("none"));
      },
      {"hash:user", "CSV"});
  EXPECT_FALSE(fs::exists(tmp.join("none")));
}

TEST(WriteShards, FewerRowsThanPartsGivesEmptyShards) {
  TempDir tmp;
  const std::string input = tmp.write("s.csv", "a,y\n1,2\n3,4\n");
  const std::string out = tmp.join("s");
  const ShardManifest m =
      write_shards(input, FileFormat::kCsv, CsvOptions{}, RangePartitioner(), 5, 0, out);
  EXPECT_EQ(m.shards[0].rows, 1u);
  EXPECT_EQ(m.shards[4].rows, 0u);
  EXPECT_EQ(read_all(out + "/" + m.shards[4].file), "a,y\n");
  expect_error<InputError>([&] { read_csv(out + "/" + m.shards[4].file); }, {"no data rows"});
  CsvOptions empty_ok;
  empty_ok.allow_empty = true;
  EXPECT_EQ(read_csv(out + "/" + m.shards[4].file, empty_ok).rows(), 0u);
  const BalanceStats b = balance_of(m);
  EXPECT_EQ(b.min, 0u);
  EXPECT_EQ(b.max, 1u);
  EXPECT_DOUBLE_EQ(b.imbalance, 2.5);
}

TEST(WriteShards, MalformedInputLeavesNothingBehind) {
  TempDir tmp;
  const std::string input = tmp.write("bad.csv", "a,y\n1,2\n1,oops\n");
  const std::string out = tmp.join("nested/out");
  expect_error<InputError>(
      [&] { write_shards(input, FileFormat::kCsv, CsvOptions{}, RangePartitioner(), 2, 0, out); },
      {input + ":3: ", "'oops'"});
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"bad.csv"}));
  // The label option is validated too.
  CsvOptions opts;
  opts.label = "target";
  expect_error<InputError>(
      [&] { write_shards(input, FileFormat::kCsv, opts, RangePartitioner(), 2, 0, out); },
      {"missing label column 'target'"});
  expect_error<ConfigError>(
      [&] {
        write_shards(tmp.write("ok.csv", "a,y\n1,2\n"), FileFormat::kCsv, CsvOptions{},
                     RangePartitioner({1, 2, 3}), 2, 0, out);
      },
      {"3 weights for 2 parts"});
  expect_error<InputError>(
      [&] {
        write_shards(tmp.join("missing.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(), 2,
                     0, out);
      },
      {"cannot open file"});
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"bad.csv", "ok.csv"}));
  // An existing non-empty output directory, or a file in the way.
  const std::string busy = tmp.join("busy");
  fs::create_directory(busy);
  tmp.write("busy/keep.txt", "x");
  expect_error<ConfigError>(
      [&] {
        write_shards(tmp.join("ok.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(), 2, 0,
                     busy);
      },
      {"not empty"});
  EXPECT_EQ(entries(busy), (std::vector<std::string>{"keep.txt"}));
  expect_error<ConfigError>(
      [&] {
        write_shards(tmp.join("ok.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(), 2, 0,
                     tmp.join("ok.csv"));
      },
      {"not a directory"});
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"bad.csv", "busy", "ok.csv"}));
}

TEST(VerifyShard, DetectsCorruption) {
  TempDir tmp;
  const std::string out = tmp.join("d");
  const ShardManifest m = write_shards(test::example_path("iris.csv"), FileFormat::kCsv,
                                       CsvOptions{}, RangePartitioner(), 2, 0, out);
  const std::string file = out + "/" + m.shards[1].file;
  std::string text = read_all(file);
  text[text.size() - 2] = text[text.size() - 2] == '1' ? '2' : '1';  // same size, new bytes
  { std::ofstream(file, std::ios::binary) << text; }
  verify_shard(out, m, 0);
  expect_error<InputError>([&] { verify_shard(out, m, 1); },
                           {file + ": ", "checksum", m.shards[1].checksum});
  { std::ofstream(file, std::ios::binary) << "short\n"; }
  expect_error<InputError>([&] { verify_shard(out, m, 1); }, {file + ": ", "size 6 bytes"});
  fs::remove(file);
  expect_error<InputError>([&] { verify_shard(out, m, 1); }, {file + ": cannot open file"});
  expect_error<ConfigError>([&] { verify_shard(out, m, 2); }, {"part 2"});
}

TEST(ReadManifest, ValidatesFields) {
  TempDir tmp;
  const std::string out = tmp.join("m");
  write_shards(test::example_path("iris.csv"), FileFormat::kCsv, CsvOptions{}, RangePartitioner(),
               2, 0, out);
  const std::string path = out + "/manifest.json";
  const std::string good = read_all(path);
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const std::size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
    std::ofstream(path, std::ios::binary) << t;
  };
  with("\"parts\": 2", "\"parts\": \"2\"");
  expect_error<InputError>([&] { read_manifest(out); }, {path + ": ", "field 'parts'"});
  with("\"parts\": 2", "\"parts\": 3");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards'", "2 entries for 3"});
  with("\"total_rows\": 150", "\"total_rows\": 151");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'total_rows'"});
  with("\"part-00001.csv\"", "\"../x.csv\"");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[1].file'"});
  with("\"rows\": 75,", "");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[0].rows'", "missing"});
  with("\"checksum\": \"fnv1a64:", "\"checksum\": \"crc32:");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[0].checksum'"});
  with("\"ids_file\": \"part-00001.ids\"", "\"ids_file\": \"/etc/x\"");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[1].ids_file'"});
  with("\"ids_file\": \"part-00000.ids\"", "\"ids_file\": \"part-00000.csv\"");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[0].ids_file'", "same"});
  with("\"ids_checksum\": \"fnv1a64:", "\"ids_checksum\": \"fnv1a64:zz");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'shards[0].ids_checksum'"});
  with("\"ids_checksum\": ", "\"ids_sum\": ");
  expect_error<InputError>([&] { read_manifest(out); },
                           {"field 'shards[0].ids_checksum'", "missing"});
  with("\"format_version\": 2", "\"format_version\": 1");
  expect_error<InputError>([&] { read_manifest(out); },
                           {"field 'format_version'", "unsupported version 1", "partition again"});
  with("\"format\": \"csv\"", "\"format\": \"parquet\"");
  expect_error<InputError>([&] { read_manifest(out); }, {"field 'format'"});
  std::ofstream(path, std::ios::binary) << "{ not json";
  expect_error<InputError>([&] { read_manifest(out); }, {path + ": ", "invalid JSON"});
  fs::remove(path);
  expect_error<InputError>([&] { read_manifest(out); }, {path + ": cannot open file"});
}

// Little-endian uint64s, as the .ids files hold them.
std::vector<std::uint64_t> ids_in(const fs::path& path) {
  const std::string bytes = read_all(path);
  EXPECT_EQ(bytes.size() % 8, 0u) << path;
  std::vector<std::uint64_t> ids(bytes.size() / 8);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      ids[i] |= std::uint64_t{static_cast<unsigned char>(bytes[8 * i + b])} << (8 * b);
    }
  }
  return ids;
}

TEST(WriteShards, IdsFilesHoldTheOriginalRowIds) {
  TempDir tmp;
  const std::string input = test::example_path("iris.csv");
  const std::string out = tmp.join("ids");
  const ShardManifest m =
      write_shards(input, FileFormat::kCsv, CsvOptions{}, ShufflePartitioner(3), 4, 3, out);
  const Dataset whole = read_csv(input);
  const auto owner = ShufflePartitioner(3).assign(whole, whole.rows(), 4);
  EXPECT_EQ(entries(out),
            (std::vector<std::string>{"manifest.json", "part-00000.csv", "part-00000.ids",
                                      "part-00001.csv", "part-00001.ids", "part-00002.csv",
                                      "part-00002.ids", "part-00003.csv", "part-00003.ids"}));
  for (std::uint32_t p = 0; p < 4; ++p) {
    std::vector<std::uint64_t> want;
    for (std::size_t i : rows_of_part(owner, p)) want.push_back(whole.row_ids()[i]);
    EXPECT_EQ(ids_in(fs::path(out) / m.shards[p].ids_file), want) << p;
    EXPECT_EQ(m.shards[p].ids_file, shard_ids_file_name(p));
  }
  EXPECT_EQ(shard_ids_file_name(12345), "part-12345.ids");
}

TEST(VerifyShard, ChecksTheIdsFile) {
  TempDir tmp;
  const std::string out = tmp.join("d");
  const ShardManifest m = write_shards(test::example_path("iris.csv"), FileFormat::kCsv,
                                       CsvOptions{}, RangePartitioner(), 2, 0, out);
  const std::string ids = out + "/" + m.shards[0].ids_file;
  std::string bytes = read_all(ids);
  bytes[0] = static_cast<char>(bytes[0] ^ 0x40);
  { std::ofstream(ids, std::ios::binary) << bytes; }
  verify_shard(out, m, 1);
  expect_error<InputError>([&] { verify_shard(out, m, 0); },
                           {ids + ": ", "checksum", m.shards[0].ids_checksum});
  { std::ofstream(ids, std::ios::binary) << bytes << "x"; }
  expect_error<InputError>([&] { verify_shard(out, m, 0); },
                           {ids + ": ", "size 601 bytes, manifest says 600"});
  fs::remove(ids);
  expect_error<InputError>([&] { verify_shard(out, m, 0); }, {ids + ": cannot open file"});
}

}  // namespace
}  // namespace dtrain
