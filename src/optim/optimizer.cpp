#include "dtrain/optim/optimizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "dtrain/error.h"

namespace dtrain {
namespace {

// The update loops below run over every parameter on every step (hundreds of
// thousands of floats for a network), so they are written as plain indexed
// loops over raw pointers with per-step scalars hoisted and converted to T
// once: the compiler vectorises them (optimizer.cpp is built with
// -fno-math-errno so that sqrt does not block this).

void require_unit_interval(double value, const char* field) {
  if (!(value >= 0.0 && value < 1.0)) {
    throw ConfigError(std::string(field) + " must be in [0, 1), got " + std::to_string(value));
  }
}

void require_positive(double value, const char* field) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    throw ConfigError(std::string(field) + " must be a finite number > 0, got " +
                      std::to_string(value));
  }
}

// How many indices ahead a sparse update fetches the lines it will write
// (see AdaGrad::step_at).
constexpr std::size_t kPrefetchAhead = 16;

// State buffers are allocated on the first step. A later step over a buffer
// of a different size is a caller bug.
template <class T>
void ensure_state(std::vector<T>& state, std::size_t size) {
  assert(state.empty() || state.size() == size);
  if (state.size() != size) state.assign(size, T{0});
}

// Runs body(gradient) where gradient(i) is (grad[i] + addend[i]) * scale, or
// grad[i] * scale when addend is empty: the update loops are written once
// and instantiated for both forms, each a plain loop the compiler vectorises.
template <class T, class Body>
void with_gradient(std::span<const T> grad, std::span<const T> addend, T scale, Body body) {
  const T* g = grad.data();
  if (addend.empty()) {
    body([g, scale](std::size_t i) { return g[i] * scale; });
  } else {
    assert(addend.size() == grad.size());
    const T* h = addend.data();
    body([g, h, scale](std::size_t i) { return (g[i] + h[i]) * scale; });
  }
}

// Adam and AdamW (PyTorch's formulas). AdamW first shrinks each parameter by
// lr * weight_decay, using its value before the step, then applies the same
// update as Adam; with weight_decay == 0 the two coincide.
template <class T>
class Adam final : public BasicOptimizer<T> {
 public:
  Adam(const OptimizerConfig& config, bool decoupled_decay)
      : beta1_(config.beta1),
        beta2_(config.beta2),
        eps_(config.eps),
        weight_decay_(decoupled_decay ? config.weight_decay : 0.0),
        decoupled_decay_(decoupled_decay) {}

  std::string name() const override {
    return to_string(decoupled_decay_ ? OptimizerKind::kAdamW : OptimizerKind::kAdam);
  }

  void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend, T grad_scale,
              double lr) override {
    assert(params.size() == grad.size());
    ensure_state(first_moment_, params.size());
    ensure_state(second_moment_, params.size());
    ++steps_;
    const double t = static_cast<double>(steps_);
    const double bias_correction1 = 1.0 - std::pow(beta1_, t);
    const double bias_correction2 = 1.0 - std::pow(beta2_, t);
    const T step_size = static_cast<T>(lr / bias_correction1);
    const T inv_sqrt_bias_correction2 = static_cast<T>(1.0 / std::sqrt(bias_correction2));
    const T decay_factor = static_cast<T>(1.0 - lr * weight_decay_);
    const T beta1 = static_cast<T>(beta1_);
    const T beta2 = static_cast<T>(beta2_);
    const T one_minus_beta1 = static_cast<T>(1.0 - beta1_);
    const T one_minus_beta2 = static_cast<T>(1.0 - beta2_);
    const T eps = static_cast<T>(eps_);

    T* p = params.data();
    T* m = first_moment_.data();
    T* v = second_moment_.data();
    const std::size_t n = params.size();
    with_gradient(grad, addend, grad_scale, [&](auto gradient) {
      for (std::size_t i = 0; i < n; ++i) {
        const T gi = gradient(i);
        m[i] = beta1 * m[i] + one_minus_beta1 * gi;
        v[i] = beta2 * v[i] + one_minus_beta2 * gi * gi;
        const T denominator = std::sqrt(v[i]) * inv_sqrt_bias_correction2 + eps;
        p[i] = decay_factor * p[i] - step_size * m[i] / denominator;
      }
    });
  }

 private:
  double beta1_;
  double beta2_;
  double eps_;
  double weight_decay_;
  bool decoupled_decay_;
  std::int64_t steps_ = 0;
  std::vector<T> first_moment_;
  std::vector<T> second_moment_;
};

template <class T>
class AdaGrad final : public BasicOptimizer<T> {
 public:
  explicit AdaGrad(const OptimizerConfig& config) : eps_(config.adagrad_eps) {}

