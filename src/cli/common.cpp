#include "common.h"

#include <cmath>
#include <cstdio>

#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain::cli {

FileFormat resolve_format(const DataRequest& request) {
  return request.format.empty() ? guess_format(request.path) : parse_format(request.format);
}

DataRequest resolve_request(DataRequest request) {
  if (const auto files = resolve_dataset_shortcut(request.path)) {
    request.path = files->features;
    request.labels_path = files->labels;
    request.format = format_name(files->format);
  }
  return request;
}

LoadOptions load_options_for(const DataRequest& request) {
  LoadOptions load;
  load.format = resolve_format(request);
  load.labels_path = request.labels_path;
  load.csv.delimiter = request.delimiter;
  load.csv.label = request.label;
  load.csv.require_label = request.require_label;
  load.csv.key_column = request.key_column;
  load.csv.select_features = request.select_features;
  load.csv.label_kind = request.label_kind;
  if (!request.hashed_columns.empty()) {
    load.csv.hashed_columns = request.hashed_columns;
    load.csv.hash_dimension = request.hash_dimension;
  }
  load.libsvm.num_features = request.num_features;
  load.libsvm.label_kind = request.label_kind;
  return load;
}

Dataset load_data(const DataRequest& unresolved) {
  const DataRequest request = resolve_request(unresolved);
  const LoadOptions load = load_options_for(request);
  if (load.format == FileFormat::kLibsvm) return read_libsvm(request.path, load.libsvm);
  if (load.format == FileFormat::kCsv) return read_csv(request.path, load.csv);
  // The binary formats are read through the parallel loader on one worker.
  Dataset data;
  run_threads({}, [&](Communicator& comm) {
    data = load_partitioned(comm, request.path, load, RangePartitioner{});
  });
  return data;
}

LabelKind label_kind_for(ModelKind kind) {
  switch (kind) {
    case ModelKind::kLinear:
      return LabelKind::kAny;
    case ModelKind::kLogistic:
    case ModelKind::kSparseLogistic:
      return LabelKind::kBinary;
    case ModelKind::kSoftmax:
    case ModelKind::kMlp:
      return LabelKind::kClass;
  }
  return LabelKind::kAny;
}

Dataset load_data_for_model(const SavedModel& model, const std::string& path,
                            const std::string& format, const std::string& labels_path,
                            const std::string& label, bool require_label, char delimiter) {
  DataRequest request;
  request.path = path;
  request.labels_path = labels_path;
  request.format = format.empty() ? model.spec.input_format : format;
  request.label = label.empty() ? model.spec.label_name : label;
  request.label_kind = model.spec.architecture().output_kind() == OutputKind::kValue &&
                               model.spec.architecture().is_network()
                           ? LabelKind::kAny
                           : label_kind_for(model.spec.kind);
  request.hashed_columns = model.spec.hashed_columns;
  request.hash_dimension = model.spec.hash_dimension;
  request.require_label = require_label;
  // Hashed data's names are derived, not columns of the file.
  if (model.spec.hash_dimension == 0) request.select_features = model.spec.feature_names;
  request.num_features = model.spec.num_features;
  request.delimiter = delimiter;
  Dataset data = load_data(request);
  if (data.cols() != model.spec.num_features) {
    throw InputError(path + ": has " + std::to_string(data.cols()) +
                     " features, the model expects " + std::to_string(model.spec.num_features));
  }
  return model.standardizer.apply(data);
}

nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json json_numbers(const std::vector<double>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const double x : v) j.push_back(json_number(x));
  return j;
}

nlohmann::json metrics_to_json(const Metrics& m) {
  nlohmann::json j;
  j["rows"] = m.rows;
  for (const auto& [name, value] : m.values) j[name] = json_number(value);
  if (m.classes > 0) {
    j["classes"] = m.classes;
    j["confusion"] = m.confusion;
    j["precision"] = json_numbers(m.precision);
    j["recall"] = json_numbers(m.recall);
  }
  return j;
}

std::string metrics_to_text(const Metrics& m) {
  std::string out;
  char buf[64];
  for (const auto& [name, value] : m.values) {
    // Undefined values (see Metrics) read "n/a", as JSON's null does.
    if (std::isfinite(value)) {
      std::snprintf(buf, sizeof buf, "%s%s %.6g", out.empty() ? "" : "  ", name.c_str(), value);
    } else {
      std::snprintf(buf, sizeof buf, "%s%s n/a", out.empty() ? "" : "  ", name.c_str());
    }
    out += buf;
  }
  return out;
}

char parse_delimiter(const std::string& text) {
  if (text == "tab" || text == "\\t") return '\t';
  if (text.size() != 1)
    throw ConfigError("--delimiter must be one character or 'tab', got '" + text + "'");
  return text[0];
}

}  // namespace dtrain::cli
