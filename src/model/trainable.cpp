// The trainer's view of every model kind: the linear models over their row
// arithmetic, the networks over gathered dense batches.
#include "dtrain/model/trainable.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "dtrain/error.h"
#include "dtrain/util/aligned_vector.h"
#include "dtrain/util/distinct_indices.h"

namespace dtrain {

OutputKind ModelArchitecture::output_kind() const {
  switch (kind) {
    case ModelKind::kLinear:
      return OutputKind::kValue;
    case ModelKind::kLogistic:
    case ModelKind::kSparseLogistic:
      return OutputKind::kProbability;
    case ModelKind::kSoftmax:
    case ModelKind::kMlp:
      if (loss == NetworkLoss::kSoftmaxCrossEntropy) return OutputKind::kClassProbabilities;
      // Squared loss: one output regresses a value; several are fitted to
      // one-hot class targets.
      return classes >= 2 ? OutputKind::kClassScores : OutputKind::kValue;
  }
  return OutputKind::kValue;
}

std::size_t ModelArchitecture::output_width() const { return is_network() ? classes : 1; }

NetworkSpec ModelArchitecture::network_spec() const {
  NetworkSpec spec;
  spec.inputs = features;
  spec.hidden = kind == ModelKind::kMlp ? hidden : std::vector<std::size_t>{};
  spec.outputs = classes;
  spec.activation = activation;
  spec.loss = loss;
  return spec;
}

void ModelArchitecture::validate() const {
  if (features == 0) throw ConfigError("the data has no features");
  if (!is_network()) {
    if (!hidden.empty()) {
      throw ConfigError(std::string("--hidden applies to mlp models, not ") + to_string(kind));
    }
    return;
  }
  if (kind == ModelKind::kMlp && hidden.empty()) {
    throw ConfigError("an mlp model needs --hidden (layer widths, e.g. 256,128)");
  }
  if (kind == ModelKind::kSoftmax && !hidden.empty()) {
    throw ConfigError("a softmax model has no hidden layers (use --model mlp with --hidden)");
  }
  if (loss == NetworkLoss::kSoftmaxCrossEntropy && classes < 2) {
    throw ConfigError("a " + std::string(to_string(kind)) +
                      " classifier needs at least 2 classes in the labels, found " +
                      std::to_string(classes));
  }
  dtrain::validate(network_spec());
}

namespace {

// ---- linear models ---------------------------------------------------------

class LinearTrainable final : public TrainableModel<double> {
 public:
  explicit LinearTrainable(const ModelArchitecture& arch)
      : arch_(arch), model_(make_linear_model(arch.kind, arch.features)) {}

  const ModelArchitecture& architecture() const override { return arch_; }
  std::size_t num_params() const override { return model_->num_params(); }

  void init(std::span<double> params, std::uint64_t /*seed*/, InitScheme /*scheme*/) override {
    // Convex: zeros are as good a start as any, and keep every worker (and
    // every run) identical without a broadcast.
    std::fill(params.begin(), params.end(), 0.0);
  }

  double accumulate_gradient(std::span<const double> params, const Dataset& data,
                             std::span<const std::size_t> rows, std::span<double> grad) override {
    return model_->accumulate_gradient(params, data, rows, grad);
  }

  bool sparse_gradient() const override { return arch_.kind == ModelKind::kSparseLogistic; }

  void touched_params(const Dataset& data, std::span<const std::size_t> rows,
                      std::vector<std::size_t>& out) override {
    assert(sparse_gradient() && data.is_sparse());
    out.clear();
    if (rows.empty()) return;
    const std::size_t intercept = arch_.features;
    touched_.start(intercept, out);
    for (const std::size_t r : rows) {
      for (const std::uint32_t j : data.row(r).indices) touched_.add(j);
    }
    touched_.finish();
    out.push_back(intercept);
  }

  std::vector<std::pair<std::size_t, std::size_t>> penalized_ranges() const override {
    return {{0, arch_.features}};  // the intercept (last) is not penalised
  }

  void predict(std::span<const double> params, const Dataset& data,
               std::span<const std::size_t> rows, std::span<double> out) override {
    assert(out.size() == rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i)
      out[i] = model_->predict(params, data.row(rows[i]));
  }

