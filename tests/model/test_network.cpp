// Networks: finite-difference gradient checks against an independent double
// forward pass, closed forms for the models without hidden layers, float
// against double, numerical stability, initialisation, errors and a small
// training run.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dtrain/data/partition.h"
#include "dtrain/error.h"
#include "dtrain/model/network.h"

// Every operator new of the process is counted, so that a test can check that
// a warmed-up training step allocates nothing. The replacements are kept out
// of line so that GCC does not pair malloc with delete and warn.
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace dtrain {
namespace {

struct Batch {
  std::size_t rows = 0;
  std::vector<float> x;       // rows x inputs
  std::vector<float> labels;  // class ids, or regression targets
};

bool uses_class_ids(const NetworkSpec& spec) {
  return spec.loss == NetworkLoss::kSoftmaxCrossEntropy || spec.outputs > 1;
}

Batch random_batch(const NetworkSpec& spec, std::size_t rows, std::mt19937& gen) {
  std::normal_distribution<float> normal;
  Batch b;
  b.rows = rows;
  b.x.resize(rows * spec.inputs);
  for (float& v : b.x) v = normal(gen);
  for (std::size_t r = 0; r < rows; ++r) {
    b.labels.push_back(uses_class_ids(spec) ? static_cast<float>(gen() % spec.outputs)
                                            : 2.0f * normal(gen));
  }
  return b;
}

std::vector<double> random_params(std::size_t n, double scale, std::mt19937& gen) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> p(n);
  for (double& v : p) v = normal(gen);
  return p;
}

// An independent forward pass: naive double loops with its own parameter
// layout (W out x in row-major, then b, layer after layer).
struct Reference {
  double loss = 0.0;
  std::vector<double> outputs;  // probabilities (cross-entropy) or linear outputs
  std::vector<bool> positive;   // sign of every hidden pre-activation
  double min_abs_preactivation = std::numeric_limits<double>::infinity();
};

double activate(Activation a, double z) {
  switch (a) {
    case Activation::kRelu:
      return z > 0 ? z : 0;
    case Activation::kTanh:
      return std::tanh(z);
    case Activation::kSigmoid:
      return 1 / (1 + std::exp(-z));
  }
  return 0;
}

Reference reference_forward(const NetworkSpec& spec, const std::vector<double>& params,
                            const Batch& b) {
  std::vector<std::size_t> widths{spec.inputs};
  widths.insert(widths.end(), spec.hidden.begin(), spec.hidden.end());
  widths.push_back(spec.outputs);
  Reference ref;
  for (std::size_t r = 0; r < b.rows; ++r) {
    std::vector<double> a(b.x.begin() + static_cast<std::ptrdiff_t>(r * spec.inputs),
                          b.x.begin() + static_cast<std::ptrdiff_t>((r + 1) * spec.inputs));
    std::size_t offset = 0;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
      const std::size_t in = widths[l], out = widths[l + 1];
      const bool is_output = l + 2 == widths.size();
      std::vector<double> z(out);
      for (std::size_t o = 0; o < out; ++o) {
        double s = params[offset + in * out + o];
        for (std::size_t i = 0; i < in; ++i) s += params[offset + o * in + i] * a[i];
        z[o] = s;
        if (!is_output) {
          ref.positive.push_back(s > 0);
          ref.min_abs_preactivation = std::min(ref.min_abs_preactivation, std::abs(s));
        }
      }
      offset += (in + 1) * out;
      if (!is_output) {
        for (double& v : z) v = activate(spec.activation, v);
      }
      a = std::move(z);
    }
    if (spec.loss == NetworkLoss::kSoftmaxCrossEntropy) {
      const double max = *std::max_element(a.begin(), a.end());
      double sum = 0;
      for (double v : a) sum += std::exp(v - max);
      const double lse = max + std::log(sum);
      ref.loss += lse - a[static_cast<std::size_t>(b.labels[r])];
      for (double& v : a) v = std::exp(v - lse);
    } else {
      for (std::size_t k = 0; k < a.size(); ++k) {
        const double t =
            spec.outputs == 1 ? b.labels[r] : (k == static_cast<std::size_t>(b.labels[r]) ? 1 : 0);
        ref.loss += 0.5 * (a[k] - t) * (a[k] - t);
      }
    }
    ref.outputs.insert(ref.outputs.end(), a.begin(), a.end());
  }
  return ref;
}

std::string describe(const NetworkSpec& spec, std::size_t rows) {
  std::ostringstream s;
  s << spec.inputs;
  for (std::size_t h : spec.hidden) s << '-' << h;
  s << '-' << spec.outputs << ' ' << to_string(spec.activation) << ' ' << to_string(spec.loss)
    << ", " << rows << " rows";
  return s.str();
}

