#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "dtrain/error.h"
#include "dtrain/optim/optimizer.h"

namespace dtrain {
namespace {

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
  EXPECT_THROW(parse_lr_schedule("exponential"), ConfigError);
}

TEST(LrScheduleTest, AggregateInitialisationStillWorks) {
  const LrSchedule s{LrSchedule::Kind::kStep, 1.0, 2, 0.1};
  EXPECT_DOUBLE_EQ(s.at(1), 1.0);
  EXPECT_DOUBLE_EQ(s.at(2), 0.1);
  EXPECT_DOUBLE_EQ(s.at(5), 0.01);
}

TEST(LrScheduleTest, FractionalProgressForTheOldKinds) {
  LrSchedule s{LrSchedule::Kind::kStep, 1.0, 2, 0.5};
  // The step schedule is piecewise constant in progress.
  EXPECT_DOUBLE_EQ(s.at(1.999), 1.0);
  EXPECT_DOUBLE_EQ(s.at(2.0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(3.5), 0.5);
  // at(int) and at(double) agree without warm-up, for every old kind.
  for (const auto kind :
       {LrSchedule::Kind::kConstant, LrSchedule::Kind::kStep, LrSchedule::Kind::kInverseSqrt}) {
    s.kind = kind;
    for (int epoch = 0; epoch < 12; ++epoch) EXPECT_EQ(s.at(epoch), s.at(double(epoch)));
  }
  // inverse-sqrt moves within an epoch: base / sqrt(1 + 0.44) = base / 1.2.
  s.kind = LrSchedule::Kind::kInverseSqrt;
  EXPECT_DOUBLE_EQ(s.at(0.44), 1.0 / 1.2);
}

TEST(LrScheduleTest, CosineEndpointsAndMidpoint) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kCosine;
  s.base = 0.4;
  s.total_epochs = 10;
  EXPECT_DOUBLE_EQ(s.at(0.0), 0.4);
  EXPECT_DOUBLE_EQ(s.at(5.0), 0.2);
  EXPECT_NEAR(s.at(10.0), 0.0, 1e-17);
  EXPECT_NEAR(s.at(20.0), 0.0, 1e-17);  // stays at the floor after total_epochs
  // A quarter of the way: 0.5 * (1 + cos(pi / 4)) = 0.5 + sqrt(2) / 4.
  EXPECT_DOUBLE_EQ(s.at(2.5), 0.4 * (0.5 + std::numbers::sqrt2 / 4));
  // Symmetric about the midpoint: f(t) + f(T - t) = base.
  EXPECT_NEAR(s.at(1.7) + s.at(8.3), 0.4, 1e-15);

  s.min_factor = 0.1;  // floor at 0.04
  EXPECT_DOUBLE_EQ(s.at(0.0), 0.4);
  EXPECT_DOUBLE_EQ(s.at(5.0), 0.4 * (0.1 + 0.9 * 0.5));
  EXPECT_DOUBLE_EQ(s.at(10.0), 0.04);
  EXPECT_DOUBLE_EQ(s.at(13.0), 0.04);
  EXPECT_EQ(parse_lr_schedule("cosine"), LrSchedule::Kind::kCosine);
  EXPECT_STREQ(to_string(LrSchedule::Kind::kCosine), "cosine");
}

TEST(LrScheduleTest, WarmupRampsLinearlyToTheScheduledRate) {
  LrSchedule s;
  s.base = 0.8;
  s.warmup_epochs = 2;
  EXPECT_DOUBLE_EQ(s.at(0.0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(0.5), 0.2);
  EXPECT_DOUBLE_EQ(s.at(1.0), 0.4);
  EXPECT_DOUBLE_EQ(s.at(1.5), 0.6);
  EXPECT_DOUBLE_EQ(s.at(2.0), 0.8);
  EXPECT_DOUBLE_EQ(s.at(7.0), 0.8);

  s.warmup_start_factor = 0.25;  // from 0.2 up to 0.8
  EXPECT_DOUBLE_EQ(s.at(0.0), 0.2);
  EXPECT_DOUBLE_EQ(s.at(1.0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(2.0), 0.8);

  // Warm-up multiplies the decayed rate: ends on the cosine curve.
  s.warmup_start_factor = 0.0;
  s.kind = LrSchedule::Kind::kCosine;
  s.total_epochs = 4;
  EXPECT_DOUBLE_EQ(s.at(1.0), 0.5 * 0.8 * 0.5 * (1 + std::cos(std::numbers::pi / 4)));
  EXPECT_DOUBLE_EQ(s.at(2.0), 0.4);  // warm-up over, cosine midpoint
}

TEST(LrScheduleTest, StepRatesNeverStartAtZero) {
  LrSchedule s;
  s.base = 1.0;
  s.warmup_epochs = 1;
  // Four steps per epoch: the warm-up factor is taken at each step's end.
  EXPECT_DOUBLE_EQ(s.at_step(0, 0, 4), 0.25);
  EXPECT_DOUBLE_EQ(s.at_step(0, 1, 4), 0.5);
  EXPECT_DOUBLE_EQ(s.at_step(0, 3, 4), 1.0);
  EXPECT_DOUBLE_EQ(s.at_step(1, 0, 4), 1.0);
  // Per-epoch callers (full batch) get the rate of the epoch's end too.
  s.warmup_epochs = 4;
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);

  // The decay is taken at each step's start: the step schedule still
  // changes at the epoch boundary, not on the last step before it.
  const LrSchedule step_schedule{LrSchedule::Kind::kStep, 1.0, 2, 0.5};
  EXPECT_DOUBLE_EQ(step_schedule.at_step(1, 9, 10), 1.0);
  EXPECT_DOUBLE_EQ(step_schedule.at_step(2, 0, 10), 0.5);
  // Without warm-up, the first step of an epoch has the epoch's rate.
  LrSchedule cosine;
  cosine.kind = LrSchedule::Kind::kCosine;
  cosine.total_epochs = 3;
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(cosine.at_step(epoch, 0, 5), cosine.at(epoch));
    EXPECT_DOUBLE_EQ(cosine.at_step(epoch, 2, 5), cosine.at(epoch + 0.4));
  }
}

TEST(LrScheduleTest, ValidateRejectsBadFields) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NO_THROW(LrSchedule{}.validate());
  LrSchedule s;
  s.base = 0;
  EXPECT_THROW(s.validate(), ConfigError);
  s.base = nan;
  EXPECT_THROW(s.validate(), ConfigError);

