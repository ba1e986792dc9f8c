#include "dtrain/train/balance.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "dtrain/data/partition.h"

namespace dtrain {

namespace {

// The floor split_batch gives each of `active` workers: floor_rows, at least
// 1, at most an even split.
std::size_t applied_floor(std::size_t global_batch, std::size_t floor_rows, std::size_t active) {
  return active == 0 ? 0 : std::min(std::max<std::size_t>(floor_rows, 1), global_batch / active);
}

}  // namespace

std::vector<std::size_t> split_batch(std::size_t global_batch, std::span<const double> weights,
                                     std::size_t floor_rows) {
  const std::size_t n = weights.size();
  std::vector<std::size_t> shares(n, 0);
  if (n == 0) return shares;
  std::size_t active = 0;
  for (const double w : weights) {
    assert(w >= 0.0 && std::isfinite(w));
    if (w > 0.0) ++active;
  }
  if (active == 0) {  // an even split
    for (std::size_t r = 0; r < n; ++r) {
      shares[r] = (r + 1) * global_batch / n - r * global_batch / n;
    }
    return shares;
  }
  const std::size_t floor = applied_floor(global_batch, floor_rows, active);
  // Workers whose proportional share falls below the floor are held at it,
  // and the others share the rest in proportion, until none falls below.
  std::vector<bool> held(n, false);
  std::size_t held_count = 0;
  for (bool changed = true; changed;) {
    changed = false;
    double total = 0.0;
    for (std::size_t r = 0; r < n; ++r) {
      if (weights[r] > 0.0 && !held[r]) total += weights[r];
    }
    const auto rest = static_cast<double>(global_batch - floor * held_count);
    for (std::size_t r = 0; r < n && total > 0.0; ++r) {
      if (weights[r] > 0.0 && !held[r] && weights[r] / total * rest < static_cast<double>(floor)) {
        held[r] = true;
        ++held_count;
        changed = true;
      }
    }
  }
  double total = 0.0;
  std::size_t free_count = 0;
  for (std::size_t r = 0; r < n; ++r) {
    if (weights[r] > 0.0 && !held[r]) {
      total += weights[r];
      ++free_count;
    } else if (held[r]) {
      shares[r] = floor;
    }
  }
  const std::size_t rest = global_batch - floor * held_count;
  if (free_count == 0) {
    // Every worker at the floor: the few rows left go one each, in order.
    for (std::size_t r = 0, left = rest; r < n && left > 0; ++r) {
      if (held[r]) {
        ++shares[r];
        --left;
      }
    }
    return shares;
  }
  // Cumulative rounding of the rest over the free workers.
  double cumulative = 0.0;
  std::size_t given = 0;
  std::size_t seen = 0;
  for (std::size_t r = 0; r < n; ++r) {
    if (!(weights[r] > 0.0) || held[r]) continue;
    ++seen;
    cumulative += weights[r];
    const std::size_t upto =
        seen == free_count ? rest
                           : std::min(rest, static_cast<std::size_t>(std::llround(
                                                cumulative / total * static_cast<double>(rest))));
    shares[r] = upto > given ? upto - given : 0;
    given += shares[r];
  }
  // Rounding can leave a free worker a fraction of a row under the floor:
  // the largest share makes up for it.
  for (std::size_t r = 0; r < n; ++r) {
    while (weights[r] > 0.0 && shares[r] < floor) {
      const auto largest =
          static_cast<std::size_t>(std::max_element(shares.begin(), shares.end()) - shares.begin());
      --shares[largest];
      ++shares[r];
    }
  }
  return shares;
}

BatchBalancer::BatchBalancer(std::size_t global_batch, std::size_t floor_rows,
                             std::vector<bool> has_rows)
    : global_batch_(global_batch), has_rows_(std::move(has_rows)), target_(has_rows_.size(), 0.0) {
  std::vector<double> weights(has_rows_.size(), 0.0);
  for (std::size_t r = 0; r < weights.size(); ++r) weights[r] = has_rows_[r] ? 1.0 : 0.0;
  // The workers with rows are the ones of positive weight, here and in
  // every later split, so the floor split_batch applies never changes.
  const auto active =
      static_cast<std::size_t>(std::count(has_rows_.begin(), has_rows_.end(), true));
  floor_ = applied_floor(global_batch_, floor_rows, active);
  shares_ = split_batch(global_batch_, weights, floor_);
  for (std::size_t r = 0; r < shares_.size(); ++r) target_[r] = static_cast<double>(shares_[r]);
}

void BatchBalancer::update(std::span<const double> seconds, std::span<const double> rows) {
  assert(seconds.size() == shares_.size() && rows.size() == shares_.size());
  // A fifth of the gap closed per step: a change of speed is followed
  // within ~10 steps (the cores of a shared machine change speed for
  // stretches of hundreds), and the noise of single steps moves the split
  // by a fifth as much.
  constexpr double kGain = 0.2;
  std::vector<double> time(shares_.size(), 0.0);
  double sum = 0.0;
  std::size_t measured = 0;
  for (std::size_t r = 0; r < shares_.size(); ++r) {
    if (!has_rows_[r] || rows[r] <= 0.0 || !(seconds[r] > 0.0)) continue;
    time[r] = seconds[r] * static_cast<double>(shares_[r]) / rows[r];
    sum += time[r];
    ++measured;
  }
  if (measured < 2) return;
  const double mean = sum / static_cast<double>(measured);
  double total = 0.0;
  for (std::size_t r = 0; r < shares_.size(); ++r) {
    if (time[r] > 0.0) {
      const double gap = std::clamp((mean - time[r]) / mean, -0.5, 0.5);
      target_[r] *= 1.0 + kGain * gap;
    }
    target_[r] = has_rows_[r] ? std::max(target_[r], 1e-3) : 0.0;
    total += target_[r];
  }
  for (double& t : target_) t *= static_cast<double>(global_batch_) / total;
  shares_ = split_batch(global_batch_, target_, floor_);
  // A worker held at the floor keeps the floor as its target, so that it
  // climbs back from there as soon as it is fast enough.
  for (std::size_t r = 0; r < shares_.size(); ++r) {
    if (has_rows_[r]) target_[r] = std::max(target_[r], static_cast<double>(floor_));
  }
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
