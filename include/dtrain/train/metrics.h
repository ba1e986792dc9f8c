// Evaluation metrics computed over the rows of all workers together.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/data/dataset.h"
#include "dtrain/model/model.h"

namespace dtrain {

// Named metric values in a fixed, model-dependent order:
//   linear:   mse, rmse, r2
//   logistic: accuracy, logloss, auc
struct Metrics {
  std::uint64_t rows = 0;
  std::vector<std::pair<std::string, double>> values;

  // The value called `name`; throws std::out_of_range if absent.
  double at(const std::string& name) const;
};

// Collective: every worker passes its own rows; all get the global metrics.
Metrics evaluate(Communicator& comm, const Model& model, std::span<const double> params,
                 const Dataset& data, std::span<const std::size_t> rows);

// Area under the ROC curve from scores and 0/1 labels (ties get half
// credit, as in the Mann-Whitney U statistic). NaN when a class is absent.
double roc_auc(std::span<const double> scores, std::span<const float> labels);

}  // namespace dtrain
