#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "dtrain/error.h"
#include "dtrain/optim/optimizer.h"

namespace dtrain {
namespace {

constexpr OptimizerKind kAllKinds[] = {
    OptimizerKind::kSgd,   OptimizerKind::kMomentum, OptimizerKind::kNesterov, OptimizerKind::kAdam,
    OptimizerKind::kAdamW, OptimizerKind::kAdaGrad,  OptimizerKind::kRmsProp};

OptimizerConfig config_of(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  return c;
}

// Expects `action` to throw ConfigError whose message mentions `needle`.
template <class F>
void expect_config_error(F action, const std::string& needle) {
  try {
    action();
    ADD_FAILURE() << "no ConfigError; expected one mentioning '" << needle << "'";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------
// The original double API.

TEST(OptimizerTest, GradientDescentStep) {
  GradientDescent gd;
  std::vector<double> p{1.0, -2.0};
  const std::vector<double> g{0.5, -1.0};
  gd.step(p, g, 0.1);
  EXPECT_DOUBLE_EQ(p[0], 0.95);
  EXPECT_DOUBLE_EQ(p[1], -1.9);
}

TEST(OptimizerTest, MomentumAccumulatesVelocity) {
  MomentumSgd sgd(0.9, false);
  std::vector<double> p{0.0};
  const std::vector<double> g{1.0};
  sgd.step(p, g, 0.1);  // v = 1
  EXPECT_DOUBLE_EQ(p[0], -0.1);
  sgd.step(p, g, 0.1);  // v = 1.9
  EXPECT_DOUBLE_EQ(p[0], -0.1 - 0.19);
}

TEST(OptimizerTest, NesterovLooksAhead) {
  MomentumSgd sgd(0.5, true);
  std::vector<double> p{0.0};
  const std::vector<double> g{2.0};
  sgd.step(p, g, 1.0);  // v = 2, direction = 2 + 0.5 * 2 = 3
  EXPECT_DOUBLE_EQ(p[0], -3.0);
}

TEST(OptimizerTest, MomentumMinimisesAQuadratic) {
  // f(x) = 0.5 * (100 x0^2 + x1^2): ill-conditioned; momentum still gets there.
  OptimizerConfig config;
  config.kind = OptimizerKind::kMomentum;
  config.momentum = 0.9;
  auto opt = make_optimizer<double>(config);
  std::vector<double> p{1.0, 1.0};
  for (int i = 0; i < 2000; ++i) {
    const std::vector<double> g{100 * p[0], p[1]};
    opt->step(p, g, 0.01);
  }
  EXPECT_NEAR(p[0], 0.0, 1e-8);
  EXPECT_NEAR(p[1], 0.0, 1e-8);
}

TEST(OptimizerTest, RejectsBadMomentum) {
  EXPECT_THROW(MomentumSgd(1.0, false), ConfigError);
  EXPECT_THROW(MomentumSgd(-0.1, false), ConfigError);
}

// ---------------------------------------------------------------------------
// Names and configuration.

TEST(OptimizerKindTest, NamesRoundTrip) {
  for (const OptimizerKind kind : kAllKinds) {
    EXPECT_EQ(parse_optimizer_kind(to_string(kind)), kind);
    EXPECT_EQ(make_optimizer<float>(config_of(kind))->name(), to_string(kind));
    EXPECT_EQ(make_optimizer<double>(config_of(kind))->name(), to_string(kind));
  }
  EXPECT_EQ(parse_optimizer_kind("adamw"), OptimizerKind::kAdamW);
  expect_config_error([] { parse_optimizer_kind("lbfgs"); }, "rmsprop");
  expect_config_error([] { parse_optimizer_kind("Adam"); }, "'Adam'");
}

TEST(OptimizerConfigTest, DefaultsAreValid) { EXPECT_NO_THROW(OptimizerConfig{}.validate()); }

TEST(OptimizerConfigTest, RejectsOutOfRangeValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    double OptimizerConfig::*field;
    double value;
    const char* name;
  };
  const Case cases[] = {
      {&OptimizerConfig::momentum, 1.0, "momentum"},
      {&OptimizerConfig::momentum, -0.1, "momentum"},
      {&OptimizerConfig::momentum, nan, "momentum"},
      {&OptimizerConfig::beta1, 1.0, "beta1"},
      {&OptimizerConfig::beta1, -1e-9, "beta1"},
      {&OptimizerConfig::beta2, 1.0, "beta2"},
      {&OptimizerConfig::beta2, nan, "beta2"},
      {&OptimizerConfig::eps, 0.0, "eps"},
      {&OptimizerConfig::eps, -1e-8, "eps"},
      {&OptimizerConfig::eps, inf, "eps"},
      {&OptimizerConfig::weight_decay, -0.01, "weight_decay"},
      {&OptimizerConfig::weight_decay, inf, "weight_decay"},
      {&OptimizerConfig::weight_decay, nan, "weight_decay"},
      {&OptimizerConfig::rmsprop_alpha, 1.0, "rmsprop_alpha"},
      {&OptimizerConfig::rmsprop_alpha, -0.5, "rmsprop_alpha"},
      {&OptimizerConfig::adagrad_eps, 0.0, "adagrad_eps"},
  };
  for (const Case& c : cases) {
    OptimizerConfig config;
    config.*c.field = c.value;
    expect_config_error([&] { config.validate(); }, c.name);
    // The factory validates too, whichever kind reads the field.
    expect_config_error([&] { make_optimizer<float>(config); }, c.name);
  }
  // Edges that are allowed.
  OptimizerConfig edge;
  edge.momentum = 0.0;
  edge.beta1 = 0.0;
  edge.beta2 = 0.0;
  edge.rmsprop_alpha = 0.0;
  edge.weight_decay = 0.0;
  EXPECT_NO_THROW(edge.validate());
}

// ---------------------------------------------------------------------------
// Updates against closed forms. With a constant gradient g every rule has a
// closed form for its t-th step, independent of the recursion:
//   momentum: v_t = g (1 - mu^t) / (1 - mu);   nesterov: g + mu v_t;
//   adam: m_hat = g and v_hat = g^2 exactly, so the step is lr g / (|g| + eps);
//   adagrad: s_t = t g^2;   rmsprop: v_t = (1 - alpha^t) g^2.

double closed_form_step(const OptimizerConfig& c, int t, double g, double lr) {
  const double mu = c.momentum;
  switch (c.kind) {
    case OptimizerKind::kSgd:
      return lr * g;
    case OptimizerKind::kMomentum:
      return lr * g * (1 - std::pow(mu, t)) / (1 - mu);
    case OptimizerKind::kNesterov:
      return lr * (g + mu * g * (1 - std::pow(mu, t)) / (1 - mu));
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamW:
      return lr * g / (std::abs(g) + c.eps);
    case OptimizerKind::kAdaGrad:
      return lr * g / (std::sqrt(t) * std::abs(g) + c.adagrad_eps);
    case OptimizerKind::kRmsProp:
      return lr * g / (std::sqrt(1 - std::pow(c.rmsprop_alpha, t)) * std::abs(g) + c.eps);
  }
  return 0.0;
}

TEST(OptimizerUpdateTest, ConstantGradientMatchesClosedForms) {
  const std::vector<double> g{0.5, -2.0, 3e-3};
  const double lr = 0.1;
  for (const OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(to_string(kind));
    OptimizerConfig c = config_of(kind);
    c.momentum = 0.8;
    c.rmsprop_alpha = 0.9;  // so that 1 - alpha^t moves visibly over 3 steps
    auto opt = make_optimizer<double>(c);
    std::vector<double> p{1.0, 2.0, -1.0};
    std::vector<double> expected = p;
    for (int t = 1; t <= 3; ++t) {
      opt->step(p, g, lr);
      for (std::size_t i = 0; i < p.size(); ++i) {
        expected[i] -= closed_form_step(c, t, g[i], lr);
        EXPECT_NEAR(p[i], expected[i], 1e-14) << "step " << t << " element " << i;
      }
    }
  }
}

TEST(OptimizerUpdateTest, AdamFirstStepIsSignTimesLr) {
  // Bias correction makes the very first Adam step lr * g / (|g| + eps),
  // whatever beta1 and beta2 are: about lr in every coordinate.
  OptimizerConfig c = config_of(OptimizerKind::kAdam);
  c.beta1 = 0.5;
  c.beta2 = 0.7;
  auto opt = make_optimizer<double>(c);
  std::vector<double> p{0.0, 0.0};
  const std::vector<double> g{1e-3, -40.0};
  opt->step(p, g, 0.01);
  EXPECT_NEAR(p[0], -0.01 * 1e-3 / (1e-3 + 1e-8), 1e-16);
  EXPECT_NEAR(p[1], 0.01 * 40.0 / (40.0 + 1e-8), 1e-16);
}

// Reference updates written the way each source states them, in double, one
// element at a time: Adam with explicit bias-corrected estimates m_hat and
// v_hat (Kingma & Ba, Algorithm 1), AdamW with the decay term written
// separately (Loshchilov & Hutter, Algorithm 2 with schedule multiplier 1 and
// PyTorch's lr * wd), and PyTorch's documented RMSProp/AdaGrad/SGD updates.
class ReferenceOptimizer {
 public:
  explicit ReferenceOptimizer(const OptimizerConfig& c) : c_(c) {}

  void step(std::vector<double>& p, const std::vector<double>& g, double lr) {
    if (a_.empty()) {
      a_.assign(p.size(), 0.0);
      b_.assign(p.size(), 0.0);
    }
    ++t_;
    for (std::size_t i = 0; i < p.size(); ++i) {
      switch (c_.kind) {
        case OptimizerKind::kSgd:
          p[i] = p[i] - lr * g[i];
          break;
        case OptimizerKind::kMomentum:
          a_[i] = c_.momentum * a_[i] + g[i];
          p[i] = p[i] - lr * a_[i];
          break;
        case OptimizerKind::kNesterov:
          a_[i] = c_.momentum * a_[i] + g[i];
          p[i] = p[i] - lr * (g[i] + c_.momentum * a_[i]);
          break;
        case OptimizerKind::kAdam:
        case OptimizerKind::kAdamW: {
          a_[i] = c_.beta1 * a_[i] + (1 - c_.beta1) * g[i];
          b_[i] = c_.beta2 * b_[i] + (1 - c_.beta2) * g[i] * g[i];
          const double m_hat = a_[i] / (1 - std::pow(c_.beta1, t_));
          const double v_hat = b_[i] / (1 - std::pow(c_.beta2, t_));
          const double decay = c_.kind == OptimizerKind::kAdamW ? lr * c_.weight_decay * p[i] : 0;
          p[i] = p[i] - decay - lr * m_hat / (std::sqrt(v_hat) + c_.eps);
          break;
        }
        case OptimizerKind::kAdaGrad:
          a_[i] = a_[i] + g[i] * g[i];
          p[i] = p[i] - lr * g[i] / (std::sqrt(a_[i]) + c_.adagrad_eps);
          break;
        case OptimizerKind::kRmsProp:
          b_[i] = c_.rmsprop_alpha * b_[i] + (1 - c_.rmsprop_alpha) * g[i] * g[i];
          p[i] = p[i] - lr * g[i] / (std::sqrt(b_[i]) + c_.eps);
          break;
      }
    }
  }

 private:
  OptimizerConfig c_;
  std::vector<double> a_, b_;
  int t_ = 0;
};

// Gradient of 0.5 * sum(a_i x_i^2).
const std::vector<double> kCurvature{1.0, 10.0, 100.0};

template <class T>
std::vector<T> quadratic_gradient(const std::vector<T>& x) {
  std::vector<T> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = static_cast<T>(kCurvature[i]) * x[i];
  return g;
}

TEST(OptimizerUpdateTest, FollowsReferenceOnAQuadratic) {
  // Three steps whose gradients depend on the parameters, with a learning rate
  // that changes between steps, so that state, bias correction and decay
  // must all be carried correctly.
  const double rates[] = {0.1, 0.05, 0.02};
  for (const OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(to_string(kind));
    OptimizerConfig c = config_of(kind);
    c.momentum = 0.7;
    c.beta1 = 0.8;
    c.beta2 = 0.95;
    c.weight_decay = 0.3;
    c.rmsprop_alpha = 0.9;
    auto opt = make_optimizer<double>(c);
    ReferenceOptimizer reference(c);
    std::vector<double> p{1.0, -0.5, 0.02};
    std::vector<double> expected = p;
    for (const double lr : rates) {
      opt->step(p, quadratic_gradient(p), lr);
      reference.step(expected, quadratic_gradient(expected), lr);
      for (std::size_t i = 0; i < p.size(); ++i) {
        EXPECT_NEAR(p[i], expected[i], 1e-13 * (1 + std::abs(expected[i]))) << "element " << i;
      }
    }
  }
}

TEST(OptimizerUpdateTest, HandUnrolledMomentumAndAdamW) {
  // Two steps written out by hand, as a check on the reference above.
  // Momentum 0.5, lr 0.1, g1 = 2, g2 = -1:
  //   v1 = 2, p1 = 1 - 0.2 = 0.8;  v2 = 0.5 * 2 - 1 = 0, p2 = 0.8.
  {
    OptimizerConfig c = config_of(OptimizerKind::kMomentum);
    c.momentum = 0.5;
    auto opt = make_optimizer<double>(c);
    std::vector<double> p{1.0};
    opt->step(p, std::vector<double>{2.0}, 0.1);
    EXPECT_DOUBLE_EQ(p[0], 0.8);
    opt->step(p, std::vector<double>{-1.0}, 0.1);
    EXPECT_DOUBLE_EQ(p[0], 0.8);
  }
  // AdamW, beta1 = 0.5, beta2 = 0.5, eps = 0, wd = 0.5, lr = 0.1, p0 = 2,
  // g1 = 1, g2 = 3:
  //   step 1: m_hat = 1, v_hat = 1; p1 = 2 - 0.1 * 0.5 * 2 - 0.1 = 1.8.
  //   step 2: m = 0.5 * 0.5 + 0.5 * 3 = 1.75, m_hat = 1.75 / 0.75 = 7/3;
  //           v = 0.5 * 0.5 + 0.5 * 9 = 4.75, v_hat = 4.75 / 0.75 = 19/3;
  //           p2 = 1.8 - 0.1 * 0.5 * 1.8 - 0.1 * (7/3) / sqrt(19/3).
  {
    OptimizerConfig c = config_of(OptimizerKind::kAdamW);
    c.beta1 = 0.5;
    c.beta2 = 0.5;
    c.eps = 1e-300;
    c.weight_decay = 0.5;
    auto opt = make_optimizer<double>(c);
    std::vector<double> p{2.0};
    opt->step(p, std::vector<double>{1.0}, 0.1);
    EXPECT_NEAR(p[0], 1.8, 1e-15);
    opt->step(p, std::vector<double>{3.0}, 0.1);
    EXPECT_NEAR(p[0], 1.8 - 0.09 - 0.1 * (7.0 / 3.0) / std::sqrt(19.0 / 3.0), 1e-15);
  }
}

TEST(OptimizerUpdateTest, AdamWDiffersFromAdamByTheDecoupledDecayOnly) {
  // Fed the same gradients, Adam and AdamW keep the same moments, so each
  // step of AdamW moves the parameter by Adam's step plus lr * wd * p.
  OptimizerConfig adam_config = config_of(OptimizerKind::kAdam);
  OptimizerConfig adamw_config = config_of(OptimizerKind::kAdamW);
  adamw_config.weight_decay = 0.25;
  auto adam = make_optimizer<double>(adam_config);
  auto adamw = make_optimizer<double>(adamw_config);
  std::vector<double> p_adam{1.0, -3.0, 0.5};
  std::vector<double> p_adamw = p_adam;
  const double rates[] = {0.1, 0.2, 0.05, 0.1};
  for (int t = 0; t < 4; ++t) {
    const std::vector<double> g{std::sin(t + 1.0), std::cos(3.0 * t), 0.1 * t - 0.2};
    const std::vector<double> adam_before = p_adam, adamw_before = p_adamw;
    adam->step(p_adam, g, rates[t]);
    adamw->step(p_adamw, g, rates[t]);
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double adam_move = p_adam[i] - adam_before[i];
      const double adamw_move = p_adamw[i] - adamw_before[i];
      EXPECT_NEAR(adamw_move, adam_move - rates[t] * 0.25 * adamw_before[i], 1e-15);
    }
  }
  // With weight_decay == 0 AdamW is Adam.
  auto adamw_no_decay = make_optimizer<double>(config_of(OptimizerKind::kAdamW));
  auto adam_again = make_optimizer<double>(adam_config);
  std::vector<double> p1{1.0, -2.0}, p2 = p1;
  adamw_no_decay->step(p1, std::vector<double>{0.3, 0.4}, 0.1);
  adam_again->step(p2, std::vector<double>{0.3, 0.4}, 0.1);
  EXPECT_EQ(p1, p2);
}

TEST(OptimizerUpdateTest, WeightDecayIsIgnoredOutsideAdamW) {
  for (const OptimizerKind kind : kAllKinds) {
    if (kind == OptimizerKind::kAdamW) continue;
    SCOPED_TRACE(to_string(kind));
    OptimizerConfig with_decay = config_of(kind);
    with_decay.weight_decay = 0.5;
    auto plain = make_optimizer<double>(config_of(kind));
    auto decayed = make_optimizer<double>(with_decay);
    std::vector<double> p1{1.0, -2.0}, p2 = p1;
    for (int t = 0; t < 3; ++t) {
      plain->step(p1, quadratic_gradient(p1), 0.01);
      decayed->step(p2, quadratic_gradient(p2), 0.01);
    }
    EXPECT_EQ(p1, p2);
  }
}

// ---------------------------------------------------------------------------
// Convergence on f(x) = 0.5 * (x0^2 + 10 x1^2 + 100 x2^2) from (1, -2, 0.5):
// every rule must reach max |x_i| < 1e-3 within the stated number of steps.

struct ConvergenceCase {
  OptimizerKind kind;
  double lr;
  int steps;
};

const ConvergenceCase kConvergenceCases[] = {
    {OptimizerKind::kSgd, 0.015, 600},      // needs lr < 2 / 100
    {OptimizerKind::kMomentum, 0.01, 200},  //
    {OptimizerKind::kNesterov, 0.01, 200},  //
    {OptimizerKind::kAdam, 0.05, 300},      //
    {OptimizerKind::kAdamW, 0.05, 300},     // weight_decay 0.1
    {OptimizerKind::kAdaGrad, 0.5, 100},    //
    {OptimizerKind::kRmsProp, 0.01, 500},   //
};

template <class T>
double converge(const ConvergenceCase& c) {
  OptimizerConfig config = config_of(c.kind);
  config.weight_decay = 0.1;
  auto opt = make_optimizer<T>(config);
  std::vector<T> x{T(1), T(-2), T(0.5)};
  for (int i = 0; i < c.steps; ++i) opt->step(x, quadratic_gradient(x), c.lr);
  double worst = 0;
  for (const T v : x) worst = std::max(worst, std::abs(static_cast<double>(v)));
  return worst;
}

TEST(OptimizerConvergenceTest, EveryRuleMinimisesAConvexQuadratic) {
  for (const ConvergenceCase& c : kConvergenceCases) {
    SCOPED_TRACE(to_string(c.kind));
    EXPECT_LT(converge<double>(c), 1e-3);
    EXPECT_LT(converge<float>(c), 1e-3);
  }
}

// ---------------------------------------------------------------------------
// float and double instantiations follow the same trajectory.

TEST(OptimizerPrecisionTest, FloatAgreesWithDouble) {
  for (const OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(to_string(kind));
    OptimizerConfig c = config_of(kind);
    c.weight_decay = 0.1;
    auto opt_f = make_optimizer<float>(c);
    auto opt_d = make_optimizer<double>(c);
    std::vector<float> xf{1.0f, -2.0f, 0.5f, 0.25f};
    std::vector<double> xd{1.0, -2.0, 0.5, 0.25};
    for (int t = 0; t < 20; ++t) {
      // A gradient that does not vanish, so relative errors stay meaningful.
      std::vector<double> gd(xd.size());
      std::vector<float> gf(xf.size());
      for (std::size_t i = 0; i < xd.size(); ++i) {
        gd[i] = xd[i] + 0.5 * std::cos(t + static_cast<double>(i));
        gf[i] = xf[i] + static_cast<float>(0.5 * std::cos(t + static_cast<double>(i)));
      }
      opt_d->step(xd, gd, 0.01);
      opt_f->step(xf, gf, 0.01);
    }
    for (std::size_t i = 0; i < xd.size(); ++i) {
      EXPECT_NEAR(xf[i], xd[i], 1e-5 * (1 + std::abs(xd[i]))) << "element " << i;
    }
  }
}

// ---------------------------------------------------------------------------
// Sparse steps: the rules that skip zero gradients update a subset of the
// parameters exactly as a dense step over a gradient zero elsewhere does.

TEST(OptimizerSparseStepTest, EqualsTheDenseStepBitForBit) {
  for (const OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(to_string(kind));
    auto dense = make_optimizer<double>(config_of(kind));
    auto sparse = make_optimizer<double>(config_of(kind));
    const bool skips = kind == OptimizerKind::kSgd || kind == OptimizerKind::kAdaGrad;
    EXPECT_EQ(dense->skips_zero_gradients(), skips);
    if (!skips) {
      std::vector<double> p(3, 1.0);
      const std::vector<std::size_t> at{1};
      const std::vector<double> g{0.5};
      EXPECT_THROW(sparse->step_at(p, at, g, 0.1), Error);
      continue;
    }
    std::vector<double> p_dense{0.5, -1.0, 0.0, -0.0, 2.0, 0.25, -3.0};
    std::vector<double> p_sparse = p_dense;
    for (int t = 0; t < 12; ++t) {
      // A different subset each step, listed out of order.
      std::vector<std::size_t> at;
      for (std::size_t j = p_dense.size(); j-- > 0;) {
        if ((j + static_cast<std::size_t>(t)) % 3 != 0) at.push_back(j);
      }
      std::vector<double> g_dense(p_dense.size(), 0.0);
      std::vector<double> g_sparse;
      for (const std::size_t j : at) {
        const double g = std::sin(1.0 + static_cast<double>(t * 7 + static_cast<int>(j)));
        g_dense[j] = g;
        g_sparse.push_back(g);
      }
      dense->step(p_dense, g_dense, 0.05);
      sparse->step_at(p_sparse, at, g_sparse, 0.05);
      for (std::size_t j = 0; j < p_dense.size(); ++j) {
        ASSERT_EQ(std::signbit(p_sparse[j]), std::signbit(p_dense[j]))
            << "step " << t << " j " << j;
        ASSERT_EQ(p_sparse[j], p_dense[j]) << "step " << t << " j " << j;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// step_sum_scaled(g, {}, s) and step_sum_scaled(a, b, s) are step() on the
// gradient (g or a + b) scaled in place beforehand, bit for bit: the sum and
// mean of gradient sums can be taken as the optimizer reads them.

template <class T>
void expect_scaled_step_equals_step_on_scaled_gradient() {
  for (const OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(to_string(kind));
    OptimizerConfig c = config_of(kind);
    c.weight_decay = 0.01;
    auto in_place = make_optimizer<T>(c);
    auto scaled = make_optimizer<T>(c);
    std::vector<T> p_in_place(37), p_scaled(37);
    for (std::size_t j = 0; j < p_in_place.size(); ++j) {
      p_in_place[j] = p_scaled[j] = static_cast<T>(std::sin(0.3 * static_cast<double>(j)));
    }
    const T scale = static_cast<T>(1.0 / 384.0 * 3.0);  // not a power of two
    for (int t = 0; t < 15; ++t) {
      std::vector<T> sums(p_in_place.size());
      for (std::size_t j = 0; j < sums.size(); ++j) {
        sums[j] = static_cast<T>(50.0 * std::cos(1.7 * t + 0.11 * static_cast<double>(j)));
      }
      // The sums handed over as two terms, as a reduce-scatter does.
      std::vector<T> first(sums.size()), second(sums.size());
      for (std::size_t j = 0; j < sums.size(); ++j) {
        first[j] = static_cast<T>(30.0 * std::sin(0.7 * t + static_cast<double>(j)));
        second[j] = sums[j];
        sums[j] = first[j] + second[j];
      }
      std::vector<T> mean = sums;
      for (T& g : mean) g *= scale;
      in_place->step(p_in_place, mean, 0.03);
      if (t % 2 == 0) {
        scaled->step_sum_scaled(p_scaled, sums, {}, scale, 0.03);
      } else {
        scaled->step_sum_scaled(p_scaled, first, second, scale, 0.03);
      }
      for (std::size_t j = 0; j < p_in_place.size(); ++j) {
        ASSERT_EQ(p_scaled[j], p_in_place[j]) << "step " << t << " j " << j;
      }
    }
  }
}

TEST(OptimizerScaledStepTest, EqualsTheStepOnAGradientScaledInPlace) {
  expect_scaled_step_equals_step_on_scaled_gradient<float>();
  expect_scaled_step_equals_step_on_scaled_gradient<double>();
}

// ---------------------------------------------------------------------------
// Gradient clipping.

double norm_of(std::span<const double> v) {
  double s = 0;
  for (const double x : v) s += x * x;
  return std::sqrt(s);
}

TEST(ClipTest, LeavesSmallGradientsAlone) {
  std::vector<double> g{3.0, -4.0};
  EXPECT_DOUBLE_EQ(clip_by_global_norm<double>(g, 5.0), 5.0);  // exactly at the limit
  EXPECT_EQ(g, (std::vector<double>{3.0, -4.0}));
  EXPECT_DOUBLE_EQ(clip_by_global_norm<double>(g, 10.0), 5.0);
  EXPECT_EQ(g, (std::vector<double>{3.0, -4.0}));
  // max_norm <= 0 disables clipping.
  EXPECT_DOUBLE_EQ(clip_by_global_norm<double>(g, 0.0), 5.0);
  EXPECT_DOUBLE_EQ(clip_by_global_norm<double>(g, -1.0), 5.0);
  EXPECT_EQ(g, (std::vector<double>{3.0, -4.0}));
}

TEST(ClipTest, ScalesLargeGradientsToMaxNormKeepingDirection) {
  const std::vector<double> original{1.0, -2.0, 2.0, 0.0};  // norm 3
  std::vector<double> g = original;
  EXPECT_DOUBLE_EQ(clip_by_global_norm<double>(g, 0.75), 3.0);
  EXPECT_NEAR(norm_of(g), 0.75, 1e-15);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_DOUBLE_EQ(g[i], original[i] * 0.25);

  std::vector<float> gf{1.0f, -2.0f, 2.0f, 0.0f};
  EXPECT_DOUBLE_EQ(clip_by_global_norm<float>(gf, 1.5), 3.0);
  for (std::size_t i = 0; i < gf.size(); ++i) {
    EXPECT_NEAR(gf[i], original[i] * 0.5, 1e-7);
  }
}

TEST(ClipTest, AccumulatesTheNormInDouble) {
  // 3e20^2 + 4e20^2 overflows float but not double.
  std::vector<float> g{3e20f, 4e20f};
  const double norm = clip_by_global_norm<float>(g, 1.0);
  EXPECT_NEAR(norm, 5e20, 5e20 * 1e-6);
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(g[1], 0.8f, 1e-6);
}

TEST(ClipTest, LeavesNonFiniteGradientsForTheCallerToSee) {
  std::vector<double> g{1.0, std::numeric_limits<double>::infinity()};
  EXPECT_TRUE(std::isinf(clip_by_global_norm<double>(g, 1.0)));
  EXPECT_EQ(g[0], 1.0);
  std::vector<float> n{1.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_TRUE(std::isnan(clip_by_global_norm<float>(n, 1.0)));
  EXPECT_EQ(n[0], 1.0f);
}

}  // namespace
}  // namespace dtrain
