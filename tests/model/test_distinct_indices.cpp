// DistinctIndices against a plain reference: the first appearance of each
// index, in order, whatever the bound (word edges included) and however
// many lists came before.
#include "dtrain/util/distinct_indices.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <vector>

namespace dtrain {
namespace {

std::vector<std::size_t> first_appearances(const std::vector<std::size_t>& seq, std::size_t bound) {
  std::vector<bool> seen(bound, false);
  std::vector<std::size_t> out;
  for (const std::size_t j : seq) {
    if (!seen[j]) {
      seen[j] = true;
      out.push_back(j);
    }
  }
  return out;
}

std::vector<std::size_t> collect(DistinctIndices& distinct, const std::vector<std::size_t>& seq,
                                 std::size_t bound) {
  std::vector<std::size_t> out{12345};  // start() must clear it
  distinct.start(bound, out);
  for (const std::size_t j : seq) distinct.add(j);
  distinct.finish();
  return out;
}

TEST(DistinctIndices, FirstAppearancesInOrderForAnyBound) {
  std::mt19937_64 rng(7);
  DistinctIndices distinct;  // reused across bounds and lists
  for (const std::size_t bound : {1u, 63u, 64u, 65u, 127u, 1000u, 4096u, 100003u}) {
    for (int list = 0; list < 5; ++list) {
      std::uniform_int_distribution<std::size_t> pick(0, bound - 1);
      std::vector<std::size_t> seq(static_cast<std::size_t>(list) * 37 + 3);
      for (auto& j : seq) j = pick(rng);
      seq.push_back(bound - 1);  // the last bit of a possibly partial word
      seq.push_back(0);
      EXPECT_EQ(collect(distinct, seq, bound), first_appearances(seq, bound))
          << "bound " << bound << ", list " << list;
    }
  }
}

TEST(DistinctIndices, MarksAreClearedBetweenLists) {
  DistinctIndices distinct;
  // Neighbours in one 64-bit word: clearing a listed index's word must not
  // leave a neighbour marked for the next list.
  const std::vector<std::size_t> first{5, 6, 70, 5, 6};
  EXPECT_EQ(collect(distinct, first, 200), (std::vector<std::size_t>{5, 6, 70}));
  const std::vector<std::size_t> second{6, 71, 5, 70};
  EXPECT_EQ(collect(distinct, second, 200), second);
  EXPECT_EQ(collect(distinct, {}, 200), std::vector<std::size_t>{});
  EXPECT_EQ(collect(distinct, {199, 199, 0}, 200), (std::vector<std::size_t>{199, 0}));
}

}  // namespace
}  // namespace dtrain
