// Update rules and learning-rate schedules. An optimizer owns its state
// (e.g. the momentum buffer), laid out like the parameter buffer, and is
// applied identically on every worker after gradients are combined, so
// replicas stay bit-identical without broadcasting parameters.
//
// Optimizers are templated on the parameter scalar T: float for neural
// networks, double for linear models. Both are explicitly instantiated in
// optimizer.cpp. State is kept in T and the per-element arithmetic runs in T;
// only per-step scalars (bias corrections, learning rate) are formed in double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtrain {

enum class OptimizerKind { kSgd, kMomentum, kNesterov, kAdam, kAdamW, kAdaGrad, kRmsProp };

// "sgd" | "momentum" | "nesterov" | "adam" | "adamw" | "adagrad" | "rmsprop";
// ConfigError listing the choices otherwise.
OptimizerKind parse_optimizer_kind(std::string_view name);
const char* to_string(OptimizerKind kind);

// Hyper-parameters of every optimizer kind; each kind reads only its own.
// Defaults follow PyTorch (torch.optim) so that results can be compared.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  // kMomentum / kNesterov (PyTorch's convention, no dampening):
  //   v = mu * v + g;  momentum: p -= lr * v;  nesterov: p -= lr * (g + mu * v).
  // Not used by RMSProp, which is always the plain (momentum-free,
  // non-centred) variant.
  double momentum = 0.9;
  // kAdam / kAdamW, bias-corrected as in Kingma & Ba (2015) and PyTorch:
  //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
  //   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
  // eps is also RMSProp's epsilon.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  // kAdamW only: decoupled weight decay (Loshchilov & Hutter, 2019, as in
  // PyTorch's AdamW): p -= lr * weight_decay * p, applied before the Adam
  // update and using the parameter before that update. Every other kind
  // ignores it: an L2 penalty belongs to the objective (and hence to the
  // gradient the optimizer is given), not to the update rule.
  double weight_decay = 0.0;
  // kRmsProp: v = alpha v + (1 - alpha) g^2;  p -= lr * g / (sqrt(v) + eps),
  // eps added outside the square root as in PyTorch.
  double rmsprop_alpha = 0.99;
  // kAdaGrad: s += g^2;  p -= lr * g / (sqrt(s) + adagrad_eps) (PyTorch's
  // default epsilon, no learning-rate decay, zero initial accumulator).
  double adagrad_eps = 1e-10;

  // ConfigError naming the field for out-of-range values: momentum, beta1,
  // beta2 and rmsprop_alpha must be in [0, 1); eps and adagrad_eps finite
  // and > 0; weight_decay finite and >= 0. Every field is checked, whatever
  // the kind, so that a bad value is reported even if unused.
  void validate() const;
};

template <class T>
class BasicOptimizer {
 public:
  virtual ~BasicOptimizer() = default;
  virtual std::string name() const = 0;
  // params -= update(grad, lr). grad is the gradient of the full objective,
  // identical on every worker. State is allocated on the first step and
  // must keep the size of params from then on.
  void step(std::span<T> params, std::span<const T> grad, double lr) {
    update(params, grad, {}, T{1}, lr);
  }
  // step() on (grad + addend) * grad_scale, or grad * grad_scale when addend
  // is empty, formed as each element is read: the mean of gradient sums, and
  // a reduce-scatter handed over as two terms (Communicator::
  // reduce_scatter_sum_to), cost no pass of their own. The result is step()'s
  // on that gradient computed in memory beforehand, bit for bit.
  void step_sum_scaled(std::span<T> params, std::span<const T> grad, std::span<const T> addend,
                       T grad_scale, double lr) {
    update(params, grad, addend, grad_scale, lr);
  }

  // Whether a zero gradient leaves a parameter and its state exactly as they
  // are (plain SGD, AdaGrad; not momentum or Adam, whose state decays every
  // step). Such rules may update only the parameters a sparse gradient
  // touches, with the same result bit for bit as a step over all of them.
  virtual bool skips_zero_gradients() const { return false; }
  // step() over params[indices[k]] with gradient grad[k] alone (each index
  // once, in any order; grad.size() == indices.size()); the per-element
  // arithmetic is step()'s. Only for rules that skip zero gradients.
  virtual void step_at(std::span<T> params, std::span<const std::size_t> indices,
                       std::span<const T> grad, double lr);

 protected:
  // The rule itself, on the gradient (grad + addend) * grad_scale, or
  // grad * grad_scale when addend is empty.
  virtual void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend,
                      T grad_scale, double lr) = 0;
};

// The optimizer of the linear models.
using Optimizer = BasicOptimizer<double>;

// Plain gradient descent: p -= lr * g.
template <class T>
class BasicGradientDescent final : public BasicOptimizer<T> {
 public:
  std::string name() const override { return to_string(OptimizerKind::kSgd); }
  bool skips_zero_gradients() const override { return true; }
  void step_at(std::span<T> params, std::span<const std::size_t> indices, std::span<const T> grad,
               double lr) override;

 protected:
  void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend, T grad_scale,
              double lr) override;
};

// Heavy-ball momentum (PyTorch's convention): v = mu * v + g; p -= lr * v.
// With nesterov: p -= lr * (g + mu * v). ConfigError unless mu is in [0, 1).
template <class T>
class BasicMomentumSgd final : public BasicOptimizer<T> {
 public:
  BasicMomentumSgd(double momentum, bool nesterov);
  std::string name() const override {
    return to_string(nesterov_ ? OptimizerKind::kNesterov : OptimizerKind::kMomentum);
  }

