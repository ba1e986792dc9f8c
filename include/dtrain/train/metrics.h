// Evaluation metrics computed over the rows of all workers together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/data/dataset.h"
#include "dtrain/model/model.h"
#include "dtrain/model/trainable.h"

namespace dtrain {

// What a model's outputs predict, and so which metrics apply to them.
enum class Task { kRegression, kBinary, kMulticlass, kMulticlassScores };

// Named metric values in a fixed, task-dependent order:
//   regression: mse, rmse, r2
//   binary:     accuracy, logloss, auc
//   multiclass: accuracy, topK (top5 by default), logloss, macro_precision,
//     macro_recall
// A value that is undefined for the rows at hand (no rows at all, one class
// only for auc, constant targets for r2) is NaN.
struct Metrics {
  std::uint64_t rows = 0;
  std::vector<std::pair<std::string, double>> values;

  // The value called `name`; throws std::out_of_range if absent.
  double at(const std::string& name) const;

  // Multiclass only (0 and empty otherwise).
  std::size_t classes = 0;
  // classes x classes row counts, row-major: confusion[true * classes + predicted].
  std::vector<std::uint64_t> confusion;
  // Per class. precision[c] is NaN when no row was predicted as c, recall[c]
  // when no row belongs to c.
  std::vector<double> precision, recall;
};

// The task a model's outputs call for: values are regression, P(y = 1)
// binary, class probabilities multiclass, class scores multiclass scores.
Task task_for(OutputKind kind);

// Collective: every worker passes the model outputs for its own rows (any
// number, zero included) and all get the metrics of all rows together.
// `outputs` holds labels.size() rows of `width` values, row-major:
//   kRegression: width 1, the predicted value; labels are the targets.
//     mse, rmse, r2.
//   kBinary: width 1, P(label = 1); labels are 0/1.
//     accuracy (p >= 0.5 predicts 1), logloss (p clamped to
//     [1e-15, 1 - 1e-15]), auc (see roc_auc).
//   kMulticlass: width = number of classes (>= 2), one probability per class;
//     labels are class ids in [0, width), stored as floats.
//     accuracy (the predicted class is the most probable one, the lowest
//     index among ties); top<top_k> ("top5"): the fraction of rows whose
//     class is among the min(top_k, width) most probable ones (ties ranked
//     by lower class index); logloss: mean of -log(max(p[label], 1e-15)); macro_precision
//     and macro_recall: means of the per-class values over the classes where
//     they are defined; plus the confusion matrix and per-class fields.
//   kMulticlassScores: as kMulticlass, from one score per class (the highest
//     predicts); the scores are not probabilities, so logloss is NaN.
// Throws InputError, on every worker, naming the offending value when a
// multiclass label is not an integer in [0, width). A width that does not
// suit the task, or an `outputs` size other than labels.size() * width, is a
// programming error: std::invalid_argument.
// top_k (>= 1) only matters for the multiclass tasks.
Metrics compute_metrics(Communicator& comm, Task task, std::size_t width,
                        std::span<const double> outputs, std::span<const float> labels,
                        std::size_t top_k = 5);

// Collective: every worker passes its own rows; all get the global metrics.
// Linear models are evaluated as kRegression, logistic ones as kBinary.
Metrics evaluate(Communicator& comm, const Model& model, std::span<const double> params,
                 const Dataset& data, std::span<const std::size_t> rows);

// Area under the ROC curve from scores and 0/1 labels (ties get half
// credit, as in the Mann-Whitney U statistic). NaN when a class is absent.
double roc_auc(std::span<const double> scores, std::span<const float> labels);

// The confusion matrix of multiclass metrics as a text table, one line per
// true class and one column per predicted class, numbers right-aligned:
//   true\pred  setosa  versicolor  virginica
//   setosa         50           0          0
//   ...
// Classes are named by class_names when given (one name per class, else
// std::invalid_argument), by their ids otherwise. Empty for metrics without a
// confusion matrix.
std::string confusion_to_text(const Metrics& metrics,
                              std::span<const std::string> class_names = {});

}  // namespace dtrain
