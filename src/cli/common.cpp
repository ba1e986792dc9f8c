#include "common.h"

#include <cstdio>

#include "dtrain/error.h"

namespace dtrain::cli {

FileFormat resolve_format(const DataRequest& request) {
  return request.format.empty() ? guess_format(request.path) : parse_format(request.format);
}

Dataset load_data(const DataRequest& request) {
  if (resolve_format(request) == FileFormat::kLibsvm) {
    LibsvmOptions opts;
    opts.num_features = request.num_features;
    opts.label_kind = request.label_kind;
    return read_libsvm(request.path, opts);
  }
  CsvOptions opts;
  opts.delimiter = request.delimiter;
  opts.label = request.label;
  opts.require_label = request.require_label;
  opts.key_column = request.key_column;
  opts.select_features = request.select_features;
  opts.label_kind = request.label_kind;
  return read_csv(request.path, opts);
}

LabelKind label_kind_for(ModelKind kind) {
  return kind == ModelKind::kLogistic ? LabelKind::kBinary : LabelKind::kAny;
}

Dataset load_data_for_model(const SavedModel& model, const std::string& path,
                            const std::string& format, const std::string& label, bool require_label,
                            char delimiter) {
  DataRequest request;
  request.path = path;
  request.format = format.empty() ? model.spec.input_format : format;
  request.label = label.empty() ? model.spec.label_name : label;
  request.label_kind = label_kind_for(model.spec.kind);
  request.require_label = require_label;
  request.select_features = model.spec.feature_names;
  request.num_features = model.spec.num_features;
  request.delimiter = delimiter;
  Dataset data = load_data(request);
  if (data.cols() != model.spec.num_features) {
    throw InputError(path + ": has " + std::to_string(data.cols()) +
                     " features, the model expects " + std::to_string(model.spec.num_features));
  }
  return model.standardizer.apply(data);
}

nlohmann::json metrics_to_json(const Metrics& m) {
  nlohmann::json j;
  j["rows"] = m.rows;
  for (const auto& [name, value] : m.values) j[name] = value;
  return j;
}

std::string metrics_to_text(const Metrics& m) {
  std::string out;
  char buf[64];
  for (const auto& [name, value] : m.values) {
    std::snprintf(buf, sizeof buf, "%s%s %.6g", out.empty() ? "" : "  ", name.c_str(), value);
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
