// Feature hashing of categorical CSV columns. The expected indices come from
// the formula in readers.h, implemented here on its own (FNV-1a 64, the
// SplitMix64 finaliser, Lemire's reduction), anchored to published values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

using test::expect_error;
using test::TempDir;

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t splitmix_finaliser(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__extension__ typedef unsigned __int128 U128;

// The documented slot of value v of column c among `dim` hashed slots.
std::uint32_t slot(const std::string& column, const std::string& value, std::uint32_t dim) {
  const std::uint64_t h = splitmix_finaliser(fnv1a(column + '\x1f' + value));
  return static_cast<std::uint32_t>((static_cast<U128>(h) * dim) >> 64);
}

TEST(FeatureHashing, ReferenceHashMatchesPublishedValues) {
  // FNV-1a 64 test vectors (Fowler, Noll, Vo) and SplitMix64's first output
  // for seed 0, which is the finaliser of the golden gamma.
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(splitmix_finaliser(0x9e3779b97f4a7c15ull), 0xe220a8397b1dcdafull);
}

std::vector<std::uint32_t> indices(const Dataset& d, std::size_t r) {
  const RowView v = d.row(r);
  return {v.indices.begin(), v.indices.end()};
}
std::vector<float> values(const Dataset& d, std::size_t r) {
  const RowView v = d.row(r);
  return {v.values.begin(), v.values.end()};
}

// The sorted entries of one row from (index, value) pairs, equal indices added.
std::pair<std::vector<std::uint32_t>, std::vector<float>> entries(
    std::vector<std::pair<std::uint32_t, float>> e) {
  std::sort(e.begin(), e.end());
  std::pair<std::vector<std::uint32_t>, std::vector<float>> out;
  for (const auto& [i, v] : e) {
    if (!out.first.empty() && out.first.back() == i) {
      out.second.back() += v;
    } else {
      out.first.push_back(i);
      out.second.push_back(v);
    }
  }
  return out;
}

TEST(FeatureHashing, GoldenIndicesNamesAndZeros) {
  TempDir dir;
  const std::string path = dir.write("h.csv",
                                     "num, color ,city,z,y\n"
                                     "1.5,red,paris,0,1\n"
                                     "0, blue ,,2,0\n"
                                     "-2,red,Paris,0,1\n");
  CsvOptions opts;
  opts.hashed_columns = {"color", "city"};
  opts.hash_dimension = 1000;
  opts.label_kind = LabelKind::kBinary;
  const Dataset d = read_csv(path, opts);
  ASSERT_TRUE(d.is_sparse());
  ASSERT_EQ(d.rows(), 3u);
  EXPECT_EQ(d.cols(), 2u + 1000u);  // num, z, then the slots
  ASSERT_EQ(d.feature_names().size(), d.cols());
  EXPECT_EQ(d.feature_names()[0], "num");
  EXPECT_EQ(d.feature_names()[1], "z");
  EXPECT_EQ(d.feature_names()[2], "hash[0]");
  EXPECT_EQ(d.feature_names()[1001], "hash[999]");
  EXPECT_EQ(d.label_name(), "y");
  const std::uint32_t m = 2;
  // The header's " color " is trimmed to "color"; values are trimmed too;
  // the text is case-sensitive.
  const auto row0 = entries(
      {{0, 1.5f}, {m + slot("color", "red", 1000), 1.0f}, {m + slot("city", "paris", 1000), 1.0f}});
  EXPECT_EQ(indices(d, 0), row0.first);
  EXPECT_EQ(values(d, 0), row0.second);
  // num = 0 is left out; an empty city adds nothing.
  const auto row1 = entries({{1, 2.0f}, {m + slot("color", "blue", 1000), 1.0f}});
  EXPECT_EQ(indices(d, 1), row1.first);
  EXPECT_EQ(values(d, 1), row1.second);
  const auto row2 = entries({{0, -2.0f},
                             {m + slot("color", "red", 1000), 1.0f},
                             {m + slot("city", "Paris", 1000), 1.0f}});
  EXPECT_EQ(indices(d, 2), row2.first);
  // Golden slots (also computed with Python's arbitrary-precision integers),
  // so that the formula cannot drift unnoticed along with the reference.
  EXPECT_EQ(slot("color", "red", 1000), 90u);
  EXPECT_EQ(slot("city", "paris", 1000), 840u);
  EXPECT_EQ(slot("color", "blue", 1000), 283u);
  EXPECT_EQ(indices(d, 0), (std::vector<std::uint32_t>{0, m + 90, m + 840}));
  EXPECT_EQ(d.labels()[1], 0.0f);
  for (std::size_t r = 0; r < d.rows(); ++r) {
    const auto idx = indices(d, r);
    EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()) &&
                std::adjacent_find(idx.begin(), idx.end()) == idx.end());
  }
}

