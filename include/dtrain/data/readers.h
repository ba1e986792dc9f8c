// Readers for CSV and LibSVM files. Every error is an InputError whose
// message starts with "file:line: " (line numbers count from 1 and include the
// header and comment lines), so a user can jump straight to the culprit.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/data/dataset.h"

namespace dtrain {

// What labels are acceptable for the model that will consume the data.
enum class LabelKind {
  kAny,     // any finite number (regression)
  kBinary,  // 0/1 or -1/+1; -1 is mapped to 0
};

struct CsvOptions {
  char delimiter = ',';
  bool has_header = true;
  // Lines whose first non-blank character is this are skipped; '\0': none.
  // The delimiter must differ from it and from '\n', '\r' and '"'.
  char comment = '#';
  // Label column: a header name, or a 0-based index given as digits (a header
  // name made of digits wins over the index). Empty means "the last column".
  std::string label = "";
  // When false the file may lack the label column entirely (prediction):
  // every label is then 0.
  bool require_label = true;
  // Keep the raw text of this column (header name or index) in Dataset::keys
  // for hash partitioning. Empty: keep none.
  std::string key_column = "";
  // Feature columns to use, by header name, in this order (models trained on
  // another file select their columns so). Empty: every non-label column.
  std::vector<std::string> select_features;
  bool allow_nonfinite = false;  // NaN/Inf features are errors unless set; labels never
  LabelKind label_kind = LabelKind::kAny;
  // A file with no data rows (e.g. an empty shard) gives an empty dataset
  // instead of an error.
  bool allow_empty = false;
};

struct LibsvmOptions {
  // When non-zero, the number of features the model expects: larger indices
  // are an error and the dataset is widened to it.
  std::size_t num_features = 0;
  bool allow_nonfinite = false;  // for feature values; labels must be finite
  LabelKind label_kind = LabelKind::kAny;
  bool allow_empty = false;  // as in CsvOptions
};

// CSV: fields are trimmed of blanks (spaces and tabs other than the
// delimiter); quoting is not supported, except that a header name wrapped in
// double quotes is unwrapped. Header names must be unique. Columns neither
// selected as features, label nor key are not parsed, so they may hold text.
Dataset read_csv(const std::string& path, const CsvOptions& opts = {});
// LibSVM / SVMlight: "label idx:val ..." with 1-based strictly increasing
// indices (stored 0-based), "# comment" to the end of a line. A "qid:N"
// token right after the label (SVMrank files) is accepted and ignored.
Dataset read_libsvm(const std::string& path, const LibsvmOptions& opts = {});

enum class FileFormat { kCsv, kLibsvm };
// "csv" / "libsvm" -> format; throws ConfigError otherwise.
FileFormat parse_format(const std::string& name);
// Guess from the extension (.svm, .libsvm, .txt with "idx:val" -> libsvm);
// defaults to CSV.
FileFormat guess_format(const std::string& path);

}  // namespace dtrain