// The analytic gradient of Network<double> against fourth-order central
// differences of the reference loss. Perturbations that move any ReLU
// pre-activation across 0 (a kink, where the difference quotient is
// meaningless) are skipped and counted.
void check_gradient(const NetworkSpec& spec, std::size_t rows, unsigned seed) {
  SCOPED_TRACE(describe(spec, rows));
  std::mt19937 gen(seed);
  Network<double> net(spec);
  const Batch b = random_batch(spec, rows, gen);
  const std::vector<double> params = random_params(net.num_params(), 0.7, gen);

  std::vector<double> grad(net.num_params(), 0.0);
  const double loss = net.accumulate_gradient(params, b.x, rows, b.labels, grad);
  const Reference base = reference_forward(spec, params, b);
  EXPECT_NEAR(loss, base.loss, 1e-12 * std::max(1.0, std::abs(base.loss)));

  const double h = 1e-4;
  std::size_t skipped = 0;
  double max_rel = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    double f[4];
    const double steps[4] = {2 * h, h, -h, -2 * h};
    bool kink = false;
    for (int s = 0; s < 4; ++s) {
      auto p = params;
      p[i] += steps[s];
      const Reference ref = reference_forward(spec, p, b);
      f[s] = ref.loss;
      if (spec.activation == Activation::kRelu && ref.positive != base.positive) kink = true;
    }
    if (kink) {
      ++skipped;
      continue;
    }
    const double numeric = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
    const double analytic = grad[i];
    // Relative error, with a floor on the scale so that components that are
    // zero in exact arithmetic are held to an absolute 1e-9.
    const double rel =
        std::abs(analytic - numeric) / std::max(1e-3, std::abs(analytic) + std::abs(numeric));
    max_rel = std::max(max_rel, rel);
    EXPECT_LT(rel, 1e-6) << "param " << i << ": analytic " << analytic << " numeric " << numeric;
  }
  EXPECT_LE(skipped * 10, params.size()) << skipped << " parameters skipped at ReLU kinks";
}

TEST(NetworkGradient, MatchesFiniteDifferences) {
  unsigned seed = 1;
  for (NetworkLoss loss : {NetworkLoss::kSoftmaxCrossEntropy, NetworkLoss::kSquared}) {
    for (Activation act : {Activation::kRelu, Activation::kTanh, Activation::kSigmoid}) {
      for (std::size_t depth = 0; depth <= 2; ++depth) {
        // Without hidden layers the activation plays no part: one pass does.
        if (depth == 0 && act != Activation::kRelu) continue;
        for (int trial = 0; trial < 3; ++trial) {
          std::mt19937 shape_gen(++seed);
          auto between = [&](std::size_t lo, std::size_t hi) {
            return lo + shape_gen() % (hi - lo + 1);
          };
          NetworkSpec spec;
          spec.inputs = between(1, 6);
          for (std::size_t d = 0; d < depth; ++d) spec.hidden.push_back(between(1, 6));
          spec.activation = act;
          spec.loss = loss;
          if (loss == NetworkLoss::kSoftmaxCrossEntropy) {
            spec.outputs = between(2, 5);
          } else {
            // Squared loss: a regression target (outputs == 1) and one-hot
            // targets, in turn.
            spec.outputs = trial % 2 == 0 ? 1 : between(2, 4);
          }
          const std::size_t rows = trial == 0 ? 1 : between(2, 9);
          check_gradient(spec, rows, seed * 7919u);
        }
      }
    }
  }
}

// Network<float> against Network<double> on the same (float) parameters.
void expect_float_matches_double(const NetworkSpec& spec, std::size_t rows, unsigned seed) {
  SCOPED_TRACE(describe(spec, rows));
  std::mt19937 gen(seed);
  Network<float> net_f(spec);
  Network<double> net_d(spec);
  std::vector<float> params_f(net_f.num_params());
  net_f.init(params_f, seed);
  // Non-zero biases, so that their path is compared too.
  for (const DenseLayout& layer : net_f.layers()) {
    for (std::size_t j = 0; j < layer.out; ++j) {
      params_f[layer.bias_offset + j] = 0.1f * static_cast<float>(j % 3) - 0.1f;
    }
  }
  const std::vector<double> params_d(params_f.begin(), params_f.end());
  const Batch b = random_batch(spec, rows, gen);

  std::vector<float> grad_f(params_f.size(), 0.0f);
  std::vector<double> grad_d(params_f.size(), 0.0);
  const double loss_f = net_f.accumulate_gradient(params_f, b.x, rows, b.labels, grad_f);
  const double loss_d = net_d.accumulate_gradient(params_d, b.x, rows, b.labels, grad_d);
  EXPECT_NEAR(loss_f, loss_d, 1e-5 * std::abs(loss_d));
  double diff2 = 0, norm2 = 0;
  for (std::size_t i = 0; i < grad_d.size(); ++i) {
    diff2 += (grad_f[i] - grad_d[i]) * (grad_f[i] - grad_d[i]);
    norm2 += grad_d[i] * grad_d[i];
  }
  ASSERT_GT(norm2, 0.0);
  EXPECT_LT(std::sqrt(diff2 / norm2), 1e-5);

  std::vector<float> out_f(rows * spec.outputs);
  std::vector<double> out_d(rows * spec.outputs);
  net_f.predict(params_f, b.x, rows, out_f);
  net_d.predict(params_d, b.x, rows, out_d);
  for (std::size_t i = 0; i < out_d.size(); ++i) {
    EXPECT_NEAR(out_f[i], out_d[i], 1e-5 * std::max(1.0, std::abs(out_d[i]))) << "output " << i;
  }
}

