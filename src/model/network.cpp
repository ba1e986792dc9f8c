// Multilayer perceptrons: forward pass, losses and backpropagation. The float
// network runs its layers on dtrain's sgemm; the double one, used to check
// gradients, on the plain loops below.
#include "dtrain/model/network.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

#include "dtrain/data/partition.h"
#include "dtrain/error.h"
#include "dtrain/kernels/gemm.h"

namespace dtrain {

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kSigmoid:
      return "sigmoid";
  }
  return "?";
}

Activation parse_activation(std::string_view name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "sigmoid") return Activation::kSigmoid;
  throw ConfigError("unknown activation '" + std::string(name) +
                    "' (expected relu, tanh or sigmoid)");
}

const char* to_string(NetworkLoss loss) {
  switch (loss) {
    case NetworkLoss::kSoftmaxCrossEntropy:
      return "cross-entropy";
    case NetworkLoss::kSquared:
      return "squared";
  }
  return "?";
}

NetworkLoss parse_network_loss(std::string_view name) {
  if (name == "cross-entropy") return NetworkLoss::kSoftmaxCrossEntropy;
  if (name == "squared") return NetworkLoss::kSquared;
  throw ConfigError("unknown loss '" + std::string(name) + "' (expected cross-entropy or squared)");
}

const char* to_string(InitScheme scheme) {
  switch (scheme) {
    case InitScheme::kAuto:
      return "auto";
    case InitScheme::kHe:
      return "he";
    case InitScheme::kXavier:
      return "xavier";
    case InitScheme::kZero:
      return "zero";
  }
  return "?";
}

InitScheme parse_init_scheme(std::string_view name) {
  if (name == "auto") return InitScheme::kAuto;
  if (name == "he") return InitScheme::kHe;
  if (name == "xavier") return InitScheme::kXavier;
  if (name == "zero") return InitScheme::kZero;
  throw ConfigError("unknown initialisation '" + std::string(name) +
                    "' (expected auto, he, xavier or zero)");
}

namespace {

constexpr std::size_t kMaxSize = std::numeric_limits<std::size_t>::max();

// a * b + c, or nothing when it would overflow.
bool checked_mul_add(std::size_t a, std::size_t b, std::size_t c, std::size_t& result) {
  if (b != 0 && a > (kMaxSize - c) / b) return false;
  result = a * b + c;
  return true;
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// The generator behind init: SplitMix64, as in seeded_shuffle.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

// --- Layer arithmetic. Each has a float overload on sgemm and a double one
// --- on plain loops; the input of the first layer is always float.
using kernels::Transpose;

// z[rows x out] = x[rows x in] * w[out x in]^T
void gemm_forward(std::span<const float> x, std::size_t rows, std::size_t in,
                  std::span<const float> w, std::size_t out, std::span<float> z) {
  kernels::sgemm(Transpose::kNo, Transpose::kYes, rows, out, in, 1.0f, x, in, w, in, 0.0f, z, out);
}

template <class In>
void gemm_forward(std::span<const In> x, std::size_t rows, std::size_t in,
                  std::span<const double> w, std::size_t out, std::span<double> z) {
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < out; ++o) {
      double sum = 0.0;
      for (std::size_t i = 0; i < in; ++i)
        sum += static_cast<double>(x[r * in + i]) * w[o * in + i];
      z[r * out + o] = sum;
    }
  }
}

// gw[out x in] = dz[rows x out]^T * x[rows x in], added to gw unless
// `overwrite`.
void gemm_weight_grad(std::span<const float> dz, std::size_t rows, std::size_t out,
                      std::span<const float> x, std::size_t in, std::span<float> gw,
                      bool overwrite) {
  kernels::sgemm(Transpose::kYes, Transpose::kNo, out, in, rows, 1.0f, dz, out, x, in,
                 overwrite ? 0.0f : 1.0f, gw, in);
}