  std::string name() const override { return to_string(OptimizerKind::kAdaGrad); }

  void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend, T grad_scale,
              double lr) override {
    assert(params.size() == grad.size());
    ensure_state(sum_of_squares_, params.size());
    const T rate = static_cast<T>(lr);
    const T eps = static_cast<T>(eps_);
    T* p = params.data();
    T* s = sum_of_squares_.data();
    const std::size_t n = params.size();
    with_gradient(grad, addend, grad_scale, [&](auto gradient) {
      for (std::size_t i = 0; i < n; ++i) {
        const T gi = gradient(i);
        s[i] += gi * gi;
        p[i] -= rate * gi / (std::sqrt(s[i]) + eps);
      }
    });
  }

  // A zero gradient adds nothing to s and moves p by 0 / (sqrt(s) + eps)
  // with eps > 0: exactly nothing.
  bool skips_zero_gradients() const override { return true; }
  void step_at(std::span<T> params, std::span<const std::size_t> indices, std::span<const T> grad,
               double lr) override {
    assert(indices.size() == grad.size());
    ensure_state(sum_of_squares_, params.size());
    const T rate = static_cast<T>(lr);
    const T eps = static_cast<T>(eps_);
    T* p = params.data();
    T* s = sum_of_squares_.data();
    const std::size_t n = indices.size();
    for (std::size_t k = 0; k < n; ++k) {
      // The indices lie scattered over the model, and each update waits on
      // a square root and a division, which fill the core's window before
      // many later loads are issued: fetching the lines of the update
      // kPrefetchAhead indices on keeps more misses in flight (bench_sparse,
      // adagrad rows in BENCHMARKS.md).
      if (k + kPrefetchAhead < n) {
        __builtin_prefetch(s + indices[k + kPrefetchAhead], 1);
        __builtin_prefetch(p + indices[k + kPrefetchAhead], 1);
      }
      const std::size_t i = indices[k];
      assert(i < params.size());
      s[i] += grad[k] * grad[k];
      p[i] -= rate * grad[k] / (std::sqrt(s[i]) + eps);
    }
  }

 private:
  double eps_;
  std::vector<T> sum_of_squares_;
};

template <class T>
class RmsProp final : public BasicOptimizer<T> {
 public:
  explicit RmsProp(const OptimizerConfig& config)
      : alpha_(config.rmsprop_alpha), eps_(config.eps) {}

  std::string name() const override { return to_string(OptimizerKind::kRmsProp); }

  void update(std::span<T> params, std::span<const T> grad, std::span<const T> addend, T grad_scale,
              double lr) override {
    assert(params.size() == grad.size());
    ensure_state(mean_square_, params.size());
    const T rate = static_cast<T>(lr);
    const T alpha = static_cast<T>(alpha_);
    const T one_minus_alpha = static_cast<T>(1.0 - alpha_);
    const T eps = static_cast<T>(eps_);
    T* p = params.data();
    T* v = mean_square_.data();
    const std::size_t n = params.size();
    with_gradient(grad, addend, grad_scale, [&](auto gradient) {
      for (std::size_t i = 0; i < n; ++i) {
        const T gi = gradient(i);
        v[i] = alpha * v[i] + one_minus_alpha * gi * gi;
        p[i] -= rate * gi / (std::sqrt(v[i]) + eps);
      }
    });
  }

 private:
  double alpha_;
  double eps_;
  std::vector<T> mean_square_;
};

}  // namespace

OptimizerKind parse_optimizer_kind(std::string_view name) {
  for (const OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
        OptimizerKind::kAdam, OptimizerKind::kAdamW, OptimizerKind::kAdaGrad,
        OptimizerKind::kRmsProp}) {
    if (name == to_string(kind)) return kind;
  }
  throw ConfigError("unknown optimizer '" + std::string(name) +
                    "' (expected sgd, momentum, nesterov, adam, adamw, adagrad or rmsprop)");
}

const char* to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kMomentum:
      return "momentum";
    case OptimizerKind::kNesterov:
      return "nesterov";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
    case OptimizerKind::kAdaGrad:
      return "adagrad";
    case OptimizerKind::kRmsProp:
      return "rmsprop";
  }
  return "?";
}

void OptimizerConfig::validate() const {
  require_unit_interval(momentum, "momentum");
  require_unit_interval(beta1, "beta1");
  require_unit_interval(beta2, "beta2");
  require_positive(eps, "eps");
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) {
    throw ConfigError("weight_decay must be a finite number >= 0, got " +
                      std::to_string(weight_decay));
  }
  require_unit_interval(rmsprop_alpha, "rmsprop_alpha");
  require_positive(adagrad_eps, "adagrad_eps");
}

