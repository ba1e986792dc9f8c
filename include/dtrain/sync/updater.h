// The update rule every synchronisation strategy applies: mean gradient,
// L2 on the weights, optional clipping, then the optimizer. Peer-to-peer
// replicas and parameter servers (on their key range) use the same one, so
// the arithmetic, and its order, is the same wherever an update happens.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "dtrain/optim/optimizer.h"

namespace dtrain {

// Each replica (or server range) owns one, so optimizer state is never
// shared. `penalized` holds index ranges [begin, end) of the span apply()
// is given.
template <class T>
class Updater {
 public:
  Updater(const OptimizerConfig& optimizer, double l2,
          std::vector<std::pair<std::size_t, std::size_t>> penalized, double clip_norm);
  // grad holds gradient sums over `rows` rows; it is scaled in place.
  // Returns the L2 penalty 0.5 * l2 * ||w||^2 of the parameters before the
  // step.
  double apply(std::span<T> params, std::span<T> grad, double rows, double lr);

 private:
  std::unique_ptr<BasicOptimizer<T>> optimizer_;
  double l2_;
  std::vector<std::pair<std::size_t, std::size_t>> penalized_;
  double clip_norm_;
};

extern template class Updater<float>;
extern template class Updater<double>;

}  // namespace dtrain
