// Models: finite-difference gradient checks; model files: round trip and
// every way a file can be broken.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>

#include "dtrain/error.h"
#include "dtrain/model/model.h"
#include "dtrain/model/model_file.h"

namespace dtrain {
namespace {

Dataset random_dense(std::size_t rows, std::size_t cols, bool binary, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  Dataset d = Dataset::dense(cols);
  std::vector<float> x(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    for (auto& v : x) v = normal(gen);
    const float y = binary ? static_cast<float>(gen() % 2) : normal(gen) * 3.0f;
    d.add_dense_row(x, y, r);
  }
  return d;
}

Dataset random_sparse(std::size_t rows, std::size_t cols, bool binary, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  Dataset d = Dataset::sparse(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::uint32_t> idx;
    std::vector<float> val;
    for (std::uint32_t j = 0; j < cols; ++j) {
      if (gen() % 3 == 0) {
        idx.push_back(j);
        val.push_back(normal(gen));
      }
    }
    const float y = binary ? static_cast<float>(gen() % 2) : normal(gen);
    d.add_sparse_row(idx, val, y, r);
  }
  return d;
}

double total_loss(const Model& m, std::span<const double> p, const Dataset& d,
                  std::span<const std::size_t> rows) {
  std::vector<double> scratch(m.num_params(), 0.0);
  return m.accumulate_gradient(p, d, rows, scratch);
}

// Central differences in double precision against the analytic gradient.
void check_gradient(ModelKind kind, const Dataset& data) {
  const auto model = make_linear_model(kind, data.cols());
  std::vector<std::size_t> rows(data.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  std::mt19937 gen(7);
  std::normal_distribution<double> normal(0.0, 0.3);
  std::vector<double> params(model->num_params());
  for (auto& p : params) p = normal(gen);
  std::vector<double> grad(model->num_params(), 0.0);
  model->accumulate_gradient(params, data, rows, grad);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double h = 1e-5;
    auto plus = params;
    auto minus = params;
    plus[i] += h;
    minus[i] -= h;
    const double numeric =
        (total_loss(*model, plus, data, rows) - total_loss(*model, minus, data, rows)) / (2 * h);
    const double scale = std::max({1.0, std::abs(numeric), std::abs(grad[i])});
    EXPECT_LT(std::abs(numeric - grad[i]) / scale, 1e-6)
        << to_string(kind) << " param " << i << ": analytic " << grad[i] << " numeric " << numeric;
  }
}

TEST(LinearModelTest, GradientMatchesFiniteDifferencesDense) {
  check_gradient(ModelKind::kLinear, random_dense(50, 6, false, 1));
  check_gradient(ModelKind::kLogistic, random_dense(50, 6, true, 2));
}

TEST(LinearModelTest, GradientMatchesFiniteDifferencesSparse) {
  check_gradient(ModelKind::kLinear, random_sparse(60, 9, false, 3));
  check_gradient(ModelKind::kLogistic, random_sparse(60, 9, true, 4));
}

TEST(LinearModelTest, SparseAndDenseAgree) {
  const Dataset sparse = random_sparse(40, 7, true, 5);
  Dataset dense = Dataset::dense(7);
  for (std::size_t r = 0; r < sparse.rows(); ++r) {
    std::vector<float> x(7, 0.0f);
    const RowView v = sparse.row(r);
    for (std::size_t k = 0; k < v.indices.size(); ++k) x[v.indices[k]] = v.values[k];
    dense.add_dense_row(x, sparse.labels()[r], r);
  }
  const auto model = make_linear_model(ModelKind::kLogistic, 7);
  std::vector<double> params{0.1, -0.2, 0.3, 0.0, 0.5, -0.6, 0.7, 0.05};
  std::vector<std::size_t> rows(40);
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  std::vector<double> g1(8, 0.0), g2(8, 0.0);
  const double l1 = model->accumulate_gradient(params, sparse, rows, g1);
  const double l2 = model->accumulate_gradient(params, dense, rows, g2);
  EXPECT_NEAR(l1, l2, 1e-12);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_NEAR(g1[i], g2[i], 1e-12);
}

TEST(LinearModelTest, LogisticLossIsStableForLargeLogits) {
  const auto model = make_linear_model(ModelKind::kLogistic, 1);
  Dataset d = Dataset::dense(1);
  const float x[] = {1.0f};
  d.add_dense_row(x, 1.0f, 0);
  d.add_dense_row(x, 0.0f, 1);
  const std::size_t rows[] = {0, 1};
  std::vector<double> params{800.0, 0.0};
  std::vector<double> grad(2, 0.0);
  const double loss = model->accumulate_gradient(params, d, rows, grad);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 800.0, 1e-9);  // only the wrong row costs: log(1 + e^800) ~ 800
  EXPECT_NEAR(grad[0], 1.0, 1e-12);
}

TEST(StandardizerTest, RawParametersGiveTheSamePredictions) {
  Standardizer s;
  s.mean = {10.0, -2.0, 0.5};
  s.scale = {2.0, 4.0, 0.25};
  const std::vector<double> p{1.5, -0.5, 2.0, 3.0};
  const auto raw = s.to_raw_linear(p);
  const double x[] = {12.0, 6.0, 1.0};
  double standardized = p[3], plain = raw[3];
  for (int j = 0; j < 3; ++j) {
    standardized += p[j] * (x[j] - s.mean[j]) / s.scale[j];
    plain += raw[j] * x[j];
  }
  EXPECT_NEAR(standardized, plain, 1e-12);
}

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() /
        ("dtrain-model-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    model_.spec.kind = ModelKind::kLogistic;
    model_.spec.num_features = 3;
    model_.spec.feature_names = {"a", "b", "c"};
    model_.spec.label_name = "y";
    model_.spec.input_format = "csv";
    model_.spec.l2 = 0.25;
    model_.params = {0.5, -1.25, 3.0, 0.125};
    model_.standardizer.mean = {1, 2, 3};
    model_.standardizer.scale = {4, 5, 6};
    path_ = (dir_ / "m.model").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<char> bytes() const {
    std::ifstream f(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  void write(const std::vector<char>& b) const {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  void expect_error(const std::string& fragment) const {
    try {
      load_model(path_);
      FAIL() << "expected ModelFileError containing '" << fragment << "'";
    } catch (const ModelFileError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path_), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }

  std::filesystem::path dir_;
  std::string path_;
  SavedModel model_;
};

TEST_F(ModelFileTest, RoundTripIsExact) {
  save_model(path_, model_);
  const SavedModel back = load_model(path_);
  EXPECT_EQ(back.spec.kind, ModelKind::kLogistic);
  EXPECT_EQ(back.spec.num_features, 3u);
  EXPECT_EQ(back.spec.feature_names, model_.spec.feature_names);
  EXPECT_EQ(back.spec.label_name, "y");
  EXPECT_EQ(back.spec.l2, 0.25);
  EXPECT_EQ(back.params, model_.params);
  EXPECT_EQ(back.standardizer.mean, model_.standardizer.mean);
  EXPECT_EQ(back.standardizer.scale, model_.standardizer.scale);
  // Only the final file remains: no temporary siblings.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(ModelFileTest, MissingFile) { expect_error("no such model file"); }

TEST_F(ModelFileTest, NotAModelFile) {
  write({'h', 'e', 'l', 'l', 'o', ',', 'w', 'o', 'r', 'l', 'd', '\n'});
  expect_error("not a dtrain model file");
}

TEST_F(ModelFileTest, EveryTruncationIsDetected) {
  save_model(path_, model_);
  const auto full = bytes();
  for (std::size_t keep = 8; keep < full.size(); keep += 7) {
    write(std::vector<char>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(keep)));
    EXPECT_THROW(load_model(path_), ModelFileError) << "kept " << keep << " bytes";
  }
  write(std::vector<char>(full.begin(), full.end() - 3));
  expect_error("truncated");
}

TEST_F(ModelFileTest, FlippedByteIsCorrupt) {
  save_model(path_, model_);
  auto b = bytes();
  b[b.size() - 20] ^= 0x40;  // inside the standardiser scales
  write(b);
  expect_error("checksum");
}

TEST_F(ModelFileTest, UnsupportedVersion) {
  save_model(path_, model_);
  auto b = bytes();
  b[8] = 99;
  write(b);
  expect_error("unsupported model format version 99");
}

TEST_F(ModelFileTest, TrailingGarbage) {
  save_model(path_, model_);
  auto b = bytes();
  b.push_back('x');
  write(b);
  expect_error("trailing");
}

TEST_F(ModelFileTest, UnwritableDestinationLeavesNothing) {
  const std::string bad = (dir_ / "no-such-dir" / "m.model").string();
  EXPECT_THROW(save_model(bad, model_), Error);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "no-such-dir"));
}

}  // namespace
}  // namespace dtrain
