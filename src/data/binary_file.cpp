// Reading binary array files whole (inflating gzip with zlib), and turning
// chosen rows of the raw arrays into float32 datasets.
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "binary_matrix.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain::detail {
namespace {

// zlib's deflate never shrinks data by more than about 1032:1, so a trailer
// that claims more is not trusted as a size hint.
constexpr std::uint64_t kMaxInflateRatio = 1032;

// Ends a z_stream on scope exit.
class Inflater {
 public:
  explicit Inflater(const std::string& path) {
    // 16 + MAX_WBITS: a gzip header and trailer, not a raw zlib stream.
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {
      fail(path, 0, "cannot inflate: zlib failed to initialise");
    }
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() { inflateEnd(&stream_); }
  z_stream& stream() { return stream_; }

 private:
  z_stream stream_{};
};

std::string inflate_gzip(const std::string& path, std::string_view in) {
  const auto corrupt = [&](std::string_view what) {
    fail(path, 0, "corrupt gzip data: " + std::string(what));
  };
  std::string out;
  // The trailer's ISIZE (the last member's size mod 2^32) is a good first
  // guess for one-member files; the buffer grows when it is wrong.
  if (in.size() >= 18) {
    std::uint32_t isize = 0;
    for (int k = 0; k < 4; ++k) {
      isize |= std::uint32_t{static_cast<unsigned char>(in[in.size() - 4 + k])} << (8 * k);
    }
    const std::uint64_t cap = in.size() * kMaxInflateRatio;
    out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(isize, cap)) + 1);
  }
  if (out.size() < 4096) out.resize(4096);

  Inflater inflater(path);
  z_stream& zs = inflater.stream();
  std::size_t in_pos = 0;   // input handed to zlib so far
  std::size_t out_pos = 0;  // output produced so far
  // zlib counts in uInt, which may be narrower than the buffers.
  constexpr std::size_t kMaxStep = std::numeric_limits<uInt>::max();
  for (;;) {
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const std::size_t n = std::min(kMaxStep, in.size() - in_pos);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + in_pos));
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (out_pos == out.size()) out.resize(out.size() * 2);
    const std::size_t room = std::min(kMaxStep, out.size() - out_pos);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
    zs.avail_out = static_cast<uInt>(room);
    const int ret = inflate(&zs, Z_NO_FLUSH);
    out_pos += room - zs.avail_out;
    const std::size_t unread = zs.avail_in + (in.size() - in_pos);
    if (ret == Z_STREAM_END) {
      if (unread == 0) break;
      // Another gzip member follows (files joined with cat), or garbage.
      const std::size_t next = in.size() - unread;
      if (unread >= 2 && static_cast<unsigned char>(in[next]) == 0x1f &&
          static_cast<unsigned char>(in[next + 1]) == 0x8b) {
        if (inflateReset(&zs) != Z_OK) corrupt("cannot restart after a member");
        continue;
      }
      corrupt(std::to_string(unread) + " bytes of trailing garbage after the compressed stream");
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR) {
      // No progress: either the output is full (grow it) or the input ran
      // out before the end of the stream.
      if (zs.avail_out == 0) continue;
      if (unread == 0) corrupt("the compressed stream ends early (truncated file?)");
      corrupt("inflate made no progress");
    }
    if (ret == Z_MEM_ERROR) throw std::bad_alloc();
    corrupt(zs.msg ? zs.msg : "inflate failed (error " + std::to_string(ret) + ")");
  }
  out.resize(out_pos);
  // Usually the trailer's size was right and there is nothing to give back;
  // copying the whole buffer for one spare byte would cost more.
  if (out.capacity() - out_pos > out_pos / 4) out.shrink_to_fit();
  return out;
}

// A value for an error message: integers without a fraction, others in the
// shortest form that reads back the same.
std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

