#include "dtrain/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace dtrain {

double Metrics::at(const std::string& name) const {
  for (const auto& [key, value] : values) {
    if (key == name) return value;
  }
  throw std::out_of_range("no metric '" + name + "'");
}

double roc_auc(std::span<const double> scores, std::span<const float> labels) {
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
  });
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  double positive_rank_sum = 0.0;
  std::size_t positives = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) {
      if (labels[order[k]] > 0.5f) {
        positive_rank_sum += avg_rank;
        ++positives;
      }
    }
    i = j;
  }
  const std::size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  const double np = static_cast<double>(positives);
  const double u = positive_rank_sum - np * (np + 1) / 2;
  return u / (np * static_cast<double>(negatives));
}

namespace {

// Concatenates every worker's values (in rank order) on every worker.
std::vector<double> allgather_varying(Communicator& comm, std::span<const double> local) {
  const auto p = static_cast<std::size_t>(comm.size());
  const std::uint64_t mine = local.size();
  std::vector<std::uint64_t> counts(p);
  comm.allgather(std::span<const std::uint64_t>(&mine, 1), std::span<std::uint64_t>(counts));
  const std::uint64_t widest = *std::max_element(counts.begin(), counts.end());
  std::vector<double> padded(widest, 0.0);
  std::copy(local.begin(), local.end(), padded.begin());
  std::vector<double> all(widest * p);
  comm.allgather(std::span<const double>(padded), std::span<double>(all));
  std::vector<double> out;
  out.reserve(std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}));
  for (std::size_t r = 0; r < p; ++r) {
    out.insert(out.end(), all.begin() + static_cast<std::ptrdiff_t>(r * widest),
               all.begin() + static_cast<std::ptrdiff_t>(r * widest + counts[r]));
  }
  return out;
}

Metrics regression_metrics(Communicator& comm, const Model& model, std::span<const double> params,
                           const Dataset& data, std::span<const std::size_t> rows) {
  const auto labels = data.labels();
  // [sum of squared errors, sum y, sum y^2, rows]
  std::vector<double> sums(4, 0.0);
  for (const std::size_t r : rows) {
    const double y = labels[r];
    const double e = model.predict(params, data.row(r)) - y;
    sums[0] += e * e;
    sums[1] += y;
    sums[2] += y * y;
  }
  sums[3] = static_cast<double>(rows.size());
  comm.allreduce(std::span<double>(sums));
  const double n = sums[3];
  Metrics m;
  m.rows = static_cast<std::uint64_t>(n);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double mse = n > 0 ? sums[0] / n : nan;
  const double total = sums[2] - sums[1] * sums[1] / n;
  m.values = {{"mse", mse},
              {"rmse", std::sqrt(mse)},
              {"r2", n > 0 && total > 0 ? 1.0 - sums[0] / total : nan}};
  return m;
}

Metrics binary_metrics(Communicator& comm, const Model& model, std::span<const double> params,
                       const Dataset& data, std::span<const std::size_t> rows) {
  const auto labels = data.labels();
  // [correct, summed log-loss, rows]
  std::vector<double> sums(3, 0.0);
  std::vector<double> scores;
  std::vector<double> ys;
  scores.reserve(rows.size());
  ys.reserve(rows.size());
  for (const std::size_t r : rows) {
    const double p = model.predict(params, data.row(r));
    const double y = labels[r];
    sums[0] += ((p >= 0.5) == (y > 0.5)) ? 1.0 : 0.0;
    sums[1] += model.row_loss(p, y);
    scores.push_back(p);
    ys.push_back(y);
  }
  sums[2] = static_cast<double>(rows.size());
  comm.allreduce(std::span<double>(sums));
  const auto all_scores = allgather_varying(comm, scores);
  const auto all_ys = allgather_varying(comm, ys);
  const std::vector<float> all_labels(all_ys.begin(), all_ys.end());
  const double n = sums[2];
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Metrics m;
  m.rows = static_cast<std::uint64_t>(n);
  m.values = {{"accuracy", n > 0 ? sums[0] / n : nan},
              {"logloss", n > 0 ? sums[1] / n : nan},
              {"auc", roc_auc(all_scores, all_labels)}};
  return m;
}

}  // namespace

Metrics evaluate(Communicator& comm, const Model& model, std::span<const double> params,
                 const Dataset& data, std::span<const std::size_t> rows) {
  switch (model.kind()) {
    case ModelKind::kLinear:
      return regression_metrics(comm, model, params, data, rows);
    case ModelKind::kLogistic:
      return binary_metrics(comm, model, params, data, rows);
  }
  return {};
}

}  // namespace dtrain