template <class T>
void BasicGradientDescent<T>::update(std::span<T> params, std::span<const T> grad,
                                     std::span<const T> addend, T grad_scale, double lr) {
  assert(params.size() == grad.size());
  const T rate = static_cast<T>(lr);
  T* p = params.data();
  const std::size_t n = params.size();
  with_gradient(grad, addend, grad_scale, [&](auto gradient) {
    for (std::size_t i = 0; i < n; ++i) p[i] -= rate * gradient(i);
  });
}

template <class T>
void BasicGradientDescent<T>::step_at(std::span<T> params, std::span<const std::size_t> indices,
                                      std::span<const T> grad, double lr) {
  assert(indices.size() == grad.size());
  const T rate = static_cast<T>(lr);
  T* p = params.data();
  for (std::size_t k = 0; k < indices.size(); ++k) {
    assert(indices[k] < params.size());
    p[indices[k]] -= rate * grad[k];
  }
}

template <class T>
void BasicOptimizer<T>::step_at(std::span<T> /*params*/, std::span<const std::size_t> /*indices*/,
                                std::span<const T> /*grad*/, double /*lr*/) {
  throw Error(name() + " updates every parameter on every step; it has no sparse step");
}

template <class T>
BasicMomentumSgd<T>::BasicMomentumSgd(double momentum, bool nesterov)
    : momentum_(momentum), nesterov_(nesterov) {
  require_unit_interval(momentum, "momentum");
}

template <class T>
void BasicMomentumSgd<T>::update(std::span<T> params, std::span<const T> grad,
                                 std::span<const T> addend, T grad_scale, double lr) {
  assert(params.size() == grad.size());
  ensure_state(velocity_, params.size());
  const T rate = static_cast<T>(lr);
  const T mu = static_cast<T>(momentum_);
  T* p = params.data();
  T* v = velocity_.data();
  const std::size_t n = params.size();
  with_gradient(grad, addend, grad_scale, [&](auto gradient) {
    // Two loops rather than a branch per element, so each vectorises.
    if (nesterov_) {
      for (std::size_t i = 0; i < n; ++i) {
        const T gi = gradient(i);
        v[i] = mu * v[i] + gi;
        p[i] -= rate * (gi + mu * v[i]);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        v[i] = mu * v[i] + gradient(i);
        p[i] -= rate * v[i];
      }
    }
  });
}

template class BasicOptimizer<float>;
template class BasicOptimizer<double>;
template class BasicGradientDescent<float>;
template class BasicGradientDescent<double>;
template class BasicMomentumSgd<float>;
template class BasicMomentumSgd<double>;

template <class T>
std::unique_ptr<BasicOptimizer<T>> make_optimizer(const OptimizerConfig& config) {
  config.validate();
  switch (config.kind) {
    case OptimizerKind::kSgd:
      return std::make_unique<BasicGradientDescent<T>>();
    case OptimizerKind::kMomentum:
      return std::make_unique<BasicMomentumSgd<T>>(config.momentum, false);
    case OptimizerKind::kNesterov:
      return std::make_unique<BasicMomentumSgd<T>>(config.momentum, true);
    case OptimizerKind::kAdam:
      return std::make_unique<Adam<T>>(config, false);
    case OptimizerKind::kAdamW:
      return std::make_unique<Adam<T>>(config, true);
    case OptimizerKind::kAdaGrad:
      return std::make_unique<AdaGrad<T>>(config);
    case OptimizerKind::kRmsProp:
      return std::make_unique<RmsProp<T>>(config);
  }
  throw ConfigError("unknown optimizer kind");
}

template std::unique_ptr<BasicOptimizer<float>> make_optimizer<float>(const OptimizerConfig&);
template std::unique_ptr<BasicOptimizer<double>> make_optimizer<double>(const OptimizerConfig&);

template <class T>
double sum_of_squares(std::span<const T> values) {
  double sum = 0.0;
  for (const T v : values) sum += static_cast<double>(v) * static_cast<double>(v);
  return sum;
}

template <class T>
void clip_to_norm(std::span<T> grad, double norm, double max_norm) {
  if (max_norm > 0.0 && norm > max_norm && std::isfinite(norm)) {
    const T scale = static_cast<T>(max_norm / norm);
    for (T& g : grad) g *= scale;
  }
}

template <class T>
double clip_by_global_norm(std::span<T> grad, double max_norm) {
  const double norm = std::sqrt(sum_of_squares<T>(grad));
  clip_to_norm(grad, norm, max_norm);
  return norm;
}

template double sum_of_squares<float>(std::span<const float>);
template double sum_of_squares<double>(std::span<const double>);
template void clip_to_norm<float>(std::span<float>, double, double);
template void clip_to_norm<double>(std::span<double>, double, double);
template double clip_by_global_norm<float>(std::span<float>, double);
template double clip_by_global_norm<double>(std::span<double>, double);