template <class T>
T load(const unsigned char* p, bool big_endian) {
  static_assert(std::is_trivially_copyable_v<T>);
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (big_endian != (std::endian::native == std::endian::big)) std::reverse(b, b + sizeof(T));
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

// Calls fn(T{}) with the C++ type of `type`.
template <class Fn>
decltype(auto) with_type(ElementType type, Fn&& fn) {
  switch (type) {
    case ElementType::kU8:
      return fn(std::uint8_t{});
    case ElementType::kI8:
      return fn(std::int8_t{});
    case ElementType::kU16:
      return fn(std::uint16_t{});
    case ElementType::kI16:
      return fn(std::int16_t{});
    case ElementType::kU32:
      return fn(std::uint32_t{});
    case ElementType::kI32:
      return fn(std::int32_t{});
    case ElementType::kU64:
      return fn(std::uint64_t{});
    case ElementType::kI64:
      return fn(std::int64_t{});
    case ElementType::kF32:
      return fn(float{});
    case ElementType::kF64:
      return fn(double{});
  }
  assert(false && "unknown element type");
  return fn(std::uint8_t{});
}

const unsigned char* element_ptr(const RawMatrix& m, std::uint64_t r, std::uint64_t c) {
  const std::uint64_t index = r * m.row_stride + c * m.col_stride;
  return reinterpret_cast<const unsigned char*>(m.file.bytes.data()) + m.offset +
         index * element_size(m.type);
}

// The bounds that check_data_size established, checked once per conversion.
[[maybe_unused]] bool inside(const RawMatrix& m) {
  if (m.rows == 0 || m.cols == 0) return m.offset <= m.file.bytes.size();
  const std::uint64_t last = (m.rows - 1) * m.row_stride + (m.cols - 1) * m.col_stride;
  return m.offset + (last + 1) * element_size(m.type) <= m.file.bytes.size();
}

double element(const RawMatrix& m, std::uint64_t r, std::uint64_t c) {
  return with_type(m.type, [&](auto tag) {
    return static_cast<double>(load<decltype(tag)>(element_ptr(m, r, c), m.big_endian));
  });
}

// A double as float, beyond the float range as an infinity (a plain
// conversion of such a value is undefined behaviour in C++).
float to_float(double d) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (d > kMax) return std::numeric_limits<float>::infinity();
  if (d < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

// Columns [0, n) of row r, times scale, as float.
void convert_row(const RawMatrix& m, std::uint64_t r, std::size_t n, double scale, float* out) {
  with_type(m.type, [&](auto tag) {
    using T = decltype(tag);
    const unsigned char* p = element_ptr(m, r, 0);
    const std::size_t step = static_cast<std::size_t>(m.col_stride) * sizeof(T);
    for (std::size_t k = 0; k < n; ++k, p += step) {
      out[k] = to_float(static_cast<double>(load<T>(p, m.big_endian)) * scale);
    }
  });
}

// The largest magnitude a value of an integer type can have.
double max_magnitude(ElementType type) {
  return with_type(type, [](auto tag) {
    using T = decltype(tag);
    return std::max(std::fabs(static_cast<double>(std::numeric_limits<T>::max())),
                    std::fabs(static_cast<double>(std::numeric_limits<T>::lowest())));
  });
}

const RawMatrix& label_matrix(const MatrixSource& s) { return s.labels ? *s.labels : s.features; }
std::uint64_t label_col(const MatrixSource& s) { return s.labels ? 0 : s.features.cols - 1; }

}  // namespace

BinaryFile read_binary_file(const std::string& path) {
  TextFile raw = load_text_file(path);
  BinaryFile file;
  file.path = path;
  file.stored_bytes = raw.bytes.size();
  if (raw.bytes.size() >= 2 && static_cast<unsigned char>(raw.bytes[0]) == 0x1f &&
      static_cast<unsigned char>(raw.bytes[1]) == 0x8b) {
    file.gzipped = true;
    file.bytes = inflate_gzip(path, raw.bytes);
  } else {
    file.bytes = std::move(raw.bytes);
  }
  return file;
}

std::size_t element_size(ElementType type) {
  return with_type(type, [](auto tag) { return sizeof(tag); });
}

bool is_float(ElementType type) { return type == ElementType::kF32 || type == ElementType::kF64; }

const char* element_name(ElementType type) {
  switch (type) {
    case ElementType::kU8:
      return "u8";
    case ElementType::kI8:
      return "i8";
    case ElementType::kU16:
      return "u16";
    case ElementType::kI16:
      return "i16";
    case ElementType::kU32:
      return "u32";
    case ElementType::kI32:
      return "i32";
    case ElementType::kU64:
      return "u64";
    case ElementType::kI64:
      return "i64";
    case ElementType::kF32:
      return "f32";
    case ElementType::kF64:
      return "f64";
  }
  return "?";
}

void check_data_size(const BinaryFile& file, std::size_t offset, std::uint64_t rows,
                     std::uint64_t cols, ElementType type, std::string_view noun) {
  assert(offset <= file.bytes.size());
  const std::uint64_t got = file.bytes.size() - offset;
  std::uint64_t elements = 0;
  std::uint64_t need = 0;
  if (__builtin_mul_overflow(rows, cols, &elements) ||
      __builtin_mul_overflow(elements, std::uint64_t{element_size(type)}, &need)) {
    fail(file.path, 0,
         "truncated: the header's dimensions call for more than 2^64 bytes of " +
             std::string(noun) + " data, got " + std::to_string(got));
  }
  // What the header says, so that a wrong rank or dimension shows.
  const std::string shape = " (" + std::to_string(rows) + " x " + std::to_string(cols) + " " +
                            element_name(type) + " from the header)";
  if (got < need) {
    fail(file.path, 0,
         "truncated: expected " + std::to_string(need) + " bytes of " + std::string(noun) +
             " data" + shape + ", got " + std::to_string(got));
  }
  if (got > need) {
    fail(file.path, 0,
         std::to_string(got) + " bytes where " + std::to_string(need) + " bytes of " +
             std::string(noun) + " data were expected" + shape +
             ": trailing data, or wrong dimensions");
  }
}

void validate(const MatrixSource& s) {
  assert(inside(s.features) && (!s.labels || inside(*s.labels)));
  assert(!s.labels || s.labels->rows == s.features.rows);
  const std::string& path = s.features.file.path;
  if (s.rows() == 0 && !s.allow_empty) fail(path, 0, "no data rows");

  // Features: only floats can be non-finite, or integers scaled past the
  // float range.
  const RawMatrix& f = s.features;
  const std::size_t cols = static_cast<std::size_t>(s.feature_cols());
  const bool may_overflow = !is_float(f.type) && max_magnitude(f.type) * std::fabs(s.scale) >
                                                     std::numeric_limits<float>::max();
  if (!s.allow_nonfinite && (is_float(f.type) || may_overflow)) {
    std::vector<float> row(cols);
    for (std::uint64_t r = 0; r < f.rows; ++r) {
      convert_row(f, r, cols, s.scale, row.data());
      for (std::size_t c = 0; c < cols; ++c) {
        if (std::isfinite(row[c])) continue;
        const double raw = element(f, r, c);
        const std::string where = "row " + std::to_string(r) + ", column " + std::to_string(c);
        if (std::isfinite(raw)) {
          fail(path, 0,
               where + ": value " + number_text(raw) + " is out of float range" +
                   (s.scale != 1 ? " once scaled" : ""));
        }
        fail(path, 0, where + ": non-finite value " + number_text(raw));
      }
    }
  }

  const RawMatrix& lm = label_matrix(s);
  const std::uint64_t lc = label_col(s);
  for (std::uint64_t r = 0; r < lm.rows; ++r) {
    const double v = element(lm, r, lc);
    const std::string where = "row " + std::to_string(r) + ": label " + number_text(v);
    if (!std::isfinite(v)) fail(lm.file.path, 0, where + " is not finite");
    if (std::fabs(v) > std::numeric_limits<float>::max()) {
      fail(lm.file.path, 0, where + " is out of float range");
    }
    switch (s.label_kind) {
      case LabelKind::kAny:
        break;
      case LabelKind::kBinary:
        if (v != 0 && v != 1 && v != -1) {
          fail(lm.file.path, 0,
               where + " is out of range for a binary model (expected 0/1 or -1/+1)");
        }
        break;
      case LabelKind::kClass:
        if (!(v >= 0 && v <= kMaxClassId && v == std::floor(v))) {
          fail(lm.file.path, 0,
               where + " is not a class id (expected an integer in 0.." +
                   std::to_string(kMaxClassId) + ")");
        }
        break;
    }
  }
}

Dataset to_dataset(const MatrixSource& s, std::span<const std::size_t> rows) {
  assert(inside(s.features) && (!s.labels || inside(*s.labels)));
  const auto cols = static_cast<std::size_t>(s.feature_cols());
  Dataset out = Dataset::dense(cols);
  out.reserve(rows.size());
  const RawMatrix& lm = label_matrix(s);
  const std::uint64_t lc = label_col(s);
  std::vector<float> x(cols);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const std::size_t r = rows[k];
    assert(r < s.rows() && (k == 0 || rows[k - 1] < r));
    convert_row(s.features, r, cols, s.scale, x.data());
    double label = element(lm, r, lc);
    if (s.label_kind == LabelKind::kBinary && label == -1) label = 0;
    out.add_dense_row(x, static_cast<float>(label), r);
  }
  return out;
}

Dataset to_dataset(const MatrixSource& s) {
  std::vector<std::size_t> all(static_cast<std::size_t>(s.rows()));
  for (std::size_t r = 0; r < all.size(); ++r) all[r] = r;
  return to_dataset(s, all);
}

}  // namespace dtrain::detail
