#include "dtrain/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "dtrain/error.h"

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

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

double ratio_or_nan(double num, double den) { return den > 0 ? num / den : kNaN; }

Metrics regression_metrics(Communicator& comm, std::span<const double> predicted,
                           std::span<const float> labels) {
  // [sum of squared errors, sum y, sum y^2, rows]
  std::vector<double> sums(4, 0.0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double y = labels[i];
    const double e = predicted[i] - y;
    sums[0] += e * e;
    sums[1] += y;
    sums[2] += y * y;
  }
  sums[3] = static_cast<double>(labels.size());
  comm.allreduce(std::span<double>(sums));
  const double n = sums[3];
  Metrics m;
  m.rows = static_cast<std::uint64_t>(n);
  const double mse = ratio_or_nan(sums[0], n);
  const double total = sums[2] - sums[1] * sums[1] / n;
  m.values = {{"mse", mse},
              {"rmse", std::sqrt(mse)},
              {"r2", n > 0 && total > 0 ? 1.0 - sums[0] / total : kNaN}};
  return m;
}

Metrics binary_metrics(Communicator& comm, std::span<const double> probabilities,
                       std::span<const float> labels) {
  // [correct, summed log-loss, rows]
  std::vector<double> sums(3, 0.0);
  // (score, label) pairs: AUC needs every row, not a sum.
  std::vector<double> scored;
  scored.reserve(2 * labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double y = labels[i];
    const double p = std::clamp(probabilities[i], 1e-15, 1.0 - 1e-15);
    sums[0] += ((probabilities[i] >= 0.5) == (y > 0.5)) ? 1.0 : 0.0;
    sums[1] += -(y * std::log(p) + (1.0 - y) * std::log1p(-p));
    scored.push_back(probabilities[i]);
    scored.push_back(y);
  }
  sums[2] = static_cast<double>(labels.size());
  comm.allreduce(std::span<double>(sums));
  const auto all_scored = allgather_varying(comm, scored);
  std::vector<double> all_scores(all_scored.size() / 2);
  std::vector<float> all_labels(all_scored.size() / 2);
  for (std::size_t i = 0; i < all_scores.size(); ++i) {
    all_scores[i] = all_scored[2 * i];
    all_labels[i] = static_cast<float>(all_scored[2 * i + 1]);  // a float to begin with
  }
  const double n = sums[2];
  Metrics m;
  m.rows = static_cast<std::uint64_t>(n);
  m.values = {{"accuracy", ratio_or_nan(sums[0], n)},
              {"logloss", ratio_or_nan(sums[1], n)},
              {"auc", roc_auc(all_scores, all_labels)}};
  return m;
}

// True when `label` names one of `classes` classes.
bool is_class_id(float label, std::size_t classes) {
  return label >= 0.0f && static_cast<double>(label) < static_cast<double>(classes) &&
         label == std::floor(label);
}

// Every worker throws the same InputError, naming the first invalid label of
// the lowest rank that has one, so that no worker is left waiting in a
// collective for the others.
[[noreturn]] void throw_invalid_labels(Communicator& comm, double invalid_rows, bool have_local,
                                       float local_example, std::size_t classes) {
  const double mine[2] = {have_local ? 1.0 : 0.0, static_cast<double>(local_example)};
  std::vector<double> all(2 * static_cast<std::size_t>(comm.size()));
  comm.allgather(std::span<const double>(mine), std::span<double>(all));
  double example = kNaN;
  for (std::size_t r = 0; r < all.size(); r += 2) {
    if (all[r] > 0) {
      example = all[r + 1];
      break;
    }
  }
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "label %g is not a class id in [0, %zu); %.0f labels in all are invalid", example,
                classes, invalid_rows);
  throw InputError(buf);
}

