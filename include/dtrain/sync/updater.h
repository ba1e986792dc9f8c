// The update rule every synchronisation strategy applies: mean gradient,
// L2 on the weights, optional clipping, then the optimizer. Peer-to-peer
// replicas, sharded replicas and parameter servers (on their key range) use
// the same one, so the arithmetic, and its order, is the same wherever an
// update happens.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "dtrain/optim/optimizer.h"

namespace dtrain {

using IndexRanges = std::vector<std::pair<std::size_t, std::size_t>>;

// 0.5 * l2 * sum of params[j]^2 over the ranges [begin, end), summed in
// index order in double (so every caller gets the same bits).
template <class T>
double l2_penalty(std::span<const T> params, const IndexRanges& ranges, double l2);

// Each replica (or shard, or server range) owns one, so optimizer state is
// never shared. `penalized` holds index ranges [begin, end) of the span
// apply() is given.
template <class T>
class Updater {
 public:
  Updater(const OptimizerConfig& optimizer, double l2, IndexRanges penalized, double clip_norm);

  // The same rule for the slice [begin, end) of the parameters this one
  // covers: penalised ranges clipped and shifted to it, fresh optimizer
  // state. Parameter servers and sharded replicas update their slice with it.
  std::unique_ptr<Updater> for_slice(std::size_t begin, std::size_t end) const;

  // grad holds gradient sums over `rows` rows; apply() may overwrite it.
  // Returns the L2 penalty 0.5 * l2 * ||w||^2 of the parameters before the
  // step. Does nothing when rows <= 0.
  double apply(std::span<T> params, std::span<T> grad, double rows, double lr);

  // apply() in two halves, for callers whose gradient is split over ranks:
  // prepare() turns the sums into the gradient of the objective (mean plus
  // L2 term) in place; descend() clips it by `grad_norm`, the norm of the
  // whole gradient (only read when clipping is on), and steps.
  void prepare(std::span<const T> params, std::span<T> grad, double rows) const;
  void descend(std::span<T> params, std::span<T> grad, double lr, double grad_norm);
  bool clips() const { return clip_norm_ > 0; }

  // Whether the rule needs nothing but the gradient sums as the optimizer
  // reads them (no L2 term, no clipping). apply() then takes the mean as it
  // reads them (one pass over the gradient instead of two), and apply_sum()
  // may take them straight from a reduce-scatter.
  bool takes_sums_as_read() const { return l2_ == 0.0 && clip_norm_ <= 0; }
  // apply() to the gradient sums grad + addend (addend empty or of grad's
  // size), read once and never written: the parameters end as prepare() and
  // descend() on their sum computed beforehand leave them, bit for bit.
  // Needs takes_sums_as_read(); does nothing when rows <= 0.
  void apply_sum(std::span<T> params, std::span<const T> grad, std::span<const T> addend,
                 double rows, double lr);

  // Whether apply_at() may stand in for apply() on a sparse gradient: no L2
  // term and no clipping (both reach every parameter) and an optimizer that
  // leaves parameters with a zero gradient alone.
  bool skips_zero_gradients() const {
    return l2_ == 0.0 && clip_norm_ <= 0 && optimizer_->skips_zero_gradients();
  }
  // apply() for a gradient that is zero outside `indices` (each index once,
  // in any order): grad[k] holds the sums for params[indices[k]] and is scaled
  // in place. The parameters end as apply() over the dense gradient leaves
  // them, bit for bit. Needs skips_zero_gradients(); does nothing when
  // rows <= 0.
  void apply_at(std::span<T> params, std::span<const std::size_t> indices, std::span<T> grad,
                double rows, double lr);
  // The L2 penalty of params, as apply() returns it.
  double penalty(std::span<const T> params) const { return l2_penalty<T>(params, penalized_, l2_); }

 private:
  // The factor that turns sums over `rows` rows into their mean: one
  // rounding, the same wherever the mean is taken.
  static T mean_factor(double rows) { return static_cast<T>(1.0 / rows); }

  OptimizerConfig config_;
  std::unique_ptr<BasicOptimizer<T>> optimizer_;
  double l2_;
  IndexRanges penalized_;
  double clip_norm_;
};

extern template class Updater<float>;
extern template class Updater<double>;

}  // namespace dtrain
