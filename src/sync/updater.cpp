// The update rule shared by every synchronisation strategy.
#include "dtrain/sync/updater.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace dtrain {

template <class T>
double l2_penalty(std::span<const T> params, const IndexRanges& ranges, double l2) {
  if (l2 == 0.0) return 0.0;
  double norm2 = 0.0;
  for (const auto& [begin, end] : ranges) {
    assert(begin <= end && end <= params.size());
    for (std::size_t j = begin; j < end; ++j) {
      norm2 += static_cast<double>(params[j]) * static_cast<double>(params[j]);
    }
  }
  return 0.5 * l2 * norm2;
}

template <class T>
Updater<T>::Updater(const OptimizerConfig& optimizer, double l2, IndexRanges penalized,
                    double clip_norm)
    : config_(optimizer),
      optimizer_(make_optimizer<T>(optimizer)),
      l2_(l2),
      penalized_(std::move(penalized)),
      clip_norm_(clip_norm) {}

template <class T>
std::unique_ptr<Updater<T>> Updater<T>::for_slice(std::size_t begin, std::size_t end) const {
  assert(begin <= end);
  IndexRanges shifted;
  for (const auto& [from, to] : penalized_) {
    const std::size_t lo = std::max(from, begin);
    const std::size_t hi = std::min(to, end);
    if (lo < hi) shifted.emplace_back(lo - begin, hi - begin);
  }
  return std::make_unique<Updater>(config_, l2_, std::move(shifted), clip_norm_);
}

template <class T>
void Updater<T>::prepare(std::span<const T> params, std::span<T> grad, double rows) const {
  assert(params.size() == grad.size() && rows > 0);
  const T inv_rows = mean_factor(rows);
  for (T& g : grad) g *= inv_rows;
  if (l2_ != 0.0) {
    const T factor = static_cast<T>(l2_);
    for (const auto& [begin, end] : penalized_) {
      for (std::size_t j = begin; j < end; ++j) grad[j] += factor * params[j];
    }
  }
}

template <class T>
void Updater<T>::descend(std::span<T> params, std::span<T> grad, double lr, double grad_norm) {
  assert(params.size() == grad.size());
  if (clip_norm_ > 0) clip_to_norm(grad, grad_norm, clip_norm_);
  optimizer_->step(params, grad, lr);
}

template <class T>
double Updater<T>::apply(std::span<T> params, std::span<T> grad, double rows, double lr) {
  assert(params.size() == grad.size());
  if (rows <= 0) return 0.0;
  // Without L2 or clipping nothing needs the mean in memory: the optimizer
  // takes it as it reads the sums. The penalty is then 0.
  if (takes_sums_as_read()) {
    apply_sum(params, grad, {}, rows, lr);
    return 0.0;
  }
  // Parameter servers run this too, on their range of the gradient summed in
  // worker rank order, so that master-worker bsp equals the allreduce path
  // bit for bit.
  const double penalty = l2_penalty<T>(params, penalized_, l2_);
  prepare(params, grad, rows);
  const double norm = clips() ? std::sqrt(sum_of_squares<T>(grad)) : 0.0;
  descend(params, grad, lr, norm);
  return penalty;
}

template <class T>
void Updater<T>::apply_sum(std::span<T> params, std::span<const T> grad, std::span<const T> addend,
                           double rows, double lr) {
  assert(takes_sums_as_read() && params.size() == grad.size());
  if (rows <= 0) return;
  optimizer_->step_sum_scaled(params, grad, addend, mean_factor(rows), lr);
}

template <class T>
void Updater<T>::apply_at(std::span<T> params, std::span<const std::size_t> indices,
                          std::span<T> grad, double rows, double lr) {
  assert(skips_zero_gradients() && indices.size() == grad.size());
  if (rows <= 0) return;
  // prepare() without the L2 term, which skips_zero_gradients() rules out.
  const T inv_rows = mean_factor(rows);
  for (T& g : grad) g *= inv_rows;
  optimizer_->step_at(params, indices, grad, lr);
}

template double l2_penalty<float>(std::span<const float>, const IndexRanges&, double);
template double l2_penalty<double>(std::span<const double>, const IndexRanges&, double);
template class Updater<float>;
template class Updater<double>;

}  // namespace dtrain
