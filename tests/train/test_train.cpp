// End-to-end training checks against closed-form and published references,
// and the "N workers = 1 worker" equivalences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "dtrain/comm/threads.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "dtrain/train/trainer.h"
#include "train_on.h"

namespace dtrain {
namespace {

const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

// Ordinary least squares with intercept by the normal equations on
// standardised columns (well conditioned), mapped back to raw units.
// Returns [w_0 .. w_{d-1}, b].
std::vector<double> ols_direct(const Dataset& data) {
  const std::size_t n = data.rows(), d = data.cols();
  std::vector<double> mean(d, 0.0), sd(d, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < d; ++j) mean[j] += data.row(r).dense[j];
  for (auto& m : mean) m /= static_cast<double>(n);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < d; ++j) {
      const double c = data.row(r).dense[j] - mean[j];
      sd[j] += c * c;
    }
  for (auto& s : sd) s = std::sqrt(s / static_cast<double>(n));
  double ymean = 0.0;
  for (const float y : data.labels()) ymean += y;
  ymean /= static_cast<double>(n);
  // A z = c with A = Z^T Z, c = Z^T (y - ymean).
  std::vector<double> a(d * d, 0.0), c(d, 0.0), z(d);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t j = 0; j < d; ++j) z[j] = (data.row(r).dense[j] - mean[j]) / sd[j];
    const double y = data.labels()[r] - ymean;
    for (std::size_t i = 0; i < d; ++i) {
      c[i] += z[i] * y;
      for (std::size_t j = 0; j < d; ++j) a[i * d + j] += z[i] * z[j];
    }
  }
  // Gaussian elimination with partial pivoting.
  for (std::size_t k = 0; k < d; ++k) {
    std::size_t piv = k;
    for (std::size_t i = k + 1; i < d; ++i)
      if (std::abs(a[i * d + k]) > std::abs(a[piv * d + k])) piv = i;
    for (std::size_t j = 0; j < d; ++j) std::swap(a[k * d + j], a[piv * d + j]);
    std::swap(c[k], c[piv]);
    for (std::size_t i = k + 1; i < d; ++i) {
      const double f = a[i * d + k] / a[k * d + k];
      for (std::size_t j = k; j < d; ++j) a[i * d + j] -= f * a[k * d + j];
      c[i] -= f * c[k];
    }
  }
  std::vector<double> w(d);
  for (std::size_t k = d; k-- > 0;) {
    double s = c[k];
    for (std::size_t j = k + 1; j < d; ++j) s -= a[k * d + j] * w[j];
    w[k] = s / a[k * d + k];
  }
  std::vector<double> raw(d + 1);
  double b = ymean;
  for (std::size_t j = 0; j < d; ++j) {
    raw[j] = w[j] / sd[j];
    b -= raw[j] * mean[j];
  }
  raw[d] = b;
  return raw;
}

// Reference from examples/data/README.md (scikit-learn 1.2, float64).
const std::vector<double> kDiabetesOls{
    -0.03636122422361818, -22.859648090498276, 5.602962091923715,  1.1168079933181918,
    -1.089996334063228,   0.7464504555142124,  0.3720047150891439, 6.5338319359903405,
    68.48312496478835,    0.28011698932149454, -334.56713851878783};

TrainConfig diabetes_gd() {
  TrainConfig c;
  c.model = ModelKind::kLinear;
  c.batch_mode = BatchMode::kFullBatch;
  c.standardize = true;
  c.epochs = 3000;
  c.lr.base = 0.3;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.eval_every = 1000;
  return c;
}

Dataset diabetes() {
  CsvOptions o;
  o.label = "target";
  return read_csv(kData + "diabetes.csv", o);
}

void expect_relative(std::span<const double> got, std::span<const double> want, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(std::abs(got[i] - want[i]), tol * std::abs(want[i]))
        << what << " [" << i << "]: got " << got[i] << " want " << want[i];
  }
}

TEST(DiabetesOlsTest, DirectSolverMatchesPublishedReference) {
  expect_relative(ols_direct(diabetes()), kDiabetesOls, 1e-5, "direct OLS");
}

class DiabetesGdTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DiabetesGdTest, TenWorkersReachTheOlsOptimum) {
  const Dataset data = diabetes();
  const TrainResult r = train_on(data, 10, GetParam(), diabetes_gd());
  const auto raw = r.standardizer.to_raw_linear(r.params);
  expect_relative(raw, kDiabetesOls, 1e-3, "vs published OLS");
  expect_relative(raw, ols_direct(data), 1e-3, "vs direct OLS");
  const Metrics& m = r.history.back().train.value();
  EXPECT_NEAR(m.at("r2"), 0.5177484222203498, 1e-4);
  EXPECT_NEAR(m.at("mse"), 2859.6963475867506, 2859.7 * 1e-4);
  EXPECT_EQ(m.rows, 442u);
}

INSTANTIATE_TEST_SUITE_P(Partitioners, DiabetesGdTest, ::testing::Values("range", "hash"));

TEST(EquivalenceTest, FullBatchGdIsIndependentOfWorkerCount) {
  const Dataset data = diabetes();
  TrainConfig c = diabetes_gd();
  c.epochs = 400;  // equality, not convergence, is the point here
  const TrainResult one = train_on(data, 1, "range", c);
  for (const int n : {2, 3, 7, 10}) {
    for (const std::string p : {"range", "hash", "shuffle"}) {
      const TrainResult many = train_on(data, n, p, c);
      expect_relative(many.params, one.params, 1e-5, std::to_string(n) + " workers, " + p);
    }
  }
}

TEST(EquivalenceTest, SameSeedGivesBitwiseIdenticalParameters) {
  const Dataset data = diabetes();
  TrainConfig c = diabetes_gd();
  c.epochs = 300;
  for (const auto mode : {BatchMode::kFullBatch, BatchMode::kMiniBatch}) {
    c.batch_mode = mode;
    c.lr.base = mode == BatchMode::kFullBatch ? 0.3 : 0.01;
    c.epochs = mode == BatchMode::kFullBatch ? 300 : 5;
    const TrainResult a = train_on(data, 7, "hash", c);
    const TrainResult b = train_on(data, 7, "hash", c);
    ASSERT_EQ(a.params.size(), b.params.size());
    EXPECT_EQ(0, std::memcmp(a.params.data(), b.params.data(), a.params.size() * sizeof(double)));
  }
}

TEST(SgdTest, MiniBatchSgdGetsCloseToTheOptimum) {
  TrainConfig c;
  c.model = ModelKind::kLinear;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 8;
  c.standardize = true;
  c.epochs = 60;
  c.lr.base = 0.01;
  c.lr.kind = LrSchedule::Kind::kInverseSqrt;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.eval_every = 60;
  const TrainResult r = train_on(diabetes(), 4, "shuffle", c);
  // Within 2% of the optimal training MSE.
  EXPECT_LT(r.history.back().train->at("mse"), 2859.6963475867506 * 1.02);
}

TEST(LogisticTest, BreastCancerReachesReferenceAccuracy) {
  CsvOptions o;
  o.label = "malignant";
  o.label_kind = LabelKind::kBinary;
  const Dataset data = read_csv(kData + "breast_cancer.csv", o);
  TrainConfig c;
  c.model = ModelKind::kLogistic;
  c.standardize = true;
  c.l2 = 1.0 / 569.0;  // scikit-learn's C = 1 on the summed loss
  c.epochs = 3000;
  c.lr.base = 1.0;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.eval_every = 3000;
  const TrainResult r = train_on(data, 4, "range", c);
  EXPECT_NEAR(r.history.back().train->at("accuracy"), 0.98770, 0.005);
}

TEST(LogisticTest, HeartScaleReachesReferenceAccuracy) {
  LibsvmOptions o;
  o.label_kind = LabelKind::kBinary;
  const Dataset data = read_libsvm(kData + "heart_scale.libsvm", o);
  TrainConfig c;
  c.model = ModelKind::kLogistic;
  c.l2 = 1.0 / 270.0;
  c.epochs = 3000;
  c.lr.base = 1.0;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.eval_every = 3000;
  const TrainResult r = train_on(data, 4, "hash", c);
  EXPECT_NEAR(r.history.back().train->at("accuracy"), 0.84444, 0.005);
}