TEST(NetworkFloat, MatchesDouble) {
  for (Activation act : {Activation::kRelu, Activation::kTanh, Activation::kSigmoid}) {
    NetworkSpec spec{.inputs = 50, .hidden = {32, 16}, .outputs = 10, .activation = act};
    expect_float_matches_double(spec, 64, 11);
    spec.loss = NetworkLoss::kSquared;
    expect_float_matches_double(spec, 33, 12);
  }
  expect_float_matches_double({.inputs = 40, .hidden = {}, .outputs = 7}, 20, 13);
  expect_float_matches_double(
      {.inputs = 30, .hidden = {8}, .outputs = 1, .loss = NetworkLoss::kSquared}, 1, 14);
}

// After a large batch the scratch buffers are bigger than a later, smaller
// batch needs: results must not depend on that history.
TEST(NetworkFloat, ResultsDoNotDependOnEarlierBatchSizes) {
  const NetworkSpec spec{.inputs = 20, .hidden = {16, 12}, .outputs = 4};
  std::mt19937 gen(3);
  const Batch big = random_batch(spec, 100, gen);
  const Batch small = random_batch(spec, 7, gen);
  Network<float> used(spec), fresh(spec);
  std::vector<float> params(used.num_params());
  used.init(params, 5);
  std::vector<float> scratch(params.size(), 0.0f);
  used.accumulate_gradient(params, big.x, big.rows, big.labels, scratch);
  std::vector<float> g_used(params.size(), 0.0f), g_fresh(params.size(), 0.0f);
  const double l_used = used.accumulate_gradient(params, small.x, small.rows, small.labels, g_used);
  const double l_fresh =
      fresh.accumulate_gradient(params, small.x, small.rows, small.labels, g_fresh);
  EXPECT_EQ(l_used, l_fresh);
  EXPECT_EQ(g_used, g_fresh);
}

// Scratch is sized by the largest batch seen: later calls at that size or
// below, predict included, allocate nothing.
template <class T>
void expect_no_allocation_after_warm_up() {
  const NetworkSpec spec{.inputs = 20, .hidden = {16, 8}, .outputs = 4};
  std::mt19937 gen(4);
  const Batch b = random_batch(spec, 64, gen);
  Network<T> net(spec);
  std::vector<T> params(net.num_params()), grad(params.size(), T(0)), out(64 * 4);
  net.init(params, 3);
  net.accumulate_gradient(params, b.x, 64, b.labels, grad);
  const std::size_t before = g_allocations.load();
  net.accumulate_gradient(params, b.x, 64, b.labels, grad);
  net.accumulate_gradient(params, std::span(b.x).first(32 * 20), 32, std::span(b.labels).first(32),
                          grad);
  net.predict(params, b.x, 64, out);
  EXPECT_EQ(g_allocations.load(), before);
}

TEST(NetworkScratch, NoAllocationAfterWarmUp) {
  expect_no_allocation_after_warm_up<float>();
  expect_no_allocation_after_warm_up<double>();
}

// Linear regression in closed form: r = Xw + b - y, grad w = X^T r,
// grad b = sum r, loss = 0.5 |r|^2.
template <class T>
void expect_linear_regression_closed_form(double tolerance) {
  const NetworkSpec spec{.inputs = 6, .hidden = {}, .outputs = 1, .loss = NetworkLoss::kSquared};
  std::mt19937 gen(21);
  const Batch b = random_batch(spec, 25, gen);
  const std::vector<double> p = random_params(num_params(spec), 1.0, gen);
  const std::vector<T> params(p.begin(), p.end());
  std::vector<double> gw(6, 0.0);
  double gb = 0, loss = 0;
  for (std::size_t r = 0; r < b.rows; ++r) {
    double f = static_cast<double>(params[6]);
    for (std::size_t j = 0; j < 6; ++j) f += static_cast<double>(params[j]) * b.x[r * 6 + j];
    const double res = f - b.labels[r];
    for (std::size_t j = 0; j < 6; ++j) gw[j] += b.x[r * 6 + j] * res;
    gb += res;
    loss += 0.5 * res * res;
  }
  Network<T> net(spec);
  std::vector<T> grad(7, T(0));
  EXPECT_NEAR(net.accumulate_gradient(params, b.x, b.rows, b.labels, grad), loss, tolerance * loss);
  for (std::size_t j = 0; j < 6; ++j) {
    EXPECT_NEAR(static_cast<double>(grad[j]), gw[j], tolerance * std::max(1.0, std::abs(gw[j])));
  }
  EXPECT_NEAR(static_cast<double>(grad[6]), gb, tolerance * std::max(1.0, std::abs(gb)));
}