template <class In>
void gemm_weight_grad(std::span<const double> dz, std::size_t rows, std::size_t out,
                      std::span<const In> x, std::size_t in, std::span<double> gw, bool overwrite) {
  if (overwrite) std::fill(gw.begin(), gw.end(), 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < out; ++o) {
      const double d = dz[r * out + o];
      for (std::size_t i = 0; i < in; ++i) gw[o * in + i] += d * static_cast<double>(x[r * in + i]);
    }
  }
}

// dx[rows x in] = dz[rows x out] * w[out x in]
void gemm_input_grad(std::span<const float> dz, std::size_t rows, std::size_t out,
                     std::span<const float> w, std::size_t in, std::span<float> dx) {
  kernels::sgemm(Transpose::kNo, Transpose::kNo, rows, in, out, 1.0f, dz, out, w, in, 0.0f, dx, in);
}

void gemm_input_grad(std::span<const double> dz, std::size_t rows, std::size_t out,
                     std::span<const double> w, std::size_t in, std::span<double> dx) {
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < in; ++i) dx[r * in + i] = 0.0;
    for (std::size_t o = 0; o < out; ++o) {
      const double d = dz[r * out + o];
      for (std::size_t i = 0; i < in; ++i) dx[r * in + i] += d * w[o * in + i];
    }
  }
}

// z[r][j] = f(z[r][j] + b[j]) for every row r of z (rows x b.size()).
template <class T, class F>
void add_bias_and_map(std::span<T> z, std::size_t rows, std::span<const T> b, F f) {
  const std::size_t n = b.size();
  const T* bias = b.data();
  for (std::size_t r = 0; r < rows; ++r) {
    T* row = z.data() + r * n;
    for (std::size_t j = 0; j < n; ++j) row[j] = f(row[j] + bias[j]);
  }
}

template <class T>
void add_bias_and_activate(std::span<T> z, std::size_t rows, std::span<const T> b,
                           Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      add_bias_and_map(z, rows, b, [](T v) { return v > T(0) ? v : T(0); });
      return;
    case Activation::kTanh:
      add_bias_and_map(z, rows, b, [](T v) { return std::tanh(v); });
      return;
    case Activation::kSigmoid:
      // exp(-v) overflows to inf for very negative v, giving exactly 0.
      add_bias_and_map(z, rows, b, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
      return;
  }
}

// d *= f'(pre-activation), written in terms of the activation's output a,
// which is what the forward pass kept.
template <class T>
void multiply_by_derivative(std::span<T> d, std::span<const T> a, Activation activation) {
  const std::size_t n = d.size();
  T* dp = d.data();
  const T* ap = a.data();
  switch (activation) {
    case Activation::kRelu:
      for (std::size_t i = 0; i < n; ++i) dp[i] = ap[i] > T(0) ? dp[i] : T(0);
      return;
    case Activation::kTanh:
      for (std::size_t i = 0; i < n; ++i) dp[i] *= T(1) - ap[i] * ap[i];
      return;
    case Activation::kSigmoid:
      for (std::size_t i = 0; i < n; ++i) dp[i] *= ap[i] * (T(1) - ap[i]);
      return;
  }
}

// gb[j] += sum over rows of dz[r][j]
template <class T>
void add_column_sums(std::span<const T> dz, std::size_t rows, std::span<T> gb, bool overwrite) {
  const std::size_t n = gb.size();
  T* g = gb.data();
  if (overwrite) std::fill(gb.begin(), gb.end(), T(0));
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = dz.data() + r * n;
    for (std::size_t j = 0; j < n; ++j) g[j] += row[j];
  }
}

// Softmax of each row in place, with the row maximum subtracted first so
// that exp never overflows. Returns the row's log-sum-exp of the logits.
template <class T>
double softmax_row(T* z, std::size_t n) {
  T max = z[0];
  for (std::size_t k = 1; k < n; ++k) max = z[k] > max ? z[k] : max;
  T sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    z[k] = std::exp(z[k] - max);
    sum += z[k];
  }
  const T inv = T(1) / sum;
  for (std::size_t k = 0; k < n; ++k) z[k] *= inv;
  return static_cast<double>(max) + std::log(static_cast<double>(sum));
}