TEST(FeatureHashing, CollisionsAddUp) {
  TempDir dir;
  // One slot: every hashed value lands on it.
  CsvOptions one;
  one.hashed_columns = {"a", "b", "c"};
  one.hash_dimension = 1;
  const Dataset d = read_csv(dir.write("one.csv", "a,b,c,x,y\nu,v,w,3,1\nu,,w,0,0\n"), one);
  EXPECT_EQ(indices(d, 0), (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(values(d, 0), (std::vector<float>{3, 3}));
  EXPECT_EQ(indices(d, 1), (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(values(d, 1), (std::vector<float>{2}));

  // Two values of different columns that the reference puts in the same of
  // 16 slots, and one that it does not.
  const std::uint32_t dim = 16;
  std::string a = "v0";
  std::string b;
  std::string other;
  for (int k = 0; k < 1000 && (b.empty() || other.empty()); ++k) {
    const std::string v = "w" + std::to_string(k);
    if (slot("b", v, dim) == slot("a", a, dim)) {
      if (b.empty()) b = v;
    } else if (other.empty()) {
      other = v;
    }
  }
  ASSERT_FALSE(b.empty());
  CsvOptions opts;
  opts.hashed_columns = {"a", "b"};
  opts.hash_dimension = dim;
  const Dataset c = read_csv(
      dir.write("c.csv", "a,b,y\n" + a + "," + b + ",1\n" + a + "," + other + ",0\n"), opts);
  EXPECT_EQ(c.cols(), dim);
  EXPECT_EQ(indices(c, 0), (std::vector<std::uint32_t>{slot("a", a, dim)}));
  EXPECT_EQ(values(c, 0), (std::vector<float>{2}));
  EXPECT_EQ(indices(c, 1).size(), 2u);
  EXPECT_EQ(values(c, 1), (std::vector<float>{1, 1}));
}

TEST(FeatureHashing, ByIndexWithoutHeaderAndWithSelectedFeatures) {
  TempDir dir;
  CsvOptions opts;
  opts.has_header = false;
  opts.hashed_columns = {"1"};
  opts.hash_dimension = 64;
  const Dataset d = read_csv(dir.write("n.csv", "4,cat,0\n0,dog,1\n"), opts);
  EXPECT_TRUE(d.feature_names().empty());
  EXPECT_EQ(d.cols(), 1u + 64u);
  // Without a header the column's name in the hash is its index.
  EXPECT_EQ(indices(d, 0), (std::vector<std::uint32_t>{0, 1 + slot("1", "cat", 64)}));
  EXPECT_EQ(indices(d, 1), (std::vector<std::uint32_t>{1 + slot("1", "dog", 64)}));

  CsvOptions sel;
  sel.select_features = {"z", "x"};
  sel.hashed_columns = {"k"};
  sel.hash_dimension = 8;
  const Dataset s = read_csv(dir.write("s.csv", "x,k,z,y\n1,q,2,0\n"), sel);
  EXPECT_EQ(s.feature_names()[0], "z");
  EXPECT_EQ(s.feature_names()[1], "x");
  EXPECT_EQ(indices(s, 0), (std::vector<std::uint32_t>{0, 1, 2 + slot("k", "q", 8)}));
  EXPECT_EQ(values(s, 0), (std::vector<float>{2, 1, 1}));

  // A file without rows keeps the sparse layout and the width.
  CsvOptions empty = sel;
  empty.allow_empty = true;
  const Dataset e = read_csv(dir.write("e.csv", "x,k,z,y\n"), empty);
  EXPECT_TRUE(e.is_sparse());
  EXPECT_EQ(e.cols(), 2u + 8u);
}

TEST(FeatureHashing, OptionErrors) {
  TempDir dir;
  const std::string path = dir.write("e.csv", "x,k,y\n1,q,0\n");
  CsvOptions opts;
  opts.hash_dimension = 8;
  opts.hashed_columns = {"k", "colour"};
  expect_error<ConfigError>([&] { read_csv(path, opts); },
                            {path + ": hashed column 'colour' not found"});
  opts.hashed_columns = {"y"};
  expect_error<ConfigError>([&] { read_csv(path, opts); }, {"'y'", "label column"});
  opts.hashed_columns = {"k", "1"};
  expect_error<ConfigError>([&] { read_csv(path, opts); }, {"listed twice"});
  opts.hashed_columns = {"k"};
  opts.select_features = {"x", "k"};
  expect_error<ConfigError>([&] { read_csv(path, opts); }, {"'k'", "hashed"});
  CsvOptions off;
  off.hashed_columns = {"k"};
  expect_error<ConfigError>([&] { read_csv(path, off); }, {"hash_dimension is 0"});
  // Hashing on but nothing to hash: sparse numeric features.
  CsvOptions numeric;
  numeric.hash_dimension = 4;
  numeric.select_features = {"x"};
  const Dataset d = read_csv(path, numeric);
  EXPECT_TRUE(d.is_sparse());
  EXPECT_EQ(d.cols(), 5u);
}

}  // namespace
}  // namespace dtrain
