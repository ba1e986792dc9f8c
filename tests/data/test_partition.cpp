#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

using test::expect_error;

// n rows with ids first_id, first_id + 1, ...
Dataset rows_with_ids(std::uint64_t n, std::uint64_t first_id = 0) {
  Dataset d = Dataset::dense(1);
  for (std::uint64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(i);
    d.add_dense_row(std::span<const float>(&x, 1), 0.0f, first_id + i);
    std::string key = "k";
    key += std::to_string(first_id + i);
    d.add_key(std::move(key));
  }
  return d;
}

std::vector<std::uint64_t> counts_of(const std::vector<std::uint32_t>& owner, std::uint32_t parts) {
  std::vector<std::uint64_t> c(parts, 0);
  for (std::uint32_t o : owner) ++c.at(o);
  return c;
}

std::vector<double> weights_for(std::uint32_t parts) {
  std::vector<double> w(parts);
  for (std::uint32_t p = 0; p < parts; ++p) w[p] = 1.0 + p % 3;
  return w;
}

// ---- Golden hashes: part of the on-disk contract ---------------------------

TEST(Hashes, GoldenValues) {
  // Standard FNV-1a 64 test vectors before the finaliser.
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("bc", fnv1a64("a")), fnv1a64("abc"));  // resumable
  // Values computed independently (Python) from the documented formulas.
  EXPECT_EQ(hash_bytes(""), 0xf52a15e9a9b5e89bull);
  EXPECT_EQ(hash_bytes("a"), 0x02c0bdbf481420f8ull);
  EXPECT_EQ(hash_bytes("user42"), 0x7243fb2f94987c17ull);
  EXPECT_EQ(mix64(0), 0ull);
  EXPECT_EQ(mix64(1), 0x5692161d100b05e5ull);
  EXPECT_EQ(mix64(12345), 0xf36cf1164265dd51ull);
  EXPECT_EQ(reduce_to_range(hash_bytes("user42"), 10), 4u);
  EXPECT_EQ(reduce_to_range(0, 7), 0u);
  EXPECT_EQ(reduce_to_range(~0ull, 7), 6u);
  EXPECT_EQ(reduce_to_range(1ull << 63, 2), 1u);
}

TEST(HashPartitioner, GoldenOwnersForRowIds) {
  const std::vector<std::uint32_t> expected{0, 2, 6, 0, 5, 4, 5, 0, 5, 3,
                                            0, 1, 1, 6, 1, 0, 5, 1, 6, 6};
  EXPECT_EQ(HashPartitioner().assign(rows_with_ids(20), 20, 7), expected);
}

TEST(ShufflePartitioner, GoldenOwners) {
  // From an independent implementation of the documented generator.
  EXPECT_EQ(ShufflePartitioner(42).assign(rows_with_ids(10), 10, 3),
            (std::vector<std::uint32_t>{1, 2, 2, 0, 1, 0, 0, 2, 0, 1}));
  EXPECT_EQ(
      ShufflePartitioner(7).assign(rows_with_ids(20), 20, 4),
      (std::vector<std::uint32_t>{3, 2, 0, 2, 2, 1, 2, 3, 1, 3, 0, 1, 2, 1, 0, 1, 3, 0, 0, 3}));
}

// ---- Every row exactly once ----------------------------------------------------

TEST(Partitioners, EveryRowExactlyOnce) {
  for (std::uint64_t n : {0ull, 1ull, 3ull, 5ull, 16ull, 17ull, 100ull, 442ull}) {
    const Dataset d = rows_with_ids(n);
    for (std::uint32_t parts = 1; parts <= 17; ++parts) {
      std::vector<std::unique_ptr<Partitioner>> ps;
      ps.push_back(std::make_unique<RangePartitioner>());
      ps.push_back(std::make_unique<RangePartitioner>(weights_for(parts)));
      ps.push_back(std::make_unique<HashPartitioner>());
      ps.push_back(std::make_unique<HashPartitioner>("id"));
      ps.push_back(std::make_unique<ShufflePartitioner>(1234));
      for (const auto& p : ps) {
        SCOPED_TRACE(p->name() + " rows=" + std::to_string(n) + " parts=" + std::to_string(parts));
        const std::vector<std::uint32_t> owner = p->assign(d, n, parts);
        ASSERT_EQ(owner.size(), n);
        std::vector<int> seen(n, 0);
        for (std::uint32_t part = 0; part < parts; ++part) {
          for (std::size_t r : rows_of_part(owner, part)) ++seen.at(r);
        }
        EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
        EXPECT_TRUE(
            std::all_of(owner.begin(), owner.end(), [&](std::uint32_t o) { return o < parts; }));
      }
    }
  }
}