// Class ids are stored as floats; the loss turns them into indices.
std::size_t class_of(float label) { return static_cast<std::size_t>(label); }

void check_labels(std::span<const float> labels, const NetworkSpec& spec) {
  const bool class_ids = spec.loss == NetworkLoss::kSoftmaxCrossEntropy || spec.outputs > 1;
  const auto classes = static_cast<double>(spec.outputs);
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const double y = labels[r];
    if (class_ids) {
      // Written so that NaN fails too.
      if (!(y >= 0.0 && y < classes && y == std::floor(y))) {
        throw InputError("label of row " + std::to_string(r) + " is " + format_value(y) +
                         ", not a class id in [0, " + std::to_string(spec.outputs) + ")");
      }
    } else if (!std::isfinite(y)) {
      throw InputError("regression target of row " + std::to_string(r) + " is " + format_value(y));
    }
  }
}

}  // namespace

void validate(const NetworkSpec& spec) {
  if (spec.inputs == 0) throw ConfigError("network: the input count must be positive");
  if (spec.outputs == 0) throw ConfigError("network: the output count must be positive");
  for (std::size_t l = 0; l < spec.hidden.size(); ++l) {
    if (spec.hidden[l] == 0) {
      throw ConfigError("network: hidden layer " + std::to_string(l) + " has width 0");
    }
  }
  if (spec.loss == NetworkLoss::kSoftmaxCrossEntropy && spec.outputs < 2) {
    throw ConfigError("network: cross-entropy needs at least 2 outputs (classes), got " +
                      std::to_string(spec.outputs));
  }
  std::size_t total = 0;
  std::size_t in = spec.inputs;
  for (std::size_t l = 0; l <= spec.hidden.size(); ++l) {
    const std::size_t out = l < spec.hidden.size() ? spec.hidden[l] : spec.outputs;
    // (in + 1) * out: weights and biases.
    if (in == kMaxSize || !checked_mul_add(in + 1, out, total, total)) {
      throw ConfigError("network: the parameter count overflows");
    }
    in = out;
  }
}

std::vector<DenseLayout> dense_layout(const NetworkSpec& spec) {
  validate(spec);
  std::vector<DenseLayout> layers;
  layers.reserve(spec.hidden.size() + 1);
  std::size_t offset = 0;
  std::size_t in = spec.inputs;
  for (std::size_t l = 0; l <= spec.hidden.size(); ++l) {
    const std::size_t out = l < spec.hidden.size() ? spec.hidden[l] : spec.outputs;
    layers.push_back({in, out, offset, offset + in * out});
    offset += (in + 1) * out;
    in = out;
  }
  return layers;
}

std::size_t num_params(const NetworkSpec& spec) {
  const auto layers = dense_layout(spec);
  return layers.back().bias_offset + layers.back().out;
}

template <class T>
Network<T>::Network(NetworkSpec spec) : spec_(std::move(spec)), layers_(dense_layout(spec_)) {
  num_params_ = layers_.back().bias_offset + layers_.back().out;
  for (const DenseLayout& layer : layers_) widest_ = std::max(widest_, layer.out);
  hidden_.resize(spec_.hidden.size());
}