TEST(NetworkClosedForm, LinearRegression) {
  expect_linear_regression_closed_form<double>(1e-12);
  expect_linear_regression_closed_form<float>(1e-5);
}

// Softmax regression in closed form: grad W = (P - Y)^T X, grad b = column
// sums of P - Y, with P the softmax probabilities and Y the one-hot labels.
TEST(NetworkClosedForm, SoftmaxRegression) {
  const NetworkSpec spec{.inputs = 4, .hidden = {}, .outputs = 3};
  std::mt19937 gen(22);
  const Batch b = random_batch(spec, 12, gen);
  const std::vector<double> params = random_params(num_params(spec), 1.0, gen);
  std::vector<double> expected(params.size(), 0.0);
  for (std::size_t r = 0; r < b.rows; ++r) {
    double z[3], max = -1e300, sum = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      z[k] = params[12 + k];
      for (std::size_t j = 0; j < 4; ++j) z[k] += params[k * 4 + j] * b.x[r * 4 + j];
      max = std::max(max, z[k]);
    }
    for (double v : z) sum += std::exp(v - max);
    for (std::size_t k = 0; k < 3; ++k) {
      const double d = std::exp(z[k] - max) / sum - (b.labels[r] == static_cast<float>(k) ? 1 : 0);
      for (std::size_t j = 0; j < 4; ++j) expected[k * 4 + j] += d * b.x[r * 4 + j];
      expected[12 + k] += d;
    }
  }
  Network<double> net(spec);
  std::vector<double> grad(params.size(), 0.0);
  net.accumulate_gradient(params, b.x, b.rows, b.labels, grad);
  for (std::size_t i = 0; i < grad.size(); ++i) EXPECT_NEAR(grad[i], expected[i], 1e-12) << i;
}

TEST(NetworkLayout, IsContiguousLayerByLayer) {
  const NetworkSpec spec{.inputs = 3, .hidden = {4}, .outputs = 2};
  const auto layers = dense_layout(spec);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].in, 3u);
  EXPECT_EQ(layers[0].out, 4u);
  EXPECT_EQ(layers[0].weight_offset, 0u);
  EXPECT_EQ(layers[0].bias_offset, 12u);
  EXPECT_EQ(layers[1].in, 4u);
  EXPECT_EQ(layers[1].out, 2u);
  EXPECT_EQ(layers[1].weight_offset, 16u);
  EXPECT_EQ(layers[1].bias_offset, 24u);
  EXPECT_EQ(num_params(spec), 26u);
  EXPECT_EQ(num_params({.inputs = 784, .hidden = {256, 128}, .outputs = 10}),
            784u * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  Network<float> net(spec);
  EXPECT_EQ(net.num_params(), 26u);
  EXPECT_EQ(net.layers().size(), 2u);
}

// Logits of +-1e4: a naive softmax overflows exp; the stable one gives
// probabilities (1, 0, 0) and the loss lse(z) - z_y = 1e4 - (-1e4).
template <class T>
void expect_stable_for_huge_logits() {
  const NetworkSpec spec{.inputs = 1, .hidden = {}, .outputs = 3};
  Network<T> net(spec);
  const std::vector<T> params = {T(1e4), T(-1e4), T(0), T(0), T(0), T(0)};  // W, then b
  const std::vector<float> x = {1.0f, -1.0f};
  std::vector<T> probs(6);
  net.predict(params, x, 2, probs);
  for (std::size_t r = 0; r < 2; ++r) {
    T sum = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      ASSERT_TRUE(std::isfinite(probs[r * 3 + k]));
      sum += probs[r * 3 + k];
    }
    EXPECT_NEAR(static_cast<double>(sum), 1.0, 1e-6);
  }
  EXPECT_EQ(probs[0], T(1));
  EXPECT_EQ(probs[1], T(0));
  EXPECT_EQ(probs[5], T(0));  // second row: logits (-1e4, 1e4, 0)

  std::vector<T> grad(6, T(0));
  const std::vector<float> labels = {1.0f, 0.0f};
  const double loss = net.accumulate_gradient(params, x, 2, labels, grad);
  EXPECT_NEAR(loss, 4e4, 1e-6 * 4e4);
  // dz = p - onehot: row 0 (1, -1, 0) at x = 1, row 1 (-1, 1, 0) at x = -1.
  const std::vector<double> expected = {2, -2, 0, 0, 0, 0};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(static_cast<double>(grad[i]), expected[i], 1e-6);
}