  s = LrSchedule{LrSchedule::Kind::kStep, 0.1, 0, 0.5};
  EXPECT_THROW(s.validate(), ConfigError);
  s = LrSchedule{LrSchedule::Kind::kStep, 0.1, 3, 0.0};
  EXPECT_THROW(s.validate(), ConfigError);

  s = LrSchedule{};
  s.kind = LrSchedule::Kind::kCosine;
  EXPECT_THROW(s.validate(), ConfigError);  // total_epochs unset
  s.total_epochs = 10;
  EXPECT_NO_THROW(s.validate());
  s.min_factor = 1.5;
  EXPECT_THROW(s.validate(), ConfigError);
  s.min_factor = -0.1;
  EXPECT_THROW(s.validate(), ConfigError);

  s = LrSchedule{};
  s.warmup_epochs = -1;
  EXPECT_THROW(s.validate(), ConfigError);
  s.warmup_epochs = nan;
  EXPECT_THROW(s.validate(), ConfigError);
  s.warmup_epochs = 1;
  s.warmup_start_factor = 2;
  EXPECT_THROW(s.validate(), ConfigError);
}

TEST(LrScalingTest, LinearRule) {
  EXPECT_DOUBLE_EQ(scaled_learning_rate(0.1, LrScaling::kLinear, 8 * 256, 256), 0.8);
  EXPECT_DOUBLE_EQ(scaled_learning_rate(0.1, LrScaling::kLinear, 64, 256), 0.025);
  EXPECT_DOUBLE_EQ(scaled_learning_rate(0.1, LrScaling::kNone, 8 * 256, 256), 0.1);
  EXPECT_THROW(scaled_learning_rate(0.1, LrScaling::kLinear, 64, 0), ConfigError);
  EXPECT_THROW(scaled_learning_rate(0.1, LrScaling::kLinear, 0, 64), ConfigError);
  EXPECT_EQ(parse_lr_scaling("linear"), LrScaling::kLinear);
  EXPECT_EQ(parse_lr_scaling("none"), LrScaling::kNone);
  EXPECT_STREQ(to_string(LrScaling::kLinear), "linear");
  EXPECT_STREQ(to_string(LrScaling::kNone), "none");
  EXPECT_THROW(parse_lr_scaling("sqrt"), ConfigError);
}

}  // namespace
}  // namespace dtrain
