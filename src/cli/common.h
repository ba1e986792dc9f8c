// Helpers shared by the subcommands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dtrain/data/dataset.h"
#include "dtrain/data/readers.h"
#include "dtrain/model/model_file.h"
#include "dtrain/train/metrics.h"

namespace dtrain::cli {

// What to read from a data file and how.
struct DataRequest {
  std::string path;
  std::string format;  // "", "csv" or "libsvm" ("" guesses from the file)
  std::string label;   // CSV label column (name or index); "" = last column
  LabelKind label_kind = LabelKind::kAny;
  bool require_label = true;
  std::string key_column;                    // CSV: keep this column's text
  std::vector<std::string> select_features;  // CSV: these columns, in order
  std::size_t num_features = 0;              // LibSVM: the model's width
  char delimiter = ',';
};

FileFormat resolve_format(const DataRequest& request);
Dataset load_data(const DataRequest& request);

// Reads the data a saved model was trained for (same columns, same width)
// and applies the model's standardisation. Labels are read when present.
Dataset load_data_for_model(const SavedModel& model, const std::string& path,
                            const std::string& format, const std::string& label, bool require_label,
                            char delimiter);

LabelKind label_kind_for(ModelKind kind);

nlohmann::json metrics_to_json(const Metrics& m);
// "mse 2859.7  rmse 53.48  r2 0.5177"
std::string metrics_to_text(const Metrics& m);

// Delimiter option: a single character, or "tab".
char parse_delimiter(const std::string& text);

}  // namespace dtrain::cli