template <class T>
void Network<T>::init(std::span<T> params, std::uint64_t seed, InitScheme scheme) const {
  if (params.size() != num_params_) {
    throw std::invalid_argument("Network::init: " + std::to_string(params.size()) +
                                " parameters given, the network has " +
                                std::to_string(num_params_));
  }
  std::fill(params.begin(), params.end(), T(0));
  if (scheme == InitScheme::kAuto) {
    scheme = spec_.activation == Activation::kRelu ? InitScheme::kHe : InitScheme::kXavier;
  }
  if (scheme == InitScheme::kZero) return;
  SplitMix64 gen(seed);
  for (const DenseLayout& layer : layers_) {
    const auto weights = params.subspan(layer.weight_offset, layer.in * layer.out);
    if (scheme == InitScheme::kHe) {
      const double stddev = std::sqrt(2.0 / static_cast<double>(layer.in));
      for (std::size_t i = 0; i < weights.size(); i += 2) {
        // 1 - u1 lies in (0, 1], so the log is finite.
        const double radius = stddev * std::sqrt(-2.0 * std::log(1.0 - gen.uniform()));
        const double angle = 2.0 * std::numbers::pi * gen.uniform();
        weights[i] = static_cast<T>(radius * std::cos(angle));
        if (i + 1 < weights.size()) weights[i + 1] = static_cast<T>(radius * std::sin(angle));
      }
    } else {
      const double bound = std::sqrt(6.0 / static_cast<double>(layer.in + layer.out));
      for (T& w : weights) w = static_cast<T>(bound * (2.0 * gen.uniform() - 1.0));
    }
  }
}

template <class T>
void Network<T>::check_sizes(std::span<const T> params, std::span<const float> x,
                             std::size_t rows) const {
  if (params.size() != num_params_) {
    throw std::invalid_argument("Network: " + std::to_string(params.size()) +
                                " parameters given, the network has " +
                                std::to_string(num_params_));
  }
  std::size_t values = 0;
  if (!checked_mul_add(rows, spec_.inputs, 0, values) || x.size() != values) {
    throw std::invalid_argument("Network: " + std::to_string(x.size()) + " input values for " +
                                std::to_string(rows) + " rows of " + std::to_string(spec_.inputs));
  }
}

template <class T>
void Network<T>::reserve_rows(std::size_t rows) {
  if (rows <= capacity_rows_) return;
  for (std::size_t l = 0; l < hidden_.size(); ++l) hidden_[l].resize(rows * spec_.hidden[l]);
  delta_.resize(rows * widest_);
  delta_next_.resize(rows * widest_);
  capacity_rows_ = rows;
}

template <class T>
void Network<T>::forward(std::span<const T> params, std::span<const float> x, std::size_t rows,
                         std::span<T> logits) {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const DenseLayout& layer = layers_[l];
    const bool is_output = l + 1 == layers_.size();
    const std::span<T> z = is_output ? logits : std::span<T>(hidden_[l]).first(rows * layer.out);
    const auto weights = params.subspan(layer.weight_offset, layer.in * layer.out);
    const auto bias = params.subspan(layer.bias_offset, layer.out);
    if (l == 0) {
      gemm_forward(x, rows, layer.in, weights, layer.out, z);
    } else {
      const std::span<const T> in = std::span<const T>(hidden_[l - 1]).first(rows * layer.in);
      gemm_forward(in, rows, layer.in, weights, layer.out, z);
    }
    if (is_output) {
      add_bias_and_map(z, rows, bias, [](T v) { return v; });
    } else {
      add_bias_and_activate(z, rows, bias, spec_.activation);
    }
  }
}

template <class T>
double Network<T>::accumulate_gradient(std::span<const T> params, std::span<const float> x,
                                       std::size_t rows, std::span<const float> labels,
                                       std::span<T> grad) {
  return gradient(params, x, rows, labels, grad, false);
}

template <class T>
double Network<T>::compute_gradient(std::span<const T> params, std::span<const float> x,
                                    std::size_t rows, std::span<const float> labels,
                                    std::span<T> grad) {
  return gradient(params, x, rows, labels, grad, true);
}