// `probabilities` holds class scores when `are_probabilities` is false: the
// ranking metrics are the same, the log-loss is undefined.
Metrics multiclass_metrics(Communicator& comm, std::span<const double> probabilities,
                           std::span<const float> labels, std::size_t classes,
                           bool are_probabilities, std::size_t requested_top_k) {
  const std::size_t top_k = std::min(requested_top_k, classes);
  // One buffer, one allreduce: [rows, top-k hits, summed log-loss, invalid
  // labels, confusion counts]. Counts stay exact in a double up to 2^53.
  enum : std::size_t { kRows, kTopK, kLogLoss, kInvalid, kConfusion };
  std::vector<double> sums(kConfusion + classes * classes, 0.0);
  bool have_invalid = false;
  float invalid_example = 0.0f;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (!is_class_id(labels[i], classes)) {
      if (!have_invalid) invalid_example = labels[i];
      have_invalid = true;
      sums[kInvalid] += 1.0;
      continue;
    }
    const auto y = static_cast<std::size_t>(labels[i]);
    const auto p = probabilities.subspan(i * classes, classes);
    std::size_t predicted = 0;
    std::size_t ranked_above_y = 0;  // classes that come before y in the ranking
    for (std::size_t c = 0; c < classes; ++c) {
      if (p[c] > p[predicted]) predicted = c;
      if (p[c] > p[y] || (p[c] == p[y] && c < y)) ++ranked_above_y;
    }
    sums[kRows] += 1.0;
    sums[kTopK] += ranked_above_y < top_k ? 1.0 : 0.0;
    if (are_probabilities) sums[kLogLoss] += -std::log(std::max(p[y], 1e-15));
    sums[kConfusion + y * classes + predicted] += 1.0;
  }
  comm.allreduce(std::span<double>(sums));
  if (sums[kInvalid] > 0) {
    throw_invalid_labels(comm, sums[kInvalid], have_invalid, invalid_example, classes);
  }

  Metrics m;
  const double n = sums[kRows];
  m.rows = static_cast<std::uint64_t>(n);
  m.classes = classes;
  m.confusion.resize(classes * classes);
  for (std::size_t k = 0; k < m.confusion.size(); ++k) {
    m.confusion[k] = static_cast<std::uint64_t>(sums[kConfusion + k]);
  }
  m.precision.resize(classes);
  m.recall.resize(classes);
  double correct = 0.0;
  double precision_sum = 0.0, recall_sum = 0.0;
  std::size_t precision_defined = 0, recall_defined = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    std::uint64_t predicted_c = 0, true_c = 0;
    for (std::size_t other = 0; other < classes; ++other) {
      predicted_c += m.confusion[other * classes + c];
      true_c += m.confusion[c * classes + other];
    }
    const auto hits = static_cast<double>(m.confusion[c * classes + c]);
    correct += hits;
    m.precision[c] = ratio_or_nan(hits, static_cast<double>(predicted_c));
    m.recall[c] = ratio_or_nan(hits, static_cast<double>(true_c));
    if (predicted_c > 0) {
      precision_sum += m.precision[c];
      ++precision_defined;
    }
    if (true_c > 0) {
      recall_sum += m.recall[c];
      ++recall_defined;
    }
  }
  m.values = {
      {"accuracy", ratio_or_nan(correct, n)},
      {"top" + std::to_string(requested_top_k), ratio_or_nan(sums[kTopK], n)},
      {"logloss", are_probabilities ? ratio_or_nan(sums[kLogLoss], n) : kNaN},
      {"macro_precision", ratio_or_nan(precision_sum, static_cast<double>(precision_defined))},
      {"macro_recall", ratio_or_nan(recall_sum, static_cast<double>(recall_defined))}};
  return m;
}

}  // namespace

