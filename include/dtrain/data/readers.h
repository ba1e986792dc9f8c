// Readers for CSV, LibSVM, IDX (MNIST) and NumPy .npy files. Every error is
// an InputError whose message starts with "file:line: " for the text formats
// (line numbers count from 1 and include the header and comment lines), or
// "file: " for the binary ones, whose messages name the row and column
// (counted from 0, as row ids are), so a user can jump straight to the
// culprit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/data/dataset.h"

namespace dtrain {

// What labels are acceptable for the model that will consume the data.
enum class LabelKind {
  kAny,     // any finite number (regression)
  kBinary,  // 0/1 or -1/+1; -1 is mapped to 0
  // A class id for multiclass models: an exact non-negative integer below
  // kMaxClassId + 1 = 2^24, the range in which float32 holds every integer.
  kClass,
};
inline constexpr std::uint32_t kMaxClassId = (1u << 24) - 1;

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
  // Feature hashing of categorical columns, on when hash_dimension > 0. The
  // dataset is then sparse: the numeric features (select_features, or every
  // column that is neither label nor hashed) keep indices 0..m-1 with zeros
  // left out, and a hashed column c whose field holds the text v adds 1.0 at
  //   m + reduce_to_range(hash_bytes(c + '\x1f' + v), hash_dimension)
  // (partition.h), where c is the column's header name (without a header,
  // its 0-based index in decimal) and v the field with blanks trimmed. An
  // empty field adds nothing (a missing category). Entries that land on the
  // same index add up. The hash is fixed, so indices are the same on every
  // run and machine. Feature names: the numeric names, then "hash[0]" ..
  // "hash[D-1]" (one string per slot: about 32 bytes each), so that
  // feature_names().size() == cols() as for dense data.
  // Hashed columns are given like the label (name, or 0-based index in
  // digits); a column that does not exist is a ConfigError.
  std::vector<std::string> hashed_columns;
  std::size_t hash_dimension = 0;
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

// IDX, the MNIST file format: a big-endian header (two zero bytes, the
// element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64,
// the rank, then one u32 per dimension) followed by the big-endian elements
// in row-major order. Row i of the dataset is slice i of the first dimension;
// the later dimensions are flattened into the features (an image of 28 x 28
// pixels gives 784 features, row by row). Labels come from a second, 1-D IDX
// file of an integer type with as many entries. Files compressed with gzip
// are recognised by their first two bytes (1f 8b), whatever their name, and
// inflated with zlib.
struct IdxOptions {
  // Features are multiplied by this. Unset: 1/255 for u8 data, so that pixels
  // lie in [0, 1], and 1 (the values as stored) for every other type. Must be
  // finite (ConfigError otherwise).
  std::optional<double> scale;
  bool allow_nonfinite = false;  // NaN/Inf features (f32/f64) are errors unless set
  LabelKind label_kind = LabelKind::kAny;
  bool allow_empty = false;  // zero rows give an empty dataset instead of an error
};

// NumPy .npy (format versions 1.0, 2.0 and 3.0): a 2-D array of features, in
// C or Fortran order, of dtype f4, f8, i1, i2, i4, i8, u1, u2, u4 or u8 in
// either byte order, converted to float32. Labels come from a second .npy
// file, 1-D (or 2-D with one column), of the same length; without one, the
// LAST column of the array is the label and the others are the features.
// Compressed (gzip) files are inflated like IDX files.
struct NpyOptions {
  bool allow_nonfinite = false;  // NaN/Inf features are errors unless set; labels never
  LabelKind label_kind = LabelKind::kAny;
  bool allow_empty = false;  // zero rows give an empty dataset instead of an error
};

// Reads an IDX features file and its labels file into a dense dataset with
// row ids 0..n-1. An empty `labels_path` is derived from the features path
// by replacing its "images-idx3" with "labels-idx1" (ConfigError when the
// name has no such part). Messages: "PATH: truncated: expected N bytes of
// image data, got M", "PATH: N images but LABELS has M labels", ...
Dataset read_idx(const std::string& path, const std::string& labels_path = "",
                 const IdxOptions& opts = {});
// The labels file that read_idx uses for `images_path` when none is given.
std::string idx_labels_path(const std::string& images_path);
// Reads a .npy features array and, when `labels_path` is not empty, its
// labels (else the last column is the label) into a dense dataset.
Dataset read_npy(const std::string& path, const std::string& labels_path = "",
                 const NpyOptions& opts = {});

enum class FileFormat { kCsv, kLibsvm, kIdx, kNpy };
// "csv" / "libsvm" / "idx" / "npy" -> format; throws ConfigError otherwise.
FileFormat parse_format(const std::string& name);
// The name parse_format takes for `format`.
const char* format_name(FileFormat format);
// Guess from the name: .svm, .libsvm, .txt with "idx:val" -> libsvm; .npy ->
// npy; a name ending in "-idx1-ubyte" or "-idx3-ubyte" (MNIST's names),
// optionally followed by ".gz" -> idx. Defaults to CSV.
FileFormat guess_format(const std::string& path);

}  // namespace dtrain
