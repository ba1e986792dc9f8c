// NumPy .npy reader (numpy.lib.format, versions 1.0, 2.0 and 3.0): the
// magic "\x93NUMPY", two version bytes, the header length (u16 in 1.0, u32
// later, little-endian), a Python dict literal with 'descr', 'fortran_order'
// and 'shape', then the array's bytes.
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "binary_matrix.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain {
namespace detail {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

// The subset of Python literal syntax that numpy writes in the header:
// {'key': value, ...} with string, True/False and tuple-of-int values.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false;
    bool has_order = false;
    bool has_shape = false;
    expect('{');
    for (;;) {
      skip_blanks();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip_blanks();
      if (key == "descr") {
        if (peek() == '[') bad("structured dtypes (a list of fields) are not supported");
        h.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        has_shape = true;
      } else {
        bad("unexpected key " + quoted(key));
      }
      skip_blanks();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') bad("expected ',' or '}'");
    }
    if (!has_descr || !has_order || !has_shape) {
      bad(std::string("missing key '") +
          (!has_descr   ? "descr"
           : !has_order ? "fortran_order"
                        : "shape") +
          "'");
    }
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(path_, 0, "bad .npy header " + quoted(text_) + ": " + what);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_blanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  void expect(char c) {
    skip_blanks();
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_blanks();
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    const std::size_t end = text_.find(q, pos_ + 1);
    if (end == std::string_view::npos) bad("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool boolean() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  std::vector<std::uint64_t> tuple() {
    std::vector<std::uint64_t> out;
    if (peek() != '(') bad("expected a tuple for 'shape'");
    ++pos_;
    for (;;) {
      skip_blanks();
      if (peek() == ')') break;
      std::uint64_t v = 0;
      const char* first = text_.data() + pos_;
      const auto [ptr, ec] = std::from_chars(first, text_.data() + text_.size(), v);
      if (ec != std::errc() || ptr == first) bad("expected a dimension in 'shape'");
      pos_ += static_cast<std::size_t>(ptr - first);
      // Python 2 wrote long integers with an L suffix.
      if (peek() == 'L') ++pos_;
      out.push_back(v);
      skip_blanks();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        bad("expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    return out;
  }

  const std::string& path_;
  std::string_view text_;
  std::size_t pos_ = 0;
};

// '<f4' and the like: byte order, kind, size.
void parse_descr(const std::string& path, const std::string& descr, RawMatrix& m) {
  const auto unsupported = [&] {
    fail(path, 0,
         "unsupported dtype " + quoted(descr) +
             " (expected f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 or b1, little- or big-endian)");
  };
  if (descr.size() < 3) unsupported();
  const char order = descr[0];
  const char kind = descr[1];
  const std::string_view size = std::string_view(descr).substr(2);
  if (order != '<' && order != '>' && order != '|' && order != '=') unsupported();
  using T = ElementType;
  if (kind == 'f' && size == "4") {
    m.type = T::kF32;
  } else if (kind == 'f' && size == "8") {
    m.type = T::kF64;
  } else if ((kind == 'u' || kind == 'b') && size == "1") {
    m.type = T::kU8;  // booleans are stored as one byte, 0 or 1
  } else if (kind == 'i' && size == "1") {
    m.type = T::kI8;
  } else if (kind == 'i' && size == "2") {
    m.type = T::kI16;
  } else if (kind == 'u' && size == "2") {
    m.type = T::kU16;
  } else if (kind == 'i' && size == "4") {
    m.type = T::kI32;
  } else if (kind == 'u' && size == "4") {
    m.type = T::kU32;
  } else if (kind == 'i' && size == "8") {
    m.type = T::kI64;
  } else if (kind == 'u' && size == "8") {
    m.type = T::kU64;
  } else {
    unsupported();
  }
  // '|' (no byte order) only makes sense for single bytes; '=' is native,
  // which numpy writes as '<' on every little-endian machine.
  if (order == '|' && element_size(m.type) != 1) unsupported();
  m.big_endian = order == '>';
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t k = 0; k < shape.size(); ++k) {
    s += std::to_string(shape[k]);
    if (k + 1 < shape.size() || shape.size() == 1) s += ",";
    if (k + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

std::uint32_t le(std::string_view b, std::size_t at, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t k = 0; k < n; ++k) {
    v |= std::uint32_t{static_cast<unsigned char>(b[at + k])} << (8 * k);
  }
  return v;
}

// `labels`: a 1-D array, or 2-D with one column.
RawMatrix parse_npy(BinaryFile file, bool labels) {
  const std::string& path = file.path;
  const std::string_view b = file.bytes;
  if (b.empty()) fail(path, 0, "empty file");
  if (b.substr(0, kMagic.size()) != kMagic.substr(0, std::min(b.size(), kMagic.size()))) {
    fail(path, 0,
         "not a .npy file: bad magic " + quoted(b.substr(0, kMagic.size())) +
             " (expected '\\x93NUMPY')");
  }
  if (b.size() < 10) {
    fail(path, 0,
         "truncated: expected at least 10 bytes of header, got " + std::to_string(b.size()));
  }
  const auto major = static_cast<unsigned char>(b[6]);
  const auto minor = static_cast<unsigned char>(b[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    fail(path, 0,
         "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (expected 1.0, 2.0 or 3.0)");
  }
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (b.size() < 8 + len_bytes) {
    fail(path, 0,
         "truncated: expected " + std::to_string(8 + len_bytes) + " bytes of header, got " +
             std::to_string(b.size()));
  }
  const std::size_t start = 8 + len_bytes;
  const std::uint64_t header_len = le(b, 8, len_bytes);
  if (b.size() - start < header_len) {
    fail(path, 0,
         "truncated: expected " + std::to_string(start + header_len) + " bytes of header, got " +
             std::to_string(b.size()));
  }
  const NpyHeader h =
      HeaderParser(path, b.substr(start, static_cast<std::size_t>(header_len))).parse();
  RawMatrix m;
  parse_descr(path, h.descr, m);
  if (labels) {
    if (!(h.shape.size() == 1 || (h.shape.size() == 2 && h.shape[1] == 1))) {
      fail(path, 0, "labels must be a 1-D array, got shape " + shape_text(h.shape));
    }
    m.rows = h.shape[0];
    m.cols = 1;
    m.noun = "label";
  } else {
    if (h.shape.size() != 2) {
      fail(path, 0, "expected a 2-D array (rows, columns), got shape " + shape_text(h.shape));
    }
    m.rows = h.shape[0];
    m.cols = h.shape[1];
    m.noun = "row";
  }
  const std::size_t offset = start + static_cast<std::size_t>(header_len);
  check_data_size(file, offset, m.rows, m.cols, m.type, m.noun);
  m.offset = offset;
  // Fortran order stores column after column: element (r, c) at c*rows + r.
  m.row_stride = h.fortran_order ? 1 : m.cols;
  m.col_stride = h.fortran_order ? m.rows : 1;
  m.file = std::move(file);
  return m;
}

}  // namespace

MatrixSource open_npy(const std::string& path, const std::string& labels_path,
                      const NpyOptions& opts) {
  MatrixSource s;
  s.features = parse_npy(read_binary_file(path), false);
  if (!labels_path.empty()) {
    s.labels = parse_npy(read_binary_file(labels_path), true);
    if (s.labels->rows != s.features.rows) {
      fail(path, 0,
           std::to_string(s.features.rows) + " rows but " + labels_path + " has " +
               std::to_string(s.labels->rows) + " labels");
    }
  } else if (s.features.cols == 0) {
    fail(path, 0, "no columns: without a labels file the last column is the label");
  }
  s.scale = 1;
  s.allow_nonfinite = opts.allow_nonfinite;
  s.label_kind = opts.label_kind;
  s.allow_empty = opts.allow_empty;
  return s;
}

}  // namespace detail

Dataset read_npy(const std::string& path, const std::string& labels_path, const NpyOptions& opts) {
  const detail::MatrixSource source = detail::open_npy(path, labels_path, opts);
  detail::validate(source);
  return detail::to_dataset(source);
}

}  // namespace dtrain