Metrics compute_metrics(Communicator& comm, Task task, std::size_t width,
                        std::span<const double> outputs, std::span<const float> labels,
                        std::size_t top_k) {
  if (top_k == 0) throw std::invalid_argument("compute_metrics: top_k must be at least 1");
  const bool multiclass = task == Task::kMulticlass || task == Task::kMulticlassScores;
  if (multiclass ? width < 2 : width != 1) {
    throw std::invalid_argument("compute_metrics: width " + std::to_string(width) +
                                " does not suit the task");
  }
  if (outputs.size() != labels.size() * width) {
    throw std::invalid_argument("compute_metrics: " + std::to_string(outputs.size()) +
                                " outputs for " + std::to_string(labels.size()) +
                                " rows of width " + std::to_string(width));
  }
  switch (task) {
    case Task::kRegression:
      return regression_metrics(comm, outputs, labels);
    case Task::kBinary:
      return binary_metrics(comm, outputs, labels);
    case Task::kMulticlass:
      return multiclass_metrics(comm, outputs, labels, width, /*are_probabilities=*/true, top_k);
    case Task::kMulticlassScores:
      return multiclass_metrics(comm, outputs, labels, width, /*are_probabilities=*/false, top_k);
  }
  return {};
}

Metrics evaluate(Communicator& comm, const Model& model, std::span<const double> params,
                 const Dataset& data, std::span<const std::size_t> rows) {
  const auto all_labels = data.labels();
  std::vector<double> outputs;
  std::vector<float> labels;
  outputs.reserve(rows.size());
  labels.reserve(rows.size());
  for (const std::size_t r : rows) {
    outputs.push_back(model.predict(params, data.row(r)));
    labels.push_back(all_labels[r]);
  }
  const Task task = model.kind() == ModelKind::kLinear ? Task::kRegression : Task::kBinary;
  return compute_metrics(comm, task, 1, outputs, labels);
}

std::string confusion_to_text(const Metrics& metrics, std::span<const std::string> class_names) {
  const std::size_t k = metrics.classes;
  if (k == 0) return {};
  if (!class_names.empty() && class_names.size() != k) {
    throw std::invalid_argument("confusion_to_text: " + std::to_string(class_names.size()) +
                                " names for " + std::to_string(k) + " classes");
  }
  std::vector<std::string> names(k);
  for (std::size_t c = 0; c < k; ++c) {
    names[c] = class_names.empty() ? std::to_string(c) : class_names[c];
  }
  const std::string corner = "true\\pred";
  std::size_t first_width = corner.size();
  for (const auto& name : names) first_width = std::max(first_width, name.size());
  // Each column is as wide as its header or its widest count.
  std::vector<std::size_t> widths(k);
  for (std::size_t c = 0; c < k; ++c) {
    widths[c] = names[c].size();
    for (std::size_t t = 0; t < k; ++t) {
      widths[c] = std::max(widths[c], std::to_string(metrics.confusion[t * k + c]).size());
    }
  }
  const auto pad_right = [](const std::string& s, std::size_t w) {
    return s + std::string(w - s.size(), ' ');
  };
  const auto pad_left = [](const std::string& s, std::size_t w) {
    return std::string(w - s.size(), ' ') + s;
  };
  std::string out = pad_right(corner, first_width);
  for (std::size_t c = 0; c < k; ++c) out += "  " + pad_left(names[c], widths[c]);
  out += '\n';
  for (std::size_t t = 0; t < k; ++t) {
    out += pad_right(names[t], first_width);
    for (std::size_t c = 0; c < k; ++c) {
      out += "  " + pad_left(std::to_string(metrics.confusion[t * k + c]), widths[c]);
    }
    out += '\n';
  }
  return out;
}

Task task_for(OutputKind kind) {
  switch (kind) {
    case OutputKind::kValue:
      return Task::kRegression;
    case OutputKind::kProbability:
      return Task::kBinary;
    case OutputKind::kClassProbabilities:
      return Task::kMulticlass;
    case OutputKind::kClassScores:
      return Task::kMulticlassScores;
  }
  return Task::kRegression;
}

}  // namespace dtrain