 protected:
  void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend, T grad_scale,
              double lr) override;

 private:
  double momentum_;
  bool nesterov_;
  std::vector<T> velocity_;
};

using GradientDescent = BasicGradientDescent<double>;
using MomentumSgd = BasicMomentumSgd<double>;

extern template class BasicOptimizer<float>;
extern template class BasicOptimizer<double>;
extern template class BasicGradientDescent<float>;
extern template class BasicGradientDescent<double>;
extern template class BasicMomentumSgd<float>;
extern template class BasicMomentumSgd<double>;

// config.validate() first, then the optimizer of config.kind. Instantiated
// for float and double.
template <class T>
std::unique_ptr<BasicOptimizer<T>> make_optimizer(const OptimizerConfig& config);

// Rescales grad in place so that its L2 norm is at most max_norm: no-op when
// max_norm <= 0, when the norm is already at most max_norm, or when the norm
// is not finite (the returned value lets the caller notice and skip the
// step). Returns the norm before clipping, accumulated in double.
// Instantiated for float and double.
template <class T>
double clip_by_global_norm(std::span<T> grad, double max_norm);

// The two halves of clip_by_global_norm, for a gradient split over ranks:
// the sum of squares of one part (in double, index order), and the rescaling
// of one part given the norm of the whole.
template <class T>
double sum_of_squares(std::span<const T> values);
template <class T>
void clip_to_norm(std::span<T> grad, double norm, double max_norm);

// Learning rate as a function of training progress, measured in epochs.
struct LrSchedule {
  enum class Kind { kConstant, kStep, kInverseSqrt, kCosine };
  Kind kind = Kind::kConstant;
  double base = 0.01;
  int step_epochs = 10;  // kStep: multiply by gamma every step_epochs epochs
  double gamma = 0.5;
  // kCosine: decays from base to base * min_factor over total_epochs and
  // stays there afterwards.
  double total_epochs = 0.0;
  double min_factor = 0.0;
  // Linear warm-up (Goyal et al. 2017, "Accurate, Large Minibatch SGD"):
  // over the first warmup_epochs the rate is the scheduled rate times a
  // factor that rises linearly from warmup_start_factor to 1.
  double warmup_epochs = 0.0;
  double warmup_start_factor = 0.0;

  // The rate at `progress` = epoch + fraction of the epoch done:
  //   constant: base;  step: base * gamma^floor(progress / step_epochs);
  //   inverse-sqrt: base / sqrt(1 + progress);
  //   cosine: base * (min_factor + (1 - min_factor) *
  //                   0.5 * (1 + cos(pi * min(progress, total_epochs) / total_epochs)));
  // times, while progress < warmup_epochs,
  //   warmup_start_factor + (1 - warmup_start_factor) * progress / warmup_epochs.
  // With the default warmup_start_factor of 0 this is 0 at progress 0: use
  // at_step() for the rate of an actual step.
  double at(double progress) const;

  // The rate of step `step` (0-based) of `epoch`, out of steps_per_epoch.
  // The decay is evaluated where the step starts, epoch + step /
  // steps_per_epoch, so the step schedule still changes exactly at epoch
  // boundaries; the warm-up factor is evaluated where the step ends, epoch +
  // (step + 1) / steps_per_epoch, so the first step never has a zero rate and
  // the last warm-up step reaches the scheduled rate.
  double at_step(int epoch, std::uint64_t step, std::uint64_t steps_per_epoch) const;

  // The rate of an epoch taken as a single step: at_step(epoch, 0, 1). Equal
  // to at(double(epoch)) when there is no warm-up.
  double at(int epoch) const;

  // ConfigError naming the field: base must be finite and > 0; kStep needs
  // step_epochs >= 1 and gamma > 0; kCosine needs total_epochs > 0 and
  // min_factor in [0, 1]; warmup_epochs must be finite and >= 0 and
  // warmup_start_factor in [0, 1].
  void validate() const;
};

// "constant" | "step" | "inverse-sqrt" | "cosine"; ConfigError otherwise.
LrSchedule::Kind parse_lr_schedule(std::string_view name);
const char* to_string(LrSchedule::Kind kind);

// Linear scaling rule (Goyal et al. 2017): when the global mini-batch is k
// times the batch a learning rate was tuned for, multiply the rate by k, so
// that k small SGD steps and one large step move the parameters about
// equally. The global batch is the per-worker batch times the number of
// workers whose gradients are averaged. The rule is meant for SGD with or
// without momentum on large global batches (many workers), and only together
// with a warm-up: early in training the gradient changes quickly and the
// scaled rate diverges without one. It breaks down once the batch is so large
// that the scaled rate exceeds what the curvature allows, and it is not the
// rule for adaptive methods (Adam, RMSProp, AdaGrad): they normalise each step
// by the gradient's magnitude, so a larger batch does not call for a
// proportionally larger rate (a square-root rule is the usual choice there).
enum class LrScaling { kNone, kLinear };

// "none" | "linear"; ConfigError otherwise.
LrScaling parse_lr_scaling(std::string_view name);
const char* to_string(LrScaling scaling);

// kLinear: base * global_batch / reference_batch (ConfigError if either
// batch is 0); kNone: base.
double scaled_learning_rate(double base, LrScaling scaling, std::size_t global_batch,
                            std::size_t reference_batch);

}  // namespace dtrain