TEST(Partitioners, DependOnRowIdsNotPresentation) {
  // A worker holding rows 30..59 of 100 gets the same owners as the full set.
  const Dataset full = rows_with_ids(100);
  const Dataset part = rows_with_ids(30, 30);
  std::vector<std::unique_ptr<Partitioner>> ps;
  ps.push_back(std::make_unique<RangePartitioner>());
  ps.push_back(std::make_unique<RangePartitioner>(std::vector<double>{3, 1, 2}));
  ps.push_back(std::make_unique<HashPartitioner>());
  ps.push_back(std::make_unique<HashPartitioner>("id"));
  ps.push_back(std::make_unique<ShufflePartitioner>(9));
  for (const auto& p : ps) {
    SCOPED_TRACE(p->name());
    const auto all = p->assign(full, 100, 3);
    const auto some = p->assign(part, 100, 3);
    EXPECT_TRUE(std::equal(some.begin(), some.end(), all.begin() + 30));
  }
}

// ---- Range -------------------------------------------------------------------------

TEST(RangePartitioner, BalancedWithinOneRowAndContiguous) {
  for (std::uint64_t n : {0ull, 2ull, 10ull, 101ull, 442ull}) {
    const Dataset d = rows_with_ids(n);
    for (std::uint32_t parts = 1; parts <= 17; ++parts) {
      const auto owner = RangePartitioner().assign(d, n, parts);
      EXPECT_TRUE(std::is_sorted(owner.begin(), owner.end()));
      const auto c = counts_of(owner, parts);
      for (std::uint32_t p = 0; p < parts; ++p) {
        EXPECT_EQ(c[p], n / parts + (p < n % parts ? 1 : 0)) << n << " " << parts << " " << p;
      }
    }
  }
  EXPECT_EQ(RangePartitioner().boundaries(10, 3), (std::vector<std::uint64_t>{0, 4, 7, 10}));
  EXPECT_EQ(RangePartitioner().boundaries(2, 4), (std::vector<std::uint64_t>{0, 1, 2, 2, 2}));
}

// Rows per part from boundaries().
std::vector<std::uint64_t> weighted_counts(std::vector<double> w, std::uint64_t total) {
  const auto parts = static_cast<std::uint32_t>(w.size());
  const auto b = RangePartitioner(std::move(w)).boundaries(total, parts);
  std::vector<std::uint64_t> c(parts);
  for (std::uint32_t p = 0; p < parts; ++p) c[p] = b[p + 1] - b[p];
  return c;
}