TEST(NetworkStability, HugeLogits) {
  expect_stable_for_huge_logits<float>();
  expect_stable_for_huge_logits<double>();
}

TEST(NetworkStability, SaturatedActivationsStayFinite) {
  for (Activation act : {Activation::kTanh, Activation::kSigmoid, Activation::kRelu}) {
    const NetworkSpec spec{.inputs = 2, .hidden = {3}, .outputs = 2, .activation = act};
    Network<float> net(spec);
    std::vector<float> params(net.num_params(), 500.0f);
    const std::vector<float> x = {100.0f, -300.0f, -200.0f, 100.0f};
    const std::vector<float> labels = {0.0f, 1.0f};
    std::vector<float> grad(params.size(), 0.0f);
    EXPECT_TRUE(std::isfinite(net.accumulate_gradient(params, x, 2, labels, grad)));
    for (float g : grad) EXPECT_TRUE(std::isfinite(g)) << to_string(act);
  }
}

template <class T>
void expect_gradient_accumulates(double tolerance) {
  const NetworkSpec spec{
      .inputs = 9, .hidden = {7, 5}, .outputs = 4, .activation = Activation::kTanh};
  Network<T> net(spec);
  std::mt19937 gen(31);
  const Batch b = random_batch(spec, 10, gen);
  std::vector<T> params(net.num_params());
  net.init(params, 8);
  std::vector<T> once(params.size(), T(0));
  const double loss = net.accumulate_gradient(params, b.x, b.rows, b.labels, once);
  // Twice from zero: twice the gradient.
  std::vector<T> twice(params.size(), T(0));
  net.accumulate_gradient(params, b.x, b.rows, b.labels, twice);
  EXPECT_EQ(net.accumulate_gradient(params, b.x, b.rows, b.labels, twice), loss);
  // From a non-zero start: start + gradient.
  std::vector<T> start(params.size());
  for (std::size_t i = 0; i < start.size(); ++i) start[i] = static_cast<T>(i % 5) - T(2);
  std::vector<T> added = start;
  net.accumulate_gradient(params, b.x, b.rows, b.labels, added);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double g = static_cast<double>(once[i]);
    EXPECT_NEAR(static_cast<double>(twice[i]), 2 * g, tolerance * std::max(1.0, std::abs(g))) << i;
    EXPECT_NEAR(static_cast<double>(added[i]), static_cast<double>(start[i]) + g,
                tolerance * std::max(1.0, std::abs(g)))
        << i;
  }
}

TEST(NetworkGradient, AddsIntoGrad) {
  expect_gradient_accumulates<double>(1e-12);
  expect_gradient_accumulates<float>(1e-5);
}

// compute_gradient writes what accumulate_gradient adds to a zeroed buffer
// into every entry (the buffer starts as NaN), for every layer count and
// loss, at the training shapes' kernels and at odd sizes. The values are
// equal; only a zero may differ in sign (a sum of -0 products is -0, and
// 0 + -0 is +0), which no update rule turns into a different value.
template <class T>
void expect_compute_equals_accumulate_into_zeros(const NetworkSpec& spec, std::size_t rows,
                                                 unsigned seed) {
  std::mt19937 gen(seed);
  const Batch b = random_batch(spec, rows, gen);
  Network<T> net(spec);
  std::vector<T> params(net.num_params());
  net.init(params, seed);
  std::vector<T> added(params.size(), T(0));
  std::vector<T> written(params.size(), std::numeric_limits<T>::quiet_NaN());
  const double loss_added = net.accumulate_gradient(params, b.x, rows, b.labels, added);
  const double loss_written = net.compute_gradient(params, b.x, rows, b.labels, written);
  EXPECT_EQ(loss_written, loss_added);
  ASSERT_EQ(written.size(), added.size());
  for (std::size_t j = 0; j < added.size(); ++j) {
    ASSERT_EQ(written[j], added[j]) << "parameter " << j;
    if (added[j] != T(0)) {
      ASSERT_EQ(std::memcmp(&written[j], &added[j], sizeof(T)), 0) << "parameter " << j;
    }
  }
}

