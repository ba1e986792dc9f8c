// Update rules and learning-rate schedules. An optimizer owns its state
// (e.g. the momentum buffer), laid out like the parameter buffer, and is
// applied identically on every worker after gradients are combined, so
// replicas stay bit-identical without broadcasting parameters.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtrain {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // params -= update(grad, lr); grad is the gradient of the full objective.
  virtual void step(std::span<double> params, std::span<const double> grad, double lr) = 0;
};

// Plain gradient descent: p -= lr * g.
class GradientDescent final : public Optimizer {
 public:
  std::string name() const override { return "gd"; }
  void step(std::span<double> params, std::span<const double> grad, double lr) override;
};

// Heavy-ball momentum (PyTorch's convention): v = mu * v + g; p -= lr * v.
// With nesterov: p -= lr * (g + mu * v).
class MomentumSgd final : public Optimizer {
 public:
  MomentumSgd(double momentum, bool nesterov);
  std::string name() const override { return nesterov_ ? "nesterov" : "momentum"; }
  void step(std::span<double> params, std::span<const double> grad, double lr) override;

 private:
  double momentum_;
  bool nesterov_;
  std::vector<double> velocity_;
};

// momentum == 0 and !nesterov gives GradientDescent.
std::unique_ptr<Optimizer> make_optimizer(double momentum, bool nesterov);

// Learning rate as a function of the (0-based) epoch.
struct LrSchedule {
  enum class Kind { kConstant, kStep, kInverseSqrt };
  Kind kind = Kind::kConstant;
  double base = 0.01;
  int step_epochs = 10;  // kStep: multiply by gamma every step_epochs epochs
  double gamma = 0.5;

  // constant: base; step: base * gamma^floor(epoch / step_epochs);
  // inverse-sqrt: base / sqrt(1 + epoch).
  double at(int epoch) const;
};

// "constant" | "step" | "inverse-sqrt"; ConfigError otherwise.
LrSchedule::Kind parse_lr_schedule(std::string_view name);
const char* to_string(LrSchedule::Kind kind);

}  // namespace dtrain