namespace {

// The schedule's decay alone, without warm-up.
double decayed_rate(const LrSchedule& s, double progress) {
  switch (s.kind) {
    case LrSchedule::Kind::kConstant:
      return s.base;
    case LrSchedule::Kind::kStep:
      return s.base * std::pow(s.gamma, std::floor(progress / s.step_epochs));
    case LrSchedule::Kind::kInverseSqrt:
      return s.base / std::sqrt(1.0 + progress);
    case LrSchedule::Kind::kCosine: {
      const double fraction = std::min(progress, s.total_epochs) / s.total_epochs;
      const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * fraction));
      return s.base * (s.min_factor + (1.0 - s.min_factor) * cosine);
    }
  }
  return s.base;
}

double warmup_factor(const LrSchedule& s, double progress) {
  if (!(progress < s.warmup_epochs)) return 1.0;
  return s.warmup_start_factor + (1.0 - s.warmup_start_factor) * progress / s.warmup_epochs;
}

}  // namespace

double LrSchedule::at(double progress) const {
  return decayed_rate(*this, progress) * warmup_factor(*this, progress);
}

double LrSchedule::at_step(int epoch, std::uint64_t step, std::uint64_t steps_per_epoch) const {
  assert(steps_per_epoch > 0 && step < steps_per_epoch);
  const double steps = static_cast<double>(steps_per_epoch);
  const double start = epoch + static_cast<double>(step) / steps;
  const double end = epoch + static_cast<double>(step + 1) / steps;
  return decayed_rate(*this, start) * warmup_factor(*this, end);
}

double LrSchedule::at(int epoch) const { return at_step(epoch, 0, 1); }

void LrSchedule::validate() const {
  require_positive(base, "learning rate");
  if (kind == Kind::kStep && (step_epochs < 1 || !(gamma > 0.0))) {
    throw ConfigError("step schedule needs step_epochs >= 1 and gamma > 0");
  }
  if (kind == Kind::kCosine) {
    require_positive(total_epochs, "cosine schedule's total_epochs");
    if (!(min_factor >= 0.0 && min_factor <= 1.0)) {
      throw ConfigError("cosine schedule's min_factor must be in [0, 1], got " +
                        std::to_string(min_factor));
    }
  }
  if (!(warmup_epochs >= 0.0) || !std::isfinite(warmup_epochs)) {
    throw ConfigError("warmup_epochs must be a finite number >= 0, got " +
                      std::to_string(warmup_epochs));
  }
  if (!(warmup_start_factor >= 0.0 && warmup_start_factor <= 1.0)) {
    throw ConfigError("warmup_start_factor must be in [0, 1], got " +
                      std::to_string(warmup_start_factor));
  }
}

LrSchedule::Kind parse_lr_schedule(std::string_view name) {
  if (name == "constant") return LrSchedule::Kind::kConstant;
  if (name == "step") return LrSchedule::Kind::kStep;
  if (name == "inverse-sqrt") return LrSchedule::Kind::kInverseSqrt;
  if (name == "cosine") return LrSchedule::Kind::kCosine;
  throw ConfigError("unknown learning-rate schedule '" + std::string(name) +
                    "' (expected constant, step, inverse-sqrt or cosine)");
}

const char* to_string(LrSchedule::Kind kind) {
  switch (kind) {
    case LrSchedule::Kind::kConstant:
      return "constant";
    case LrSchedule::Kind::kStep:
      return "step";
    case LrSchedule::Kind::kInverseSqrt:
      return "inverse-sqrt";
    case LrSchedule::Kind::kCosine:
      return "cosine";
  }
  return "?";
}

LrScaling parse_lr_scaling(std::string_view name) {
  if (name == "none") return LrScaling::kNone;
  if (name == "linear") return LrScaling::kLinear;
  throw ConfigError("unknown learning-rate scaling '" + std::string(name) +
                    "' (expected none or linear)");
}

const char* to_string(LrScaling scaling) {
  switch (scaling) {
    case LrScaling::kNone:
      return "none";
    case LrScaling::kLinear:
      return "linear";
  }
  return "?";
}

double scaled_learning_rate(double base, LrScaling scaling, std::size_t global_batch,
                            std::size_t reference_batch) {
  if (scaling == LrScaling::kNone) return base;
  if (global_batch == 0 || reference_batch == 0) {
    throw ConfigError("linear learning-rate scaling needs global and reference batch sizes >= 1");
  }
  return base * static_cast<double>(global_batch) / static_cast<double>(reference_batch);
}

}  // namespace dtrain