TEST(SplitTest, TestRowsDependOnSeedAndRowIdOnly) {
  const Dataset data = diabetes();
  TrainConfig c = diabetes_gd();
  c.epochs = 5;
  c.eval_every = 5;
  c.test_fraction = 0.25;
  const TrainResult a = train_on(data, 1, "range", c);
  const TrainResult b = train_on(data, 6, "shuffle", c);
  EXPECT_EQ(a.test_rows, b.test_rows);
  EXPECT_EQ(a.train_rows + a.test_rows, 442u);
  EXPECT_GT(a.test_rows, 442u / 8);
  EXPECT_LT(a.test_rows, 442u / 2);
  EXPECT_NEAR(a.history.back().test->at("mse"), b.history.back().test->at("mse"), 1e-6);
}

TEST(TrainerTest, EarlyStopOnTolerance) {
  TrainConfig c = diabetes_gd();
  c.tol = 1e-9;
  c.epochs = 100000;
  const TrainResult r = train_on(diabetes(), 3, "range", c);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_LT(r.epochs_run, 100000);
  EXPECT_NEAR(r.history.back().train->at("r2"), 0.5177484222203498, 1e-4);
}

TEST(TrainerTest, MoreWorkersThanRows) {
  Dataset tiny = Dataset::dense(1);
  const float x0[] = {1.0f}, x1[] = {2.0f};
  tiny.add_dense_row(x0, 3.0f, 0);
  tiny.add_dense_row(x1, 5.0f, 1);
  TrainConfig c;
  c.epochs = 5000;
  c.lr.base = 0.1;
  c.eval_every = 5000;
  const TrainResult r = train_on(tiny, 5, "range", c);
  EXPECT_NEAR(r.params[0], 2.0, 1e-6);  // y = 2x + 1
  EXPECT_NEAR(r.params[1], 1.0, 1e-6);
}

TEST(TrainerTest, DivergenceIsReported) {
  TrainConfig c = diabetes_gd();
  c.standardize = false;
  c.optimizer.kind = OptimizerKind::kSgd;
  c.lr.base = 1.0;
  EXPECT_THROW(train_on(diabetes(), 2, "range", c), Error);
}

TEST(TrainerTest, InvalidConfigIsRejected) {
  TrainConfig c = diabetes_gd();
  c.epochs = 0;
  EXPECT_THROW(train_on(diabetes(), 1, "range", c), ConfigError);
}

TEST(MetricsTest, RocAucOnKnownCases) {
  const std::vector<double> s{0.1, 0.4, 0.35, 0.8};
  const std::vector<float> y{0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(roc_auc(s, y), 0.75);
  const std::vector<double> tied{0.5, 0.5, 0.5, 0.5};
  EXPECT_DOUBLE_EQ(roc_auc(tied, y), 0.5);
  const std::vector<float> one_class{1, 1, 1, 1};
  EXPECT_TRUE(std::isnan(roc_auc(s, one_class)));
}

TEST(MetricsTest, DistributedMetricsEqualSingleWorker) {
  CsvOptions o;
  o.label = "malignant";
  o.label_kind = LabelKind::kBinary;
  const Dataset data = read_csv(kData + "breast_cancer.csv", o);
  TrainConfig c;
  c.model = ModelKind::kLogistic;
  c.standardize = true;
  c.epochs = 20;
  c.lr.base = 0.5;
  c.eval_every = 20;
  const Metrics one = train_on(data, 1, "range", c).history.back().train.value();
  const Metrics many = train_on(data, 5, "hash", c).history.back().train.value();
  for (const char* name : {"accuracy", "logloss", "auc"}) {
    EXPECT_NEAR(one.at(name), many.at(name), 1e-9) << name;
  }
}

}  // namespace
}  // namespace dtrain