 private:
  ModelArchitecture arch_;
  std::unique_ptr<Model> model_;
  DistinctIndices touched_;  // touched_params()
};

// ---- networks --------------------------------------------------------------

// Rows of a dataset copied into one contiguous row-major block, the layout
// the GEMM kernels want; sparse rows are expanded.
void gather_rows(const Dataset& data, std::span<const std::size_t> rows, std::size_t width,
                 AlignedVector<float>& x, std::vector<float>& labels) {
  x.resize(rows.size() * width);
  labels.resize(rows.size());
  const auto all_labels = data.labels();
  if (!data.is_sparse()) {
    assert(data.cols() == width);
    const auto values = data.dense_values();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(x.data() + i * width, values.data() + rows[i] * width, width * sizeof(float));
      labels[i] = all_labels[rows[i]];
    }
    return;
  }
  std::fill(x.begin(), x.end(), 0.0f);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const RowView row = data.row(rows[i]);
    float* dst = x.data() + i * width;
    for (std::size_t k = 0; k < row.indices.size(); ++k) {
      if (row.indices[k] < width) dst[row.indices[k]] = row.values[k];
    }
    labels[i] = all_labels[rows[i]];
  }
}

template <class T>
class NetworkTrainable final : public TrainableModel<T> {
 public:
  explicit NetworkTrainable(const ModelArchitecture& arch)
      : arch_(arch), net_(arch.network_spec()) {}

  const ModelArchitecture& architecture() const override { return arch_; }
  std::size_t num_params() const override { return net_.num_params(); }

  void init(std::span<T> params, std::uint64_t seed, InitScheme scheme) override {
    net_.init(params, seed, scheme);
  }

  double accumulate_gradient(std::span<const T> params, const Dataset& data,
                             std::span<const std::size_t> rows, std::span<T> grad) override {
    if (rows.empty()) return 0.0;
    gather_rows(data, rows, arch_.features, x_, labels_);
    return net_.accumulate_gradient(params, x_, rows.size(), labels_, grad);
  }

  double compute_gradient(std::span<const T> params, const Dataset& data,
                          std::span<const std::size_t> rows, std::span<T> grad) override {
    if (rows.empty()) {
      std::fill(grad.begin(), grad.end(), T{0});
      return 0.0;
    }
    gather_rows(data, rows, arch_.features, x_, labels_);
    return net_.compute_gradient(params, x_, rows.size(), labels_, grad);
  }

  std::vector<std::pair<std::size_t, std::size_t>> penalized_ranges() const override {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    for (const DenseLayout& layer : net_.layers()) {
      ranges.emplace_back(layer.weight_offset, layer.weight_offset + layer.in * layer.out);
    }
    return ranges;
  }

  void predict(std::span<const T> params, const Dataset& data, std::span<const std::size_t> rows,
               std::span<double> out) override {
    const std::size_t width = arch_.output_width();
    assert(out.size() == rows.size() * width);
    // Chunks bound the scratch memory whatever the evaluation set's size.
    constexpr std::size_t kChunk = 512;
    for (std::size_t begin = 0; begin < rows.size(); begin += kChunk) {
      const std::size_t n = std::min(kChunk, rows.size() - begin);
      gather_rows(data, rows.subspan(begin, n), arch_.features, x_, labels_);
      outputs_.resize(n * width);
      net_.predict(params, x_, n, outputs_);
      std::copy(outputs_.begin(), outputs_.end(),
                out.begin() + static_cast<std::ptrdiff_t>(begin * width));
    }
  }

 private:
  ModelArchitecture arch_;
  Network<T> net_;
  AlignedVector<float> x_;
  std::vector<float> labels_;
  AlignedVector<T> outputs_;
};

}  // namespace

std::unique_ptr<TrainableModel<double>> make_linear_trainable(const ModelArchitecture& arch) {
  arch.validate();
  if (arch.is_network()) {
    throw ConfigError(std::string("a ") + to_string(arch.kind) + " model is not a linear model");
  }
  return std::make_unique<LinearTrainable>(arch);
}

template <class T>
std::unique_ptr<TrainableModel<T>> make_network_trainable(const ModelArchitecture& arch) {
  arch.validate();
  if (!arch.is_network()) {
    throw ConfigError(std::string("a ") + to_string(arch.kind) + " model is not a network");
  }
  return std::make_unique<NetworkTrainable<T>>(arch);
}

template std::unique_ptr<TrainableModel<float>> make_network_trainable<float>(
    const ModelArchitecture&);
template std::unique_ptr<TrainableModel<double>> make_network_trainable<double>(
    const ModelArchitecture&);

}  // namespace dtrain
