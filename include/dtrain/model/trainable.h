// A model of any kind as the trainer, the evaluator and the CLI see it.
//
// Two families sit behind one interface: the convex linear models (linear,
// logistic, sparse logistic) over double-precision parameters, whose row-wise
// arithmetic works on dense and CSR rows alike, and the neural networks
// (softmax regression, MLPs) over float32 parameters, whose batches run on the
// GEMM kernels. The parameter scalar is a template argument so that one
// training loop serves both without converting the hot path.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtrain/data/dataset.h"
#include "dtrain/model/model.h"
#include "dtrain/model/network.h"

namespace dtrain {

// What the model's outputs mean, which decides the metrics.
enum class OutputKind {
  kValue,               // one predicted value per row (regression)
  kProbability,         // P(label = 1) per row (binary)
  kClassProbabilities,  // one probability per class per row (multiclass)
  kClassScores,         // one score per class per row, not probabilities: a
                        // squared-loss network trained on one-hot classes
};

// Everything needed to rebuild a model's arithmetic: saved in model files.
struct ModelArchitecture {
  ModelKind kind = ModelKind::kLinear;
  std::size_t features = 0;
  // Networks only.
  std::size_t classes = 0;  // softmax / MLP with cross-entropy: class count
  std::vector<std::size_t> hidden;
  Activation activation = Activation::kRelu;
  NetworkLoss loss = NetworkLoss::kSoftmaxCrossEntropy;

  bool is_network() const { return kind == ModelKind::kSoftmax || kind == ModelKind::kMlp; }
  OutputKind output_kind() const;
  // Values per row of predict(): 1, or the class count.
  std::size_t output_width() const;
  // The NetworkSpec of a softmax/MLP architecture.
  NetworkSpec network_spec() const;
  // ConfigError for inconsistent settings (hidden layers on a linear model,
  // an MLP without hidden layers, fewer than two classes, ...).
  void validate() const;
};

template <class T>
class TrainableModel {
 public:
  virtual ~TrainableModel() = default;
  virtual const ModelArchitecture& architecture() const = 0;
  virtual std::size_t num_params() const = 0;

  // The starting point: zeros for the convex models (every worker and run
  // identical without a broadcast; `scheme` does not apply), the seeded
  // scheme's draws for networks.
  virtual void init(std::span<T> params, std::uint64_t seed, InitScheme scheme) = 0;

  // Adds d(sum of the per-row losses of `rows`)/d(params) into grad and
  // returns that summed loss.
  virtual double accumulate_gradient(std::span<const T> params, const Dataset& data,
                                     std::span<const std::size_t> rows, std::span<T> grad) = 0;
  // Replaces grad by that gradient: the values accumulate_gradient() adds to
  // a zeroed grad (a zero may differ in sign). Models that can write it
  // directly skip the clearing.
  virtual double compute_gradient(std::span<const T> params, const Dataset& data,
                                  std::span<const std::size_t> rows, std::span<T> grad) {
    std::fill(grad.begin(), grad.end(), T{0});
    return accumulate_gradient(params, data, rows, grad);
  }

  // Whether a batch's gradient reaches only the parameters of the features
  // its rows hold (sparse logistic regression), which touched_params() then
  // lists, so that a step can move and update those alone.
  virtual bool sparse_gradient() const { return false; }
  // Replaces `out` by the indices of the parameters accumulate_gradient()
  // may change for `rows`, each once, in no particular order. Only for
  // models with a sparse gradient; O(non-zeros of the rows).
  virtual void touched_params(const Dataset& /*data*/, std::span<const std::size_t> /*rows*/,
                              std::vector<std::size_t>& out) {
    out.clear();
  }

  // Index ranges [begin, end) of the weights, which L2 regularisation
  // applies to (never the biases or the intercept).
  virtual std::vector<std::pair<std::size_t, std::size_t>> penalized_ranges() const = 0;

  // out: rows.size() x output_width(), in the units of output_kind().
  virtual void predict(std::span<const T> params, const Dataset& data,
                       std::span<const std::size_t> rows, std::span<double> out) = 0;
};

// The linear models, for ModelKind linear, logistic and sparse-logistic.
std::unique_ptr<TrainableModel<double>> make_linear_trainable(const ModelArchitecture& arch);
// Softmax regression and MLPs. Each object keeps scratch buffers: one per
// worker, not shared between threads.
template <class T>
std::unique_ptr<TrainableModel<T>> make_network_trainable(const ModelArchitecture& arch);

}  // namespace dtrain