TEST(RangePartitioner, WeightedIsProportional) {
  using V = std::vector<std::uint64_t>;
  EXPECT_EQ(weighted_counts({1, 2, 3, 4}, 100), (V{10, 20, 30, 40}));
  EXPECT_EQ(weighted_counts({2, 1}, 10), (V{7, 3}));
  EXPECT_EQ(weighted_counts({1, 1, 1}, 10), (V{4, 3, 3}));         // ties: lower part first
  EXPECT_EQ(weighted_counts({0.5, 0.25, 0.25}, 7), (V{3, 2, 2}));  // largest remainders
  EXPECT_EQ(weighted_counts({1, 1, 1, 1}, 2), (V{1, 1, 0, 0}));
  // In general every count is within one row of its exact quota.
  const std::vector<double> w{0.3, 1.7, 2.2, 0.9, 5.0, 1.1, 0.01};
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  for (std::uint64_t total : {0ull, 1ull, 13ull, 1000ull, 123457ull}) {
    const auto c = weighted_counts(w, total);
    EXPECT_EQ(std::accumulate(c.begin(), c.end(), std::uint64_t{0}), total);
    for (std::size_t p = 0; p < w.size(); ++p) {
      EXPECT_LT(std::fabs(static_cast<double>(c[p]) - static_cast<double>(total) * w[p] / sum),
                1.0);
    }
  }
  // assign() follows the boundaries.
  const auto owner = RangePartitioner({1, 3}).assign(rows_with_ids(8), 8, 2);
  EXPECT_EQ(owner, (std::vector<std::uint32_t>{0, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(RangePartitioner, BadWeightsAndParts) {
  const Dataset d = rows_with_ids(4);
  expect_error<ConfigError>(
      [&] {
        RangePartitioner({1, 2}).assign(d, 4, 3);
      },
      {"2 weights for 3 parts"});
  expect_error<ConfigError>([&] { RangePartitioner({1, 0, 2}).assign(d, 4, 3); }, {"positive"});
  expect_error<ConfigError>([&] { RangePartitioner({1, -1}).assign(d, 4, 2); }, {"positive"});
  expect_error<ConfigError>([&] { RangePartitioner({1, NAN}).assign(d, 4, 2); }, {"positive"});
  expect_error<ConfigError>([&] { RangePartitioner().assign(d, 4, 0); }, {"at least 1"});
  expect_error<ConfigError>([&] { HashPartitioner().assign(d, 4, 0); }, {"at least 1"});
  expect_error<ConfigError>([&] { ShufflePartitioner(1).assign(d, 4, 0); }, {"at least 1"});
  // Row ids must be below total_rows.
  expect_error<ConfigError>([&] { RangePartitioner().assign(d, 3, 2); },
                            {"row id 3", "total_rows 3"});
}

// ---- Shuffle -----------------------------------------------------------------------

TEST(ShufflePartitioner, DeterministicPerSeedAndBalanced) {
  const Dataset d = rows_with_ids(442);
  const auto a = ShufflePartitioner(42).assign(d, 442, 5);
  const auto b = ShufflePartitioner(42).assign(d, 442, 5);
  const auto c = ShufflePartitioner(43).assign(d, 442, 5);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_FALSE(std::is_sorted(a.begin(), a.end()));  // not just range
  const auto counts = counts_of(a, 5);
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{89, 89, 88, 88, 88}));
}

// ---- Hash ----------------------------------------------------------------------------

TEST(HashPartitioner, ByKeyColumn) {
  test::TempDir dir;
  const std::string path =
      dir.write("k.csv", "user,x,y\nalice,1,0\nbob,2,1\n alice ,3,0\ncarol,4,1\nbob,5,0\n");
  CsvOptions opts;
  opts.key_column = "user";
  opts.select_features = {"x"};
  const Dataset d = read_csv(path, opts);
  const HashPartitioner h("user");
  EXPECT_EQ(h.name(), "hash:user");
  const auto owner = h.assign(d, d.rows(), 4);
  EXPECT_EQ(owner[0], reduce_to_range(hash_bytes("alice"), 4));
  EXPECT_EQ(owner[0], owner[2]);  // same key (trimmed), same part
  EXPECT_EQ(owner[1], owner[4]);
  EXPECT_EQ(owner[3], reduce_to_range(hash_bytes("carol"), 4));

  CsvOptions no_keys;
  no_keys.select_features = {"x"};
  const Dataset plain = read_csv(path, no_keys);
  expect_error<ConfigError>([&] { h.assign(plain, plain.rows(), 4); },
                            {"hash:user", "'user'", "key_column"});
}

TEST(HashPartitioner, RoughlyUniform) {
  const auto owner = HashPartitioner().assign(rows_with_ids(10000), 10000, 4);
  for (std::uint64_t c : counts_of(owner, 4)) {
    EXPECT_GT(c, 2300u);
    EXPECT_LT(c, 2700u);
  }
}

// ---- Factory ---------------------------------------------------------------------------

TEST(MakePartitioner, Specs) {
  EXPECT_EQ(make_partitioner("range", 0)->name(), "range");
  EXPECT_EQ(make_partitioner("range", 0, {1, 2})->name(), "range");
  EXPECT_EQ(make_partitioner("hash", 0)->name(), "hash");
  EXPECT_EQ(make_partitioner("hash:user_id", 0)->name(), "hash:user_id");
  EXPECT_EQ(make_partitioner("shuffle", 5)->name(), "shuffle");
  // The seed reaches the shuffle.
  const Dataset d = rows_with_ids(50);
  EXPECT_EQ(make_partitioner("shuffle", 5)->assign(d, 50, 3),
            ShufflePartitioner(5).assign(d, 50, 3));
  for (const char* bad : {"", "Range", "hash:", "random", "shuffle:3"}) {
    expect_error<ConfigError>(
        [&] { make_partitioner(bad, 0); },
        {"'" + std::string(bad) + "'", "range, hash, hash:COLUMN or shuffle"});
  }
  expect_error<ConfigError>([] { make_partitioner("hash", 0, {1, 2}); }, {"weights", "'hash'"});
  expect_error<ConfigError>([] { make_partitioner("shuffle", 0, {1}); }, {"weights", "'shuffle'"});
}

TEST(RowsOfPart, InDatasetOrder) {
  const std::vector<std::uint32_t> owner{2, 0, 2, 1, 2};
  EXPECT_EQ(rows_of_part(owner, 2), (std::vector<std::size_t>{0, 2, 4}));
  EXPECT_TRUE(rows_of_part(owner, 3).empty());
}

TEST(OffsetPartitioner, KeepsTheFirstPartsEmpty) {
  const Dataset data = rows_with_ids(100);
  const auto inner = RangePartitioner{}.assign(data, 100, 3);
  const OffsetPartitioner offset(std::make_unique<RangePartitioner>(), 2);
  const auto owners = offset.assign(data, 100, 5);
  ASSERT_EQ(owners.size(), inner.size());
  for (std::size_t i = 0; i < owners.size(); ++i) EXPECT_EQ(owners[i], inner[i] + 2) << i;
  EXPECT_EQ(offset.name(), "range");
  EXPECT_THROW(offset.assign(data, 100, 2), ConfigError);
}

}  // namespace
}  // namespace dtrain