TEST(NetworkGradient, ComputeEqualsAccumulateIntoZeros) {
  for (const std::size_t rows : {std::size_t{128}, std::size_t{7}, std::size_t{0}}) {
    SCOPED_TRACE(rows);
    expect_compute_equals_accumulate_into_zeros<float>(
        {.inputs = 784, .hidden = {256, 128}, .outputs = 10}, rows, 21);
    expect_compute_equals_accumulate_into_zeros<float>(
        {.inputs = 13, .hidden = {5}, .outputs = 1, .loss = NetworkLoss::kSquared}, rows, 22);
    expect_compute_equals_accumulate_into_zeros<float>({.inputs = 40, .hidden = {}, .outputs = 7},
                                                       rows, 23);
    expect_compute_equals_accumulate_into_zeros<double>(
        {.inputs = 20, .hidden = {16, 12}, .outputs = 4, .activation = Activation::kTanh}, rows,
        24);
  }
}

// predict against the reference forward pass, and the loss that
// accumulate_gradient reports against the probabilities predict returns.
TEST(NetworkPredict, MatchesForwardPass) {
  for (NetworkLoss loss : {NetworkLoss::kSoftmaxCrossEntropy, NetworkLoss::kSquared}) {
    const NetworkSpec spec{.inputs = 5,
                           .hidden = {6, 4},
                           .outputs = 3,
                           .activation = Activation::kSigmoid,
                           .loss = loss};
    SCOPED_TRACE(to_string(loss));
    std::mt19937 gen(41);
    const Batch b = random_batch(spec, 8, gen);
    const std::vector<double> params = random_params(num_params(spec), 1.0, gen);
    Network<double> net(spec);
    std::vector<double> out(b.rows * 3);
    net.predict(params, b.x, b.rows, out);
    const Reference ref = reference_forward(spec, params, b);
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref.outputs[i], 1e-12);
    if (loss == NetworkLoss::kSoftmaxCrossEntropy) {
      double nll = 0;
      for (std::size_t r = 0; r < b.rows; ++r) {
        double sum = 0;
        for (std::size_t k = 0; k < 3; ++k) sum += out[r * 3 + k];
        EXPECT_NEAR(sum, 1.0, 1e-12);
        nll -= std::log(out[r * 3 + static_cast<std::size_t>(b.labels[r])]);
      }
      std::vector<double> grad(params.size(), 0.0);
      EXPECT_NEAR(net.accumulate_gradient(params, b.x, b.rows, b.labels, grad), nll, 1e-10);
    }
  }
}

// --- Initialisation.

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double stddev_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

std::vector<double> first_layer_weights(const Network<double>& net,
                                        const std::vector<double>& params) {
  const DenseLayout& l = net.layers()[0];
  return {params.begin() + static_cast<std::ptrdiff_t>(l.weight_offset),
          params.begin() + static_cast<std::ptrdiff_t>(l.weight_offset + l.in * l.out)};
}

TEST(NetworkInit, IsDeterministicPerSeed) {
  const NetworkSpec spec{.inputs = 30, .hidden = {20, 10}, .outputs = 5};
  Network<float> net(spec);
  for (InitScheme scheme : {InitScheme::kHe, InitScheme::kXavier}) {
    SCOPED_TRACE(to_string(scheme));
    std::vector<float> a(net.num_params()), b(net.num_params()), c(net.num_params());
    net.init(a, 42, scheme);
    net.init(b, 42, scheme);
    net.init(c, 43, scheme);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    std::size_t same = 0;
    for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == c[i] ? 1 : 0;
    std::size_t biases = 0;
    for (const DenseLayout& l : net.layers()) {
      biases += l.out;
      for (std::size_t j = 0; j < l.out; ++j) EXPECT_EQ(a[l.bias_offset + j], 0.0f);
    }
    EXPECT_EQ(same, biases);  // only the zero biases coincide
    // float and double draw the same numbers, rounded.
    Network<double> net_d(spec);
    std::vector<double> d(net.num_params());
    net_d.init(d, 42, scheme);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], static_cast<float>(d[i])) << i;
  }
}

TEST(NetworkInit, HeHasStddevSqrtTwoOverFanIn) {
  const NetworkSpec spec{.inputs = 1000, .hidden = {400}, .outputs = 2};
  Network<double> net(spec);
  std::vector<double> params(net.num_params());
  net.init(params, 7, InitScheme::kHe);
  const std::vector<double> w = first_layer_weights(net, params);
  const double sigma = std::sqrt(2.0 / 1000);
  EXPECT_NEAR(stddev_of(w), sigma, 0.01 * sigma);
  EXPECT_NEAR(mean_of(w), 0.0, 4 * sigma / std::sqrt(static_cast<double>(w.size())));
  // Normal, not merely of the right spread: P(|w| < sigma) = 0.6827.
  const auto inside =
      std::count_if(w.begin(), w.end(), [&](double v) { return std::abs(v) < sigma; });
  EXPECT_NEAR(static_cast<double>(inside) / static_cast<double>(w.size()), 0.6827, 0.005);
  // kAuto is He for ReLU.
  std::vector<double> automatic(params.size());
  net.init(automatic, 7);
  EXPECT_EQ(automatic, params);
}

