// Helpers shared by the subcommands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dtrain/data/dataset.h"
#include "dtrain/data/datasets.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/readers.h"
#include "dtrain/model/model_file.h"
#include "dtrain/train/metrics.h"

namespace dtrain::cli {

// What to read from a data file and how.
struct DataRequest {
  std::string path;         // a file, or a dataset shortcut such as fashion-mnist
  std::string format;       // "", "csv", "libsvm", "idx" or "npy" ("" guesses from the file)
  std::string labels_path;  // IDX/npy: the labels file ("" = the default)
  std::string label;        // CSV label column (name or index); "" = last column
  LabelKind label_kind = LabelKind::kAny;
  bool require_label = true;
  std::string key_column;                    // CSV: keep this column's text
  std::vector<std::string> select_features;  // CSV: these columns, in order
  std::size_t num_features = 0;              // LibSVM: the model's width
  char delimiter = ',';
  std::vector<std::string> hashed_columns;  // CSV: feature-hash these columns
  std::size_t hash_dimension = 1 << 18;     // ... into this many buckets
};

FileFormat resolve_format(const DataRequest& request);
// The request with a dataset shortcut (fashion-mnist[:train|:test]) replaced
// by its files and format; ConfigError, saying how to install them, when
// they are missing.
DataRequest resolve_request(DataRequest request);
// How the loaders read a (resolved) request.
LoadOptions load_options_for(const DataRequest& request);
// Reads a whole file in this process (resolving shortcuts).
Dataset load_data(const DataRequest& request);

// Reads the data a saved model was trained for (same columns, same width)
// and applies the model's standardisation. Labels are read when present.
Dataset load_data_for_model(const SavedModel& model, const std::string& path,
                            const std::string& format, const std::string& labels_path,
                            const std::string& label, bool require_label, char delimiter);

LabelKind label_kind_for(ModelKind kind);

// Metrics as JSON; undefined values (NaN) become null, which JSON can hold.
nlohmann::json metrics_to_json(const Metrics& m);
nlohmann::json json_number(double v);
nlohmann::json json_numbers(const std::vector<double>& v);
// "mse 2859.7  rmse 53.48  r2 0.5177"
std::string metrics_to_text(const Metrics& m);

// Delimiter option: a single character, or "tab".
char parse_delimiter(const std::string& text);

}  // namespace dtrain::cli
