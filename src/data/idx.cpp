// IDX reader (the MNIST format; Y. LeCun's description at
// yann.lecun.com/exdb/mnist): magic 00 00 TT RR, RR big-endian u32
// dimensions, then the elements, big-endian, row-major.
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "binary_matrix.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain {
namespace detail {
namespace {

std::uint32_t be32(std::string_view b, std::size_t at) {
  return std::uint32_t{static_cast<unsigned char>(b[at])} << 24 |
         std::uint32_t{static_cast<unsigned char>(b[at + 1])} << 16 |
         std::uint32_t{static_cast<unsigned char>(b[at + 2])} << 8 |
         std::uint32_t{static_cast<unsigned char>(b[at + 3])};
}

std::string hex(std::uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

bool idx_type(unsigned char code, ElementType& type) {
  switch (code) {
    case 0x08:
      type = ElementType::kU8;
      return true;
    case 0x09:
      type = ElementType::kI8;
      return true;
    case 0x0B:
      type = ElementType::kI16;
      return true;
    case 0x0C:
      type = ElementType::kI32;
      return true;
    case 0x0D:
      type = ElementType::kF32;
      return true;
    case 0x0E:
      type = ElementType::kF64;
      return true;
    default:
      return false;
  }
}

// Parses the header and checks the data size. `labels`: the file must be a
// 1-D array of integers.
RawMatrix parse_idx(BinaryFile file, bool labels) {
  const std::string& path = file.path;
  const std::string_view b = file.bytes;
  if (b.empty()) fail(path, 0, file.gzipped ? "empty IDX data (after gunzip)" : "empty file");
  if (b.size() < 4) {
    fail(path, 0, "truncated: expected a 4-byte magic number, got " + std::to_string(b.size()));
  }
  const std::uint32_t magic = be32(b, 0);
  const std::string expected =
      labels ? "0x00000801 for labels" : "0x00000803 for images, 0x000008XX in general";
  if (b[0] != 0 || b[1] != 0) {
    fail(path, 0,
         "not an IDX file: bad magic number " + hex(magic, 8) + " (expected " + expected + ")");
  }
  const auto code = static_cast<unsigned char>(b[2]);
  const auto rank = static_cast<unsigned char>(b[3]);
  RawMatrix m;
  if (!idx_type(code, m.type)) {
    fail(path, 0,
         "bad magic number " + hex(magic, 8) + ": unknown IDX element type " + hex(code, 2) +
             " (expected 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32 or 0x0e f64)");
  }
  if (rank == 0) fail(path, 0, "bad magic number " + hex(magic, 8) + ": an IDX array of rank 0");
  if (labels && rank != 1) {
    fail(path, 0,
         "a labels file must be a 1-D IDX array (magic 0x00000801), got rank " +
             std::to_string(rank) + " (magic " + hex(magic, 8) + ")");
  }
  if (labels && is_float(m.type)) {
    fail(path, 0,
         std::string("labels must be integers, got IDX element type ") + element_name(m.type));
  }
  const std::size_t header = 4 + 4 * std::size_t{rank};
  if (b.size() < header) {
    fail(path, 0,
         "truncated: expected " + std::to_string(header) + " bytes of header, got " +
             std::to_string(b.size()));
  }
  m.rows = be32(b, 4);
  m.cols = 1;
  for (std::size_t d = 1; d < rank; ++d) {
    // Each dimension is below 2^32, so the product overflows only after
    // the data size check would have failed anyway; it reports that.
    std::uint64_t next = 0;
    if (__builtin_mul_overflow(m.cols, std::uint64_t{be32(b, 4 + 4 * d)}, &next)) {
      next = UINT64_MAX;
    }
    m.cols = next;
  }
  m.noun = labels ? "label" : (rank >= 3 ? "image" : "row");
  check_data_size(file, header, m.rows, m.cols, m.type, m.noun);
  m.offset = header;
  m.big_endian = true;
  m.row_stride = m.cols;
  m.col_stride = 1;
  m.file = std::move(file);
  return m;
}

}  // namespace

MatrixSource open_idx(const std::string& path, const std::string& labels_path,
                      const IdxOptions& opts) {
  if (opts.scale && !std::isfinite(*opts.scale)) {
    throw ConfigError("IDX options: scale must be finite, got " + std::to_string(*opts.scale));
  }
  const std::string labels = labels_path.empty() ? idx_labels_path(path) : labels_path;
  MatrixSource s;
  s.features = parse_idx(read_binary_file(path), false);
  s.labels = parse_idx(read_binary_file(labels), true);
  if (s.labels->rows != s.features.rows) {
    fail(path, 0,
         std::to_string(s.features.rows) + " " + s.features.noun + "s but " + labels + " has " +
             std::to_string(s.labels->rows) + " labels");
  }
  s.scale = opts.scale ? *opts.scale : (s.features.type == ElementType::kU8 ? 1.0 / 255.0 : 1.0);
  s.allow_nonfinite = opts.allow_nonfinite;
  s.label_kind = opts.label_kind;
  s.allow_empty = opts.allow_empty;
  return s;
}

}  // namespace detail

std::string idx_labels_path(const std::string& images_path) {
  constexpr std::string_view kImages = "images-idx3";
  constexpr std::string_view kLabels = "labels-idx1";
  const std::size_t slash = images_path.rfind('/');
  const std::size_t name = slash == std::string::npos ? 0 : slash + 1;
  const std::size_t at = images_path.rfind(kImages);
  if (at == std::string::npos || at < name) {
    throw ConfigError(images_path +
                      ": no labels file given, and the name has no 'images-idx3' part to derive "
                      "it from (name the labels file)");
  }
  std::string out = images_path;
  out.replace(at, kImages.size(), kLabels);
  return out;
}

Dataset read_idx(const std::string& path, const std::string& labels_path, const IdxOptions& opts) {
  const detail::MatrixSource source = detail::open_idx(path, labels_path, opts);
  detail::validate(source);
  return detail::to_dataset(source);
}

}  // namespace dtrain
