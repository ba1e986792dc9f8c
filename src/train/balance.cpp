#include "dtrain/train/balance.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "dtrain/data/partition.h"

namespace dtrain {

std::vector<std::size_t> split_batch(std::size_t global_batch, std::span<const double> speeds,
                                     std::size_t min_rows) {
  const std::size_t n = speeds.size();
  std::vector<std::size_t> shares(n, 0);
  if (n == 0) return shares;
  double total = 0.0;
  std::size_t active = 0;
  for (const double s : speeds) {
    assert(s >= 0.0 && std::isfinite(s));
    if (s > 0.0) {
      total += s;
      ++active;
    }
  }
  // The floor: a worker never starves for good, so its speed keeps being
  // measured; it cannot exceed an even split.
  const double floor_rows =
      active == 0 ? 0.0
                  : std::min(static_cast<double>(min_rows),
                             static_cast<double>(global_batch) / static_cast<double>(active));
  // Weights: the proportional share, raised to the floor; then cumulative
  // rounding of the normalised weights.
  std::vector<double> weight(n, 0.0);
  double weight_total = 0.0;
  for (std::size_t r = 0; r < n; ++r) {
    if (active == 0) {
      weight[r] = 1.0;
    } else if (speeds[r] > 0.0) {
      weight[r] = std::max(speeds[r] / total * static_cast<double>(global_batch), floor_rows);
    }
    weight_total += weight[r];
  }
  double cumulative = 0.0;
  std::size_t given = 0;
  for (std::size_t r = 0; r < n; ++r) {
    cumulative += weight[r];
    const auto upto =
        r + 1 == n ? global_batch
                   : std::min(global_batch,
                              static_cast<std::size_t>(std::llround(
                                  cumulative / weight_total * static_cast<double>(global_batch))));
    shares[r] = upto > given ? upto - given : 0;
    given += shares[r];
  }
  return shares;
}

std::uint64_t pass_seed(std::uint64_t seed, std::uint64_t pass, std::uint64_t worker) {
  return mix64(seed) ^ mix64((pass << 20) + worker);
}

RowStream::RowStream(std::vector<std::size_t> rows, std::uint64_t seed, std::uint64_t worker)
    : rows_(std::move(rows)), seed_(seed), worker_(worker) {}

void RowStream::start_pass() {
  order_ = rows_;
  seeded_shuffle(order_, pass_seed(seed_, pass_, worker_));
  ++pass_;
  next_ = 0;
}

std::span<const std::size_t> RowStream::take(std::size_t n) {
  if (n == 0 || rows_.empty()) return {};
  if (pass_ == 0 || next_ == order_.size()) start_pass();
  const std::size_t count = std::min(n, order_.size() - next_);
  const std::span<const std::size_t> out(order_.data() + next_, count);
  next_ += count;
  return out;
}

}  // namespace dtrain
