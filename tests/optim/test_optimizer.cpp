#include <gtest/gtest.h>

#include <cmath>

#include "dtrain/error.h"
#include "dtrain/optim/optimizer.h"

namespace dtrain {
namespace {

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
  auto opt = make_optimizer(0.9, false);
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

TEST(LrScheduleTest, Schedules) {
  LrSchedule s;
  s.base = 0.8;
  EXPECT_DOUBLE_EQ(s.at(0), 0.8);
  EXPECT_DOUBLE_EQ(s.at(50), 0.8);
  s.kind = LrSchedule::Kind::kStep;
  s.step_epochs = 10;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(s.at(9), 0.8);
  EXPECT_DOUBLE_EQ(s.at(10), 0.4);
  EXPECT_DOUBLE_EQ(s.at(25), 0.2);
  s.kind = LrSchedule::Kind::kInverseSqrt;
  EXPECT_DOUBLE_EQ(s.at(0), 0.8);
  EXPECT_DOUBLE_EQ(s.at(3), 0.4);
  EXPECT_EQ(parse_lr_schedule("inverse-sqrt"), LrSchedule::Kind::kInverseSqrt);
  EXPECT_THROW(parse_lr_schedule("cosine"), ConfigError);
}

}  // namespace
}  // namespace dtrain
