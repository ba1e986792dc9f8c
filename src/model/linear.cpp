// Linear and logistic regression over dense or sparse rows.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "dtrain/error.h"
#include "dtrain/model/model.h"

namespace dtrain {

const char* to_string(ModelKind kind) {
  switch (kind) {
    case ModelKind::kLinear:
      return "linear";
    case ModelKind::kLogistic:
      return "logistic";
    case ModelKind::kSparseLogistic:
      return "sparse-logistic";
    case ModelKind::kSoftmax:
      return "softmax";
    case ModelKind::kMlp:
      return "mlp";
  }
  return "?";
}

ModelKind parse_model_kind(std::string_view name) {
  if (name == "linear") return ModelKind::kLinear;
  if (name == "logistic") return ModelKind::kLogistic;
  if (name == "sparse-logistic") return ModelKind::kSparseLogistic;
  if (name == "softmax") return ModelKind::kSoftmax;
  if (name == "mlp") return ModelKind::kMlp;
  throw ConfigError("unknown model '" + std::string(name) +
                    "' (expected linear, logistic, sparse-logistic, softmax or mlp)");
}

namespace {

// log(1 + e^z) without overflow for large |z|.
double softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

class LinearModel final : public Model {
 public:
  LinearModel(ModelKind kind, std::size_t num_features) : kind_(kind), d_(num_features) {}

  ModelKind kind() const override { return kind_; }
  std::size_t num_features() const override { return d_; }
  std::size_t num_params() const override { return d_ + 1; }

  double accumulate_gradient(std::span<const double> params, const Dataset& data,
                             std::span<const std::size_t> rows,
                             std::span<double> grad) const override {
    assert(params.size() == num_params() && grad.size() == num_params());
    assert(data.cols() <= d_);
    const auto labels = data.labels();
    const auto weights = params.first(d_);
    const double b = params[d_];
    auto grad_w = grad.first(d_);
    double loss = 0.0;
    double grad_b = 0.0;
    for (const std::size_t r : rows) {
      const RowView x = data.row(r);
      const double f = x.dot(weights) + b;
      const double y = labels[r];
      // Both losses have d loss / d f = output - y: (f - y) for squared
      // loss, (sigmoid(f) - y) for log-loss.
      double residual;
      if (kind_ == ModelKind::kLinear) {
        residual = f - y;
        loss += 0.5 * residual * residual;
      } else {
        residual = sigmoid(f) - y;
        loss += softplus(f) - y * f;
      }
      x.axpy(residual, grad_w);
      grad_b += residual;
    }
    grad[d_] += grad_b;
    return loss;
  }

  double row_loss(double output, double label) const override {
    if (kind_ == ModelKind::kLinear) {
      const double r = output - label;
      return 0.5 * r * r;
    }
    // Recover the logit from the probability only through clamping: callers
    // that have the logit should prefer accumulate_gradient's exact form.
    const double p = std::clamp(output, 1e-15, 1.0 - 1e-15);
    return -(label * std::log(p) + (1.0 - label) * std::log1p(-p));
  }

  double predict(std::span<const double> params, const RowView& x) const override {
    const double f = x.dot(params.first(d_)) + params[d_];
    return kind_ == ModelKind::kLinear ? f : sigmoid(f);
  }

 private:
  ModelKind kind_;
  std::size_t d_;
};

}  // namespace

std::unique_ptr<Model> make_linear_model(ModelKind kind, std::size_t num_features) {
  if (kind != ModelKind::kLinear && kind != ModelKind::kLogistic &&
      kind != ModelKind::kSparseLogistic) {
    throw ConfigError(std::string("a ") + to_string(kind) + " model is not a linear model");
  }
  return std::make_unique<LinearModel>(kind, num_features);
}

}  // namespace dtrain
