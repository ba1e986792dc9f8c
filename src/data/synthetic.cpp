#include "dtrain/data/synthetic.h"

#include <algorithm>
#include <vector>

#include "dtrain/data/partition.h"

namespace dtrain {

Dataset synthetic_sparse_rows(const SyntheticSparseSpec& spec) {
  Dataset d = Dataset::sparse(spec.cols);
  if (spec.cols == 0) return d;
  const std::size_t nnz = std::min(spec.nnz, spec.cols);
  const std::size_t common = std::clamp<std::size_t>(spec.common, 1, spec.cols);
  std::uint64_t state = spec.seed;
  const auto next = [&state] {
    state = mix64(state + 0x9e3779b97f4a7c15ULL);
    return state;
  };
  const auto uniform = [&next] { return static_cast<double>(next() >> 11) * 0x1.0p-53; };
  // The hidden weight of feature j, uniform in [-0.5, 0.5).
  const auto weight = [&spec](std::uint32_t j) {
    return static_cast<double>(mix64(spec.seed ^ (j * 0x100000001b3ULL)) >> 11) * 0x1.0p-53 - 0.5;
  };
  std::vector<std::uint32_t> idx;
  std::vector<float> val;
  for (std::size_t r = 0; r < spec.rows; ++r) {
    idx.clear();
    while (idx.size() < nnz) {
      const std::uint64_t h = next();
      const auto j = static_cast<std::uint32_t>((h & 1) ? (h >> 8) % common : (h >> 8) % spec.cols);
      if (std::find(idx.begin(), idx.end(), j) == idx.end()) idx.push_back(j);
    }
    std::sort(idx.begin(), idx.end());
    val.clear();
    double score = 0.0;
    for (const std::uint32_t j : idx) {
      val.push_back(spec.one_hot ? 1.0f : static_cast<float>(0.5 + uniform()));
      score += weight(j) * val.back();
    }
    const bool flip = uniform() < spec.label_noise;
    d.add_sparse_row(idx, val, (score > 0) != flip ? 1.0f : 0.0f, r);
  }
  return d;
}

}  // namespace dtrain
