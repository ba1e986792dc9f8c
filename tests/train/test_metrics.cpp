// Metrics against hand-computed cases and direct formulas, and their
// independence of how the rows are split among workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dtrain/comm/threads.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "dtrain/model/model.h"
#include "dtrain/train/metrics.h"

namespace dtrain {
namespace {

const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

// Rows per worker: worker 1 (when there is one) gets none, the others share
// the rows unevenly, the first ones taking the remainder.
std::vector<std::size_t> split_counts(std::size_t rows, std::size_t workers) {
  std::vector<std::size_t> counts(workers, 0);
  const std::size_t holders = workers == 1 ? 1 : workers - 1;
  for (std::size_t h = 0, w = 0; h < holders; ++h, ++w) {
    if (w == 1) ++w;
    counts[w] = rows / holders + (h < rows % holders ? 1 : 0);
  }
  return counts;
}

// compute_metrics on `workers` threads, each given a contiguous share of the
// rows as chosen by split_counts (or `counts` when given). Returns every
// rank's result.
std::vector<Metrics> compute_split(int workers, Task task, std::size_t width,
                                   const std::vector<double>& outputs,
                                   const std::vector<float>& labels,
                                   std::vector<std::size_t> counts = {}) {
  const auto n = static_cast<std::size_t>(workers);
  if (counts.empty()) counts = split_counts(labels.size(), n);
  std::vector<std::size_t> first(n + 1, 0);
  std::partial_sum(counts.begin(), counts.end(), first.begin() + 1);
  std::vector<Metrics> results(n);
  ThreadsOptions opts;
  opts.workers = workers;
  run_threads(opts, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    const auto mine_labels = std::span<const float>(labels).subspan(first[r], counts[r]);
    const auto mine_outputs =
        std::span<const double>(outputs).subspan(first[r] * width, counts[r] * width);
    results[r] = compute_metrics(comm, task, width, mine_outputs, mine_labels);
  });
  return results;
}

Metrics compute_one(Task task, std::size_t width, const std::vector<double>& outputs,
                    const std::vector<float>& labels) {
  return compute_split(1, task, width, outputs, labels).front();
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Everything equal bit for bit, except that `loose` values may differ by
// a relative `tol` (sums of doubles, whose rounding depends on the split).
void expect_same(const Metrics& got, const Metrics& want, const std::vector<std::string>& loose,
                 double tol, const std::string& what) {
  EXPECT_EQ(got.rows, want.rows) << what;
  ASSERT_EQ(got.values.size(), want.values.size()) << what;
  for (std::size_t i = 0; i < want.values.size(); ++i) {
    const auto& [name, value] = want.values[i];
    EXPECT_EQ(got.values[i].first, name) << what;
    if (std::find(loose.begin(), loose.end(), name) != loose.end()) {
      EXPECT_NEAR(got.values[i].second, value, tol * std::abs(value)) << what << " " << name;
    } else {
      EXPECT_TRUE(same_bits(got.values[i].second, value))
          << what << " " << name << ": " << got.values[i].second << " vs " << value;
    }
  }
  EXPECT_EQ(got.classes, want.classes) << what;
  EXPECT_EQ(got.confusion, want.confusion) << what;
  ASSERT_EQ(got.precision.size(), want.precision.size()) << what;
  ASSERT_EQ(got.recall.size(), want.recall.size()) << what;
  for (std::size_t c = 0; c < want.precision.size(); ++c) {
    EXPECT_TRUE(same_bits(got.precision[c], want.precision[c])) << what << " precision " << c;
    EXPECT_TRUE(same_bits(got.recall[c], want.recall[c])) << what << " recall " << c;
  }
}

// Model outputs (rows x width, row-major) and the labels of their rows.
struct LabelledOutputs {
  std::vector<double> outputs;
  std::vector<float> labels;
};

// One row per (true, predicted) pair: probability 0.6 on the predicted
// class and 0.2 on each of the other two.
LabelledOutputs three_class_case() {
  // Confusion matrix [true][predicted]:
  //          0  1  2
  //   true 0 3  0  1
  //   true 1 1  2  0
  //   true 2 0  3  1
  const int counts[3][3] = {{3, 0, 1}, {1, 2, 0}, {0, 3, 1}};
  LabelledOutputs c;
  for (int t = 0; t < 3; ++t) {
    for (int p = 0; p < 3; ++p) {
      for (int i = 0; i < counts[t][p]; ++i) {
        for (int k = 0; k < 3; ++k) c.outputs.push_back(k == p ? 0.6 : 0.2);
        c.labels.push_back(static_cast<float>(t));
      }
    }
  }
  return c;
}

TEST(MulticlassMetricsTest, ThreeClassHandComputed) {
  const LabelledOutputs c = three_class_case();
  const Metrics m = compute_one(Task::kMulticlass, 3, c.outputs, c.labels);
  EXPECT_EQ(m.rows, 11u);
  EXPECT_EQ(m.classes, 3u);
  EXPECT_EQ(m.confusion, (std::vector<std::uint64_t>{3, 0, 1, 1, 2, 0, 0, 3, 1}));
  // Precision: diagonal over column sums (4, 5, 2); recall: over row sums (4, 3, 4).
  const std::vector<double> precision{3.0 / 4, 2.0 / 5, 1.0 / 2};
  const std::vector<double> recall{3.0 / 4, 2.0 / 3, 1.0 / 4};
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_DOUBLE_EQ(m.precision[k], precision[k]) << k;
    EXPECT_DOUBLE_EQ(m.recall[k], recall[k]) << k;
  }
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 6.0 / 11);
  EXPECT_DOUBLE_EQ(m.at("top5"), 1.0);  // k = 3 = classes: every row
  EXPECT_DOUBLE_EQ(m.at("macro_precision"), (3.0 / 4 + 2.0 / 5 + 1.0 / 2) / 3);
  EXPECT_DOUBLE_EQ(m.at("macro_recall"), (3.0 / 4 + 2.0 / 3 + 1.0 / 4) / 3);
  // 6 rows give their class 0.6, 5 rows 0.2.
  EXPECT_NEAR(m.at("logloss"), (6 * -std::log(0.6) + 5 * -std::log(0.2)) / 11, 1e-15);
  std::vector<std::string> names;
  for (const auto& [name, value] : m.values) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"accuracy", "top5", "logloss", "macro_precision",
                                             "macro_recall"}));
}

