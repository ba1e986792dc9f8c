#include "dtrain/optim/optimizer.h"

#include <cassert>
#include <cmath>

#include "dtrain/error.h"

namespace dtrain {

void GradientDescent::step(std::span<double> params, std::span<const double> grad, double lr) {
  assert(params.size() == grad.size());
  for (std::size_t i = 0; i < params.size(); ++i) params[i] -= lr * grad[i];
}

MomentumSgd::MomentumSgd(double momentum, bool nesterov)
    : momentum_(momentum), nesterov_(nesterov) {
  if (!(momentum >= 0.0 && momentum < 1.0)) {
    throw ConfigError("momentum must be in [0, 1), got " + std::to_string(momentum));
  }
}

void MomentumSgd::step(std::span<double> params, std::span<const double> grad, double lr) {
  assert(params.size() == grad.size());
  if (velocity_.size() != params.size()) velocity_.assign(params.size(), 0.0);
  for (std::size_t i = 0; i < params.size(); ++i) {
    velocity_[i] = momentum_ * velocity_[i] + grad[i];
    const double direction = nesterov_ ? grad[i] + momentum_ * velocity_[i] : velocity_[i];
    params[i] -= lr * direction;
  }
}

std::unique_ptr<Optimizer> make_optimizer(double momentum, bool nesterov) {
  if (momentum == 0.0 && !nesterov) return std::make_unique<GradientDescent>();
  return std::make_unique<MomentumSgd>(momentum, nesterov);
}

double LrSchedule::at(int epoch) const {
  switch (kind) {
    case Kind::kConstant:
      return base;
    case Kind::kStep:
      return base * std::pow(gamma, epoch / step_epochs);
    case Kind::kInverseSqrt:
      return base / std::sqrt(1.0 + epoch);
  }
  return base;
}

LrSchedule::Kind parse_lr_schedule(std::string_view name) {
  if (name == "constant") return LrSchedule::Kind::kConstant;
  if (name == "step") return LrSchedule::Kind::kStep;
  if (name == "inverse-sqrt") return LrSchedule::Kind::kInverseSqrt;
  throw ConfigError("unknown learning-rate schedule '" + std::string(name) +
                    "' (expected constant, step or inverse-sqrt)");
}

const char* to_string(LrSchedule::Kind kind) {
  switch (kind) {
    case LrSchedule::Kind::kConstant:
      return "constant";
    case LrSchedule::Kind::kStep:
      return "step";
    case LrSchedule::Kind::kInverseSqrt:
      return "inverse-sqrt";
  }
  return "?";
}

}  // namespace dtrain
