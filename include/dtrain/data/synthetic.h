// Synthetic sparse classification data, for tests and benchmarks: rows as
// hashed categorical features look (a few features shared by many rows,
// most rare), labelled 0/1 by a hidden weight vector, with some labels
// flipped. Deterministic in the seed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dtrain/data/dataset.h"

namespace dtrain {

struct SyntheticSparseSpec {
  std::size_t rows = 1000;
  std::size_t cols = std::size_t{1} << 16;  // features (the hashed dimension)
  std::size_t nnz = 20;                     // distinct features per row (at most cols)
  // Half of each row's features are drawn from the first `common` columns
  // (clamped to cols), half from all of them.
  std::size_t common = 64;
  // Values: 1 (one-hot categories), or uniform in [0.5, 1.5).
  bool one_hot = false;
  double label_noise = 0.1;  // share of the labels flipped
  std::uint64_t seed = 1;
};

// CSR rows with strictly increasing indices; row ids 0..rows-1.
Dataset synthetic_sparse_rows(const SyntheticSparseSpec& spec);

}  // namespace dtrain
