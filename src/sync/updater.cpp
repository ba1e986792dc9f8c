// The update rule shared by every synchronisation strategy.
#include "dtrain/sync/updater.h"

#include <cassert>

namespace dtrain {

template <class T>
Updater<T>::Updater(const OptimizerConfig& optimizer, double l2,
                    std::vector<std::pair<std::size_t, std::size_t>> penalized, double clip_norm)
    : optimizer_(make_optimizer<T>(optimizer)),
      l2_(l2),
      penalized_(std::move(penalized)),
      clip_norm_(clip_norm) {}

template <class T>
double Updater<T>::apply(std::span<T> params, std::span<T> grad, double rows, double lr) {
  assert(params.size() == grad.size());
  if (rows <= 0) return 0.0;
  // Parameter servers run this too, on their range of the gradient summed in
  // worker rank order, so that master-worker bsp equals the allreduce path
  // bit for bit.
  const T inv_rows = static_cast<T>(1.0 / rows);
  for (T& g : grad) g *= inv_rows;
  double norm2 = 0.0;
  if (l2_ != 0.0) {
    const T factor = static_cast<T>(l2_);
    for (const auto& [begin, end] : penalized_) {
      for (std::size_t j = begin; j < end; ++j) {
        norm2 += static_cast<double>(params[j]) * static_cast<double>(params[j]);
        grad[j] += factor * params[j];
      }
    }
  }
  if (clip_norm_ > 0) clip_by_global_norm<T>(grad, clip_norm_);
  optimizer_->step(params, grad, lr);
  return 0.5 * l2_ * norm2;
}

template class Updater<float>;
template class Updater<double>;

}  // namespace dtrain
