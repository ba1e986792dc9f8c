// Models: a loss, its gradient and a prediction rule over a flat parameter
// buffer.
//
// Parameters live in one contiguous std::vector<double> per worker so that a
// single collective moves the whole model or gradient. A model object holds
// no parameters itself: it only knows the layout and the arithmetic, which
// keeps it trivially shareable between worker threads.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/data/dataset.h"

namespace dtrain {

enum class ModelKind {
  kLinear,          // linear regression, squared loss
  kLogistic,        // binary logistic regression
  kSparseLogistic,  // binary logistic regression on CSR rows (hashed or LibSVM features)
  kSoftmax,         // multinomial logistic regression (a network without hidden layers)
  kMlp,             // multilayer perceptron
};

const char* to_string(ModelKind kind);
// "linear" | "logistic" | "sparse-logistic" | "softmax" | "mlp"; ConfigError
// otherwise.
ModelKind parse_model_kind(std::string_view name);

class Model {
 public:
  virtual ~Model() = default;
  virtual ModelKind kind() const = 0;
  virtual std::size_t num_features() const = 0;
  virtual std::size_t num_params() const = 0;

  // Adds d(sum of per-row losses over `rows`)/d(params) into `grad` and returns
  // that summed loss. Regularisation is not included: it belongs to the global
  // objective, added once after gradients are combined across workers.
  virtual double accumulate_gradient(std::span<const double> params, const Dataset& data,
                                     std::span<const std::size_t> rows,
                                     std::span<double> grad) const = 0;

  // Loss of one row given the model output (see predict).
  virtual double row_loss(double output, double label) const = 0;

  // Linear: the predicted value. Logistic: P(label = 1).
  virtual double predict(std::span<const double> params, const RowView& x) const = 0;
};

// Linear models over d features: params = [w_0 .. w_{d-1}, b] (d + 1 values),
// output f(x) = w.x + b.
//   kLinear:   per-row loss 0.5 * (f - y)^2            (so the mean is MSE / 2)
//   kLogistic, kSparseLogistic:
//              per-row loss log(1 + e^f) - y * f, y in {0, 1}
// The row arithmetic visits only a sparse row's stored entries, so on CSR
// data a gradient costs O(non-zeros), not O(rows x features).
std::unique_ptr<Model> make_linear_model(ModelKind kind, std::size_t num_features);

// The index of the intercept in a linear model's parameter buffer.
inline std::size_t intercept_index(std::size_t num_features) { return num_features; }

}  // namespace dtrain