// Scores (a squared-loss network's outputs) rank like probabilities but have
// no log-loss: the same outputs scaled and shifted give the same metrics,
// with logloss NaN.
TEST(MulticlassMetricsTest, ScoresGiveTheRankingMetricsAndNoLogLoss) {
  LabelledOutputs c = three_class_case();
  const Metrics probabilities = compute_one(Task::kMulticlass, 3, c.outputs, c.labels);
  for (double& v : c.outputs) v = 3.0 * v - 1.5;  // negative scores too
  const Metrics scores = compute_one(Task::kMulticlassScores, 3, c.outputs, c.labels);
  EXPECT_EQ(scores.confusion, probabilities.confusion);
  for (const char* name : {"accuracy", "top5", "macro_precision", "macro_recall"}) {
    EXPECT_DOUBLE_EQ(scores.at(name), probabilities.at(name)) << name;
  }
  EXPECT_TRUE(std::isnan(scores.at("logloss")));
  EXPECT_EQ(task_for(OutputKind::kClassScores), Task::kMulticlassScores);
}

TEST(MulticlassMetricsTest, UndefinedPrecisionAndRecallAreNanAndLeftOutOfMacro) {
  // 4 classes: class 2 has rows but is never predicted (precision NaN,
  // recall 0); class 3 has neither (both NaN).
  const std::vector<double> outputs{0.7, 0.1, 0.1, 0.1,   // true 0, predicted 0
                                    0.1, 0.7, 0.1, 0.1,   // true 1, predicted 1
                                    0.6, 0.1, 0.2, 0.1,   // true 2, predicted 0
                                    0.1, 0.5, 0.3, 0.1};  // true 2, predicted 1
  const std::vector<float> labels{0, 1, 2, 2};
  const Metrics m = compute_one(Task::kMulticlass, 4, outputs, labels);
  EXPECT_DOUBLE_EQ(m.precision[0], 0.5);
  EXPECT_DOUBLE_EQ(m.precision[1], 0.5);
  EXPECT_TRUE(std::isnan(m.precision[2]));
  EXPECT_TRUE(std::isnan(m.precision[3]));
  EXPECT_DOUBLE_EQ(m.recall[0], 1.0);
  EXPECT_DOUBLE_EQ(m.recall[1], 1.0);
  EXPECT_DOUBLE_EQ(m.recall[2], 0.0);
  EXPECT_TRUE(std::isnan(m.recall[3]));
  EXPECT_DOUBLE_EQ(m.at("macro_precision"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("macro_recall"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
}

// top5 of one row: 1 when `label` is among the 5 highest, else 0.
double top5_of(const std::vector<double>& p, float label) {
  return compute_one(Task::kMulticlass, p.size(), p, {label}).at("top5");
}

TEST(MulticlassMetricsTest, TopKBreaksTiesByLowerClassIndex) {
  // Ranking: 1, 2, 3, 4 (0.2 each, by index), then 0, then 5, 6.
  const std::vector<double> spread{0.1, 0.2, 0.2, 0.2, 0.2, 0.05, 0.05};
  for (const float y : {0.0f, 1.0f, 4.0f}) EXPECT_EQ(top5_of(spread, y), 1.0) << y;
  for (const float y : {5.0f, 6.0f}) EXPECT_EQ(top5_of(spread, y), 0.0) << y;
  // A tie across the cut: 6 first, then 0, 1, 2, 3 of the six tied at 0.1.
  const std::vector<double> cut{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4};
  for (const float y : {6.0f, 0.0f, 3.0f}) EXPECT_EQ(top5_of(cut, y), 1.0) << y;
  for (const float y : {4.0f, 5.0f}) EXPECT_EQ(top5_of(cut, y), 0.0) << y;
  // All tied: classes 0..4 are in, and class 0 is the prediction.
  const std::vector<double> flat(6, 1.0 / 6);
  EXPECT_EQ(top5_of(flat, 4.0f), 1.0);
  EXPECT_EQ(top5_of(flat, 5.0f), 0.0);
  const Metrics m = compute_one(Task::kMulticlass, 6, flat, {3.0f});
  EXPECT_EQ(m.confusion[3 * 6 + 0], 1u);
  EXPECT_EQ(m.at("accuracy"), 0.0);
  // The rows together: the fraction of hits.
  std::vector<double> outputs = cut;
  outputs.insert(outputs.end(), cut.begin(), cut.end());
  outputs.insert(outputs.end(), cut.begin(), cut.end());
  EXPECT_DOUBLE_EQ(compute_one(Task::kMulticlass, 7, outputs, {3.0f, 4.0f, 6.0f}).at("top5"),
                   2.0 / 3);
}

// --top-k: the metric is named after k, and k past the class count counts
// every row.
TEST(MulticlassMetricsTest, TopKForAnyK) {
  // Ranking: 1, 2, 3, 4 (0.2 each, by index), then 0, then 5, 6.
  const std::vector<double> spread{0.1, 0.2, 0.2, 0.2, 0.2, 0.05, 0.05};
  const auto top = [&](std::size_t k, float label) {
    Metrics m;
    run_threads(ThreadsOptions{}, [&](Communicator& comm) {
      m = compute_metrics(comm, Task::kMulticlass, spread.size(), spread, std::vector<float>{label},
                          k);
    });
    return m;
  };
  EXPECT_EQ(top(1, 1.0f).at("top1"), 1.0);  // the prediction itself
  EXPECT_EQ(top(1, 2.0f).at("top1"), 0.0);
  EXPECT_EQ(top(2, 2.0f).at("top2"), 1.0);
  EXPECT_EQ(top(2, 3.0f).at("top2"), 0.0);
  EXPECT_EQ(top(6, 5.0f).at("top6"), 1.0);
  EXPECT_EQ(top(6, 6.0f).at("top6"), 0.0);
  EXPECT_EQ(top(20, 6.0f).at("top20"), 1.0);
  EXPECT_THROW(top(1, 0.0f).at("top5"), std::out_of_range);
  EXPECT_THROW(top(0, 0.0f), std::invalid_argument);
}

// Softmax of normal logits: `rows` probability rows of `classes` values,
// with labels drawn uniformly.
LabelledOutputs random_case(std::size_t rows, std::size_t classes, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> logit(0.0, 2.0);
  std::uniform_int_distribution<std::size_t> label(0, classes - 1);
  LabelledOutputs c;
  std::vector<double> z(classes);
  for (std::size_t r = 0; r < rows; ++r) {
    double total = 0.0;
    for (auto& v : z) total += (v = std::exp(logit(rng)));
    for (const double v : z) c.outputs.push_back(v / total);
    c.labels.push_back(static_cast<float>(label(rng)));
  }
  return c;
}

TEST(MulticlassMetricsTest, LogLossMatchesTheDirectFormula) {
  LabelledOutputs c = random_case(50, 4, 7);
  // A row that gives its class probability 0: clamped to 1e-15.
  c.outputs.insert(c.outputs.end(), {0.0, 0.5, 0.5, 0.0});
  c.labels.push_back(0.0f);
  double direct = 0.0;
  for (std::size_t r = 0; r < c.labels.size(); ++r) {
    const double p = c.outputs[r * 4 + static_cast<std::size_t>(c.labels[r])];
    direct -= std::log(p > 0 ? p : 1e-15);
  }
  direct /= static_cast<double>(c.labels.size());
  const Metrics m = compute_one(Task::kMulticlass, 4, c.outputs, c.labels);
  EXPECT_NEAR(m.at("logloss"), direct, 1e-13 * direct);
  EXPECT_GT(direct, 34.0 / 51);  // the clamped row alone adds 34.5 / 51
}

TEST(MetricsSplitTest, ResultsDoNotDependOnTheNumberOfWorkers) {
  const LabelledOutputs multi = random_case(103, 7, 11);
  std::vector<double> reals(multi.labels.size()), probabilities(multi.labels.size());
  std::vector<float> targets(multi.labels.size()), binary(multi.labels.size());
  for (std::size_t r = 0; r < multi.labels.size(); ++r) {
    reals[r] = multi.outputs[r * 7] * 10.0;
    targets[r] = multi.labels[r] * 1.5f;
    probabilities[r] = multi.outputs[r * 7 + 1];
    binary[r] = multi.labels[r] > 2.5f ? 1.0f : 0.0f;
  }
  struct Case {
    Task task;
    std::size_t width;
    const std::vector<double>& outputs;
    const std::vector<float>& labels;
    std::vector<std::string> sums;  // values summed in floating point
  };
  const std::vector<Case> cases{{Task::kMulticlass, 7, multi.outputs, multi.labels, {"logloss"}},
                                {Task::kBinary, 1, probabilities, binary, {"logloss"}},
                                {Task::kRegression, 1, reals, targets, {"mse", "rmse", "r2"}}};
  for (const Case& c : cases) {
    const Metrics one = compute_one(c.task, c.width, c.outputs, c.labels);
    EXPECT_EQ(one.rows, 103u);
    for (const auto& [name, value] : one.values) EXPECT_FALSE(std::isnan(value)) << name;
    for (int workers = 2; workers <= 4; ++workers) {
      const auto results = compute_split(workers, c.task, c.width, c.outputs, c.labels);
      const std::string what =
          std::to_string(workers) + " workers, width " + std::to_string(c.width);
      expect_same(results[0], one, c.sums, 1e-13, what);
      for (std::size_t r = 1; r < results.size(); ++r) {
        expect_same(results[r], results[0], {}, 0.0, what + ", rank " + std::to_string(r));
      }
    }
  }
}

TEST(MetricsSplitTest, NoRowsAnywhereGivesNanValues) {
  for (const auto& [task, width] :
       {std::pair{Task::kMulticlass, std::size_t{3}}, std::pair{Task::kBinary, std::size_t{1}},
        std::pair{Task::kRegression, std::size_t{1}}}) {
    const Metrics m = compute_split(3, task, width, {}, {}, {0, 0, 0})[1];
    EXPECT_EQ(m.rows, 0u);
    ASSERT_FALSE(m.values.empty());
    for (const auto& [name, value] : m.values) EXPECT_TRUE(std::isnan(value)) << name;
    if (task == Task::kMulticlass) {
      EXPECT_EQ(m.classes, 3u);
      EXPECT_EQ(m.confusion, std::vector<std::uint64_t>(9, 0));
      for (std::size_t k = 0; k < 3; ++k) {
        EXPECT_TRUE(std::isnan(m.precision[k]));
        EXPECT_TRUE(std::isnan(m.recall[k]));
      }
    } else {
      EXPECT_EQ(m.classes, 0u);
      EXPECT_TRUE(m.confusion.empty());
    }
  }
}

TEST(MulticlassMetricsTest, InvalidClassIdsAreRejectedOnEveryWorker) {
  const LabelledOutputs c = three_class_case();
  for (const float bad : {3.0f, -1.0f, 1.5f, std::nanf("")}) {
    std::vector<float> labels = c.labels;
    labels[9] = bad;  // on worker 2 of 3 (split 6, 0, 5)
    try {
      compute_split(3, Task::kMulticlass, 3, c.outputs, labels);
      ADD_FAILURE() << "label " << bad << " accepted";
    } catch (const InputError& e) {
      char value[32];
      std::snprintf(value, sizeof value, "label %g ", static_cast<double>(bad));
      EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
    }
  }
  // Every rank throws the same error, so that none waits for the others.
  std::vector<float> labels = c.labels;
  labels[2] = 7.0f;
  labels[10] = 9.0f;
  std::vector<std::string> messages(3);
  ThreadsOptions opts;
  opts.workers = 3;
  run_threads(opts, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    const std::size_t first = r == 0 ? 0 : 6, count = r == 1 ? 0 : (r == 0 ? 6 : 5);
    try {
      compute_metrics(comm, Task::kMulticlass, 3,
                      std::span<const double>(c.outputs).subspan(first * 3, count * 3),
                      std::span<const float>(labels).subspan(first, count));
    } catch (const InputError& e) {
      messages[r] = e.what();
    }
  });
  EXPECT_NE(messages[0].find("label 7 "), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("2 labels"), std::string::npos) << messages[0];
  EXPECT_EQ(messages[1], messages[0]);
  EXPECT_EQ(messages[2], messages[0]);
}

TEST(MetricsShapeTest, WidthAndSizeMismatchesAreProgrammingErrors) {
  // On one worker, with the spans passed as they are.
  const auto call = [](Task task, std::size_t width, std::vector<double> outputs,
                       std::vector<float> labels) {
    run_threads({},
                [&](Communicator& comm) { compute_metrics(comm, task, width, outputs, labels); });
  };
  EXPECT_NO_THROW(call(Task::kMulticlass, 2, {0.5, 0.5}, {0.0f}));
  EXPECT_THROW(call(Task::kMulticlass, 1, {0.5}, {0.0f}), std::invalid_argument);
  EXPECT_THROW(call(Task::kBinary, 2, {0.5, 0.5}, {0.0f}), std::invalid_argument);
  EXPECT_THROW(call(Task::kMulticlass, 3, {0.5, 0.5}, {0.0f}), std::invalid_argument);
  EXPECT_THROW(call(Task::kRegression, 1, {1.0, 2.0}, {0.0f}), std::invalid_argument);
}

// evaluate() must keep giving what it gave before compute_metrics existed:
// checked against the definitions computed directly, row by row.
struct Direct {
  double mse = 0, r2 = 0, accuracy = 0, logloss = 0, auc = 0;
};

Direct direct_metrics(std::span<const double> outputs, std::span<const float> labels) {
  const auto n = static_cast<double>(labels.size());
  Direct d;
  double mean = 0.0;
  for (const float y : labels) mean += y;
  mean /= n;
  double sse = 0.0, sst = 0.0;
  std::size_t pairs = 0;
  double wins = 0.0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double y = labels[i], f = outputs[i];
    sse += (f - y) * (f - y);
    sst += (y - mean) * (y - mean);
    d.accuracy += ((f >= 0.5) == (y > 0.5)) ? 1.0 : 0.0;
    const double p = std::min(std::max(f, 1e-15), 1.0 - 1e-15);
    d.logloss += y > 0.5 ? -std::log(p) : -std::log(1.0 - p);
    if (y > 0.5) {
      // Mann-Whitney by pairs: each (positive, negative) pair.
      for (std::size_t j = 0; j < labels.size(); ++j) {
        if (labels[j] > 0.5f) continue;
        ++pairs;
        wins += f > outputs[j] ? 1.0 : (f == outputs[j] ? 0.5 : 0.0);
      }
    }
  }
  d.mse = sse / n;
  d.r2 = 1.0 - sse / sst;
  d.accuracy /= n;
  d.logloss /= n;
  d.auc = wins / static_cast<double>(pairs);
  return d;
}

Metrics evaluate_split(int workers, const Model& model, std::span<const double> params,
                       const Dataset& data) {
  const auto counts = split_counts(data.rows(), static_cast<std::size_t>(workers));
  std::vector<std::size_t> rows(data.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  Metrics result;
  ThreadsOptions opts;
  opts.workers = workers;
  run_threads(opts, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    const std::size_t first =
        std::accumulate(counts.begin(), counts.begin() + comm.rank(), std::size_t{0});
    Metrics m = evaluate(comm, model, params, data, std::span(rows).subspan(first, counts[r]));
    if (r == 0) result = std::move(m);
  });
  return result;
}

std::vector<double> random_params(std::size_t count, double scale, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> params(count);
  for (auto& v : params) v = normal(rng);
  return params;
}

TEST(EvaluateTest, LinearModelGivesRegressionMetrics) {
  CsvOptions o;
  o.label = "target";
  const Dataset data = read_csv(kData + "diabetes.csv", o);
  const auto model = make_linear_model(ModelKind::kLinear, data.cols());
  std::vector<double> params = random_params(model->num_params(), 1.0, 3);
  params.back() = 150.0;
  std::vector<double> outputs;
  for (std::size_t r = 0; r < data.rows(); ++r)
    outputs.push_back(model->predict(params, data.row(r)));
  const Direct d = direct_metrics(outputs, data.labels());
  for (const int workers : {1, 3}) {
    const Metrics m = evaluate_split(workers, *model, params, data);
    EXPECT_EQ(m.rows, data.rows());
    EXPECT_NEAR(m.at("mse"), d.mse, 1e-12 * d.mse);
    EXPECT_NEAR(m.at("rmse"), std::sqrt(d.mse), 1e-12 * std::sqrt(d.mse));
    EXPECT_NEAR(m.at("r2"), d.r2, 1e-10);
    EXPECT_EQ(m.classes, 0u);
  }
}

TEST(EvaluateTest, LogisticModelGivesBinaryMetrics) {
  CsvOptions o;
  o.label = "malignant";
  o.label_kind = LabelKind::kBinary;
  const Dataset data = read_csv(kData + "breast_cancer.csv", o);
  const auto model = make_linear_model(ModelKind::kLogistic, data.cols());
  const std::vector<double> params = random_params(model->num_params(), 0.01, 5);
  std::vector<double> outputs;
  for (std::size_t r = 0; r < data.rows(); ++r)
    outputs.push_back(model->predict(params, data.row(r)));
  const Direct d = direct_metrics(outputs, data.labels());
  ASSERT_GT(d.auc, 0.0);
  ASSERT_LT(d.auc, 1.0);
  for (const int workers : {1, 3}) {
    const Metrics m = evaluate_split(workers, *model, params, data);
    EXPECT_EQ(m.rows, data.rows());
    EXPECT_DOUBLE_EQ(m.at("accuracy"), d.accuracy);
    EXPECT_NEAR(m.at("logloss"), d.logloss, 1e-12 * d.logloss);
    EXPECT_NEAR(m.at("auc"), d.auc, 1e-12);
  }
}

TEST(ConfusionTextTest, ColumnsAreAligned) {
  const LabelledOutputs c = three_class_case();
  Metrics m = compute_one(Task::kMulticlass, 3, c.outputs, c.labels);
  m.confusion[1 * 3 + 1] = 1234;  // a number wider than its header
  EXPECT_EQ(confusion_to_text(m),
            "true\\pred  0     1  2\n"
            "0          3     0  1\n"
            "1          1  1234  0\n"
            "2          0     3  1\n");
  const std::vector<std::string> names{"setosa", "versicolor", "a-much-longer-name"};
  EXPECT_EQ(confusion_to_text(m, names),
            "true\\pred           setosa  versicolor  a-much-longer-name\n"
            "setosa                   3           0                   1\n"
            "versicolor               1        1234                   0\n"
            "a-much-longer-name       0           3                   1\n");
  EXPECT_THROW(confusion_to_text(m, std::span(names).first(2)), std::invalid_argument);
  EXPECT_EQ(confusion_to_text(Metrics{}), "");
}

}  // namespace
}  // namespace dtrain