TEST(NetworkInit, XavierIsUniformWithinBound) {
  const NetworkSpec spec{
      .inputs = 300, .hidden = {200}, .outputs = 2, .activation = Activation::kTanh};
  Network<double> net(spec);
  std::vector<double> params(net.num_params());
  net.init(params, 9, InitScheme::kXavier);
  const std::vector<double> w = first_layer_weights(net, params);
  const double bound = std::sqrt(6.0 / 500);
  double max_abs = 0;
  for (double v : w) max_abs = std::max(max_abs, std::abs(v));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.99 * bound);
  EXPECT_NEAR(stddev_of(w), bound / std::sqrt(3.0), 0.01 * bound);
  // The documented generator: SplitMix64 from the seed, u = (draw >> 11) / 2^53,
  // w = bound * (2u - 1), row-major from the first layer on.
  std::uint64_t state = 9;
  for (std::size_t i = 0; i < 3; ++i) {
    const double u = static_cast<double>(mix64(state += 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
    EXPECT_EQ(w[i], bound * (2 * u - 1)) << i;
  }
  // kAuto is Xavier for tanh and sigmoid.
  std::vector<double> automatic(params.size());
  net.init(automatic, 9);
  EXPECT_EQ(automatic, params);
}

TEST(NetworkInit, ZeroAndSizeErrors) {
  Network<float> net({.inputs = 4, .hidden = {}, .outputs = 3});
  std::vector<float> params(net.num_params(), 1.0f);
  net.init(params, 1, InitScheme::kZero);
  for (float v : params) EXPECT_EQ(v, 0.0f);
  std::vector<float> wrong(net.num_params() + 1);
  EXPECT_THROW(net.init(wrong, 1), std::invalid_argument);
}

// --- Errors.

template <class E>
void expect_throw_with(const std::function<void()>& f, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(NetworkErrors, InvalidLabelsAreReportedBeforeGradIsTouched) {
  const NetworkSpec spec{.inputs = 2, .hidden = {3}, .outputs = 3};
  Network<float> net(spec);
  std::vector<float> params(net.num_params());
  net.init(params, 1);
  const std::vector<float> x(6, 0.5f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float bad : {-1.0f, 3.0f, 1.5f, nan, std::numeric_limits<float>::infinity()}) {
    std::vector<float> grad(params.size(), 0.0f);
    const std::vector<float> labels = {0.0f, 2.0f, bad};
    expect_throw_with<InputError>([&] { net.accumulate_gradient(params, x, 3, labels, grad); },
                                  "row 2");
    for (float g : grad) EXPECT_EQ(g, 0.0f);
  }
  expect_throw_with<InputError>(
      [&] {
        std::vector<float> grad(params.size(), 0.0f);
        net.accumulate_gradient(params, x, 3, std::vector<float>{0.0f, 1.5f, 2.0f}, grad);
      },
      "1.5");
  // Squared loss with one-hot targets needs class ids too.
  Network<float> onehot({.inputs = 2, .hidden = {}, .outputs = 3, .loss = NetworkLoss::kSquared});
  std::vector<float> p2(onehot.num_params(), 0.0f), g2(p2.size(), 0.0f);
  expect_throw_with<InputError>(
      [&] {
        onehot.accumulate_gradient(p2, x, 3, std::vector<float>{0.0f, 0.5f, 1.0f}, g2);
      },
      "not a class id");
  // Regression targets are any finite number.
  Network<float> regression(
      {.inputs = 2, .hidden = {}, .outputs = 1, .loss = NetworkLoss::kSquared});
  std::vector<float> p3(regression.num_params(), 0.0f), g3(p3.size(), 0.0f);
  EXPECT_NO_THROW(
      regression.accumulate_gradient(p3, x, 3, std::vector<float>{-7.25f, 0.5f, 1e6f}, g3));
  expect_throw_with<InputError>(
      [&] {
        regression.accumulate_gradient(p3, x, 3, std::vector<float>{0.0f, nan, 1.0f}, g3);
      },
      "row 1");
}

TEST(NetworkErrors, InvalidSpecs) {
  expect_throw_with<ConfigError>([] { validate({.inputs = 0, .hidden = {}, .outputs = 3}); },
                                 "input");
  expect_throw_with<ConfigError>([] { validate({.inputs = 4, .hidden = {}, .outputs = 0}); },
                                 "output");
  expect_throw_with<ConfigError>(
      [] {
        validate({.inputs = 4, .hidden = {5, 0}, .outputs = 3});
      },
      "hidden layer 1");
  expect_throw_with<ConfigError>([] { validate({.inputs = 4, .hidden = {}, .outputs = 1}); },
                                 "cross-entropy");
  expect_throw_with<ConfigError>(
      [] {
        const std::size_t huge = std::numeric_limits<std::size_t>::max() / 2;
        validate({.inputs = huge, .hidden = {huge}, .outputs = 2});
      },
      "overflow");
  EXPECT_THROW(Network<float>({.inputs = 4, .hidden = {}, .outputs = 1}), ConfigError);
  EXPECT_NO_THROW(
      validate({.inputs = 4, .hidden = {}, .outputs = 1, .loss = NetworkLoss::kSquared}));
}

TEST(NetworkErrors, MismatchedSizes) {
  Network<float> net({.inputs = 3, .hidden = {}, .outputs = 2});
  std::vector<float> params(net.num_params(), 0.0f), grad(params.size(), 0.0f);
  const std::vector<float> x(6, 0.0f), labels(2, 0.0f);
  std::vector<float> out(4);
  EXPECT_THROW(net.accumulate_gradient(params, std::span(x).first(5), 2, labels, grad),
               std::invalid_argument);
  EXPECT_THROW(net.accumulate_gradient(params, x, 2, std::span(labels).first(1), grad),
               std::invalid_argument);
  EXPECT_THROW(net.accumulate_gradient(std::span(params).first(7), x, 2, labels, grad),
               std::invalid_argument);
  EXPECT_THROW(net.predict(params, x, 2, std::span(out).first(3)), std::invalid_argument);
  EXPECT_EQ(net.accumulate_gradient(params, {}, 0, {}, grad), 0.0);
}

TEST(NetworkNames, ParseAndPrint) {
  for (Activation a : {Activation::kRelu, Activation::kTanh, Activation::kSigmoid}) {
    EXPECT_EQ(parse_activation(to_string(a)), a);
  }
  for (NetworkLoss l : {NetworkLoss::kSoftmaxCrossEntropy, NetworkLoss::kSquared}) {
    EXPECT_EQ(parse_network_loss(to_string(l)), l);
  }
  for (InitScheme s :
       {InitScheme::kAuto, InitScheme::kHe, InitScheme::kXavier, InitScheme::kZero}) {
    EXPECT_EQ(parse_init_scheme(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(NetworkLoss::kSoftmaxCrossEntropy), "cross-entropy");
  expect_throw_with<ConfigError>([] { parse_activation("gelu"); }, "gelu");
  expect_throw_with<ConfigError>([] { parse_network_loss("hinge"); }, "hinge");
  expect_throw_with<ConfigError>([] { parse_init_scheme("orthogonal"); }, "orthogonal");
}

// --- Training: full-batch gradient descent on three separable blobs.
TEST(NetworkTraining, FitsSeparableThreeClassProblem) {
  const NetworkSpec spec{.inputs = 2, .hidden = {16}, .outputs = 3};
  const float centers[3][2] = {{0.0f, 3.0f}, {3.0f, -2.0f}, {-3.0f, -2.0f}};
  std::mt19937 gen(51);
  std::uniform_real_distribution<float> noise(-1.0f, 1.0f);
  Batch b;
  b.rows = 90;
  for (std::size_t r = 0; r < b.rows; ++r) {
    const std::size_t c = r % 3;
    b.x.push_back(centers[c][0] + noise(gen));
    b.x.push_back(centers[c][1] + noise(gen));
    b.labels.push_back(static_cast<float>(c));
  }
  Network<float> net(spec);
  std::vector<float> params(net.num_params()), grad(params.size());
  net.init(params, 2);
  const float lr = 0.1f / static_cast<float>(b.rows);
  double first_loss = 0, loss = 0;
  for (int step = 0; step < 300; ++step) {
    std::fill(grad.begin(), grad.end(), 0.0f);
    loss = net.accumulate_gradient(params, b.x, b.rows, b.labels, grad);
    if (step == 0) first_loss = loss;
    for (std::size_t i = 0; i < params.size(); ++i) params[i] -= lr * grad[i];
  }
  EXPECT_LT(loss, 0.1 * first_loss);
  std::vector<float> probs(b.rows * 3);
  net.predict(params, b.x, b.rows, probs);
  std::size_t correct = 0;
  for (std::size_t r = 0; r < b.rows; ++r) {
    const auto row = probs.begin() + static_cast<std::ptrdiff_t>(r * 3);
    correct += static_cast<float>(std::max_element(row, row + 3) - row) == b.labels[r] ? 1 : 0;
  }
  EXPECT_EQ(correct, b.rows);
}

}  // namespace
}  // namespace dtrain
