// Internal machinery of the binary readers (IDX, .npy): a file read whole and
// inflated when gzip-compressed, the numeric array inside it described but
// not yet converted, and the conversion of chosen rows to a float32 Dataset.
// Keeping the raw bytes and converting only the rows a rank owns is what lets
// load_partitioned hold one float copy of its share, never of the whole file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dtrain/data/dataset.h"
#include "dtrain/data/readers.h"

namespace dtrain::detail {

// A whole file, inflated when its first bytes are the gzip magic 1f 8b
// (several concatenated gzip members are read as one stream, as gzip(1)
// does). `stored_bytes` is its size on disk.
struct BinaryFile {
  std::string path;
  std::string bytes;
  std::uint64_t stored_bytes = 0;
  bool gzipped = false;
};

// Throws InputError("PATH: cannot open file: ..."), ("PATH: corrupt gzip
// data: ...") and the like.
BinaryFile read_binary_file(const std::string& path);

enum class ElementType { kU8, kI8, kU16, kI16, kU32, kI32, kU64, kI64, kF32, kF64 };
std::size_t element_size(ElementType type);
bool is_float(ElementType type);
const char* element_name(ElementType type);  // "u8", "f32", ...

// A rows x cols array of `type` in file.bytes: element (r, c) starts at byte
// offset + (r * row_stride + c * col_stride) * element_size(type). The
// parsers check that every such element lies inside the bytes.
struct RawMatrix {
  BinaryFile file;
  std::size_t offset = 0;
  ElementType type = ElementType::kU8;
  bool big_endian = false;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::uint64_t row_stride = 0;
  std::uint64_t col_stride = 0;
  const char* noun = "row";  // what a row is, for messages: "image", "row", "label"
};

// Checks that the data of a rows x cols array of `type` starting at `offset`
// fits `file` exactly: "PATH: truncated: expected N bytes of NOUN data, got
// M" or "PATH: M bytes where N bytes of NOUN data were expected (trailing
// data)". Multiplication overflow counts as truncation.
void check_data_size(const BinaryFile& file, std::size_t offset, std::uint64_t rows,
                     std::uint64_t cols, ElementType type, std::string_view noun);

// Features plus labels, as the readers and the loader use them.
struct MatrixSource {
  RawMatrix features;
  // The labels as a one-column matrix; none: the last column of `features`
  // is the label and the columns before it are the features.
  std::optional<RawMatrix> labels;
  double scale = 1;
  bool allow_nonfinite = false;
  LabelKind label_kind = LabelKind::kAny;
  bool allow_empty = false;

  std::uint64_t rows() const { return features.rows; }
  std::uint64_t feature_cols() const { return labels ? features.cols : features.cols - 1; }
};

// Every check that needs the values: finite features (unless allowed, also
// after scaling), labels valid for label_kind, and a non-empty file (unless
// allowed). Messages: "PATH: row R, column C: non-finite value nan",
// "PATH: row R: label 2.5 is not a class id ...". Row and column count
// from 0.
void validate(const MatrixSource& source);

// The dataset of the given rows (strictly increasing indices below rows()),
// with their positions as row ids; without `rows`, of every row. Assumes
// validate() passed (binary labels -1 become 0 here).
Dataset to_dataset(const MatrixSource& source, std::span<const std::size_t> rows);
Dataset to_dataset(const MatrixSource& source);

// Opening a source checks the headers, sizes and the label count; validate()
// is separate so that the loader can run all checks before any conversion.
MatrixSource open_idx(const std::string& path, const std::string& labels_path,
                      const IdxOptions& opts);
MatrixSource open_npy(const std::string& path, const std::string& labels_path,
                      const NpyOptions& opts);

}  // namespace dtrain::detail