template <class T>
double Network<T>::gradient(std::span<const T> params, std::span<const float> x, std::size_t rows,
                            std::span<const float> labels, std::span<T> grad, bool overwrite) {
  check_sizes(params, x, rows);
  if (labels.size() != rows || grad.size() != num_params_) {
    throw std::invalid_argument(
        std::string(overwrite ? "Network::compute_gradient: " : "Network::accumulate_gradient: ") +
        std::to_string(labels.size()) + " labels and " + std::to_string(grad.size()) +
        " gradient values for " + std::to_string(rows) + " rows and " +
        std::to_string(num_params_) + " parameters");
  }
  check_labels(labels, spec_);
  if (rows == 0) {
    if (overwrite) std::fill(grad.begin(), grad.end(), T(0));
    return 0.0;
  }
  reserve_rows(rows);

  // The output layer's linear outputs go straight into the delta buffer,
  // where the loss pass turns them into d loss / d z in place.
  const std::size_t outputs = spec_.outputs;
  const std::span<T> dz_out = std::span<T>(delta_).first(rows * outputs);
  forward(params, x, rows, dz_out);

  double loss = 0.0;
  if (spec_.loss == NetworkLoss::kSoftmaxCrossEntropy) {
    // Fused softmax and cross-entropy: loss = lse(z) - z_y, dz = p - onehot(y).
    for (std::size_t r = 0; r < rows; ++r) {
      T* z = dz_out.data() + r * outputs;
      const std::size_t y = class_of(labels[r]);
      const double logit_y = static_cast<double>(z[y]);
      loss += softmax_row(z, outputs) - logit_y;
      z[y] -= T(1);
    }
  } else {
    for (std::size_t r = 0; r < rows; ++r) {
      T* z = dz_out.data() + r * outputs;
      double row_loss = 0.0;
      if (outputs == 1) {
        z[0] -= static_cast<T>(labels[r]);
        row_loss = static_cast<double>(z[0]) * static_cast<double>(z[0]);
      } else {
        z[class_of(labels[r])] -= T(1);
        for (std::size_t k = 0; k < outputs; ++k) {
          row_loss += static_cast<double>(z[k]) * static_cast<double>(z[k]);
        }
      }
      loss += 0.5 * row_loss;
    }
  }

  // Backward: delta_ holds d loss / d z of layer l (rows x out).
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const DenseLayout& layer = layers_[l];
    const std::span<const T> dz = std::span<const T>(delta_).first(rows * layer.out);
    const auto grad_weights = grad.subspan(layer.weight_offset, layer.in * layer.out);
    if (l == 0) {
      gemm_weight_grad(dz, rows, layer.out, x, layer.in, grad_weights, overwrite);
    } else {
      const std::span<const T> in = std::span<const T>(hidden_[l - 1]).first(rows * layer.in);
      gemm_weight_grad(dz, rows, layer.out, in, layer.in, grad_weights, overwrite);
    }
    add_column_sums(dz, rows, grad.subspan(layer.bias_offset, layer.out), overwrite);
    // The first layer's input gradient would be d loss / d x: never needed.
    if (l == 0) break;
    const std::span<T> dx = std::span<T>(delta_next_).first(rows * layer.in);
    gemm_input_grad(dz, rows, layer.out, params.subspan(layer.weight_offset, layer.in * layer.out),
                    layer.in, dx);
    multiply_by_derivative(dx, std::span<const T>(hidden_[l - 1]).first(rows * layer.in),
                           spec_.activation);
    std::swap(delta_, delta_next_);
  }
  return loss;
}

template <class T>
void Network<T>::predict(std::span<const T> params, std::span<const float> x, std::size_t rows,
                         std::span<T> out) {
  check_sizes(params, x, rows);
  if (out.size() != rows * spec_.outputs) {
    throw std::invalid_argument("Network::predict: room for " + std::to_string(out.size()) +
                                " outputs, " + std::to_string(rows) + " rows of " +
                                std::to_string(spec_.outputs) + " needed");
  }
  if (rows == 0) return;
  reserve_rows(rows);
  forward(params, x, rows, out);
  if (spec_.loss == NetworkLoss::kSoftmaxCrossEntropy) {
    for (std::size_t r = 0; r < rows; ++r)
      softmax_row(out.data() + r * spec_.outputs, spec_.outputs);
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace dtrain
