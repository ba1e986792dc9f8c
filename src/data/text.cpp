#include "text.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/error.h"

namespace dtrain::detail {

namespace {

// Closes a POSIX file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

TextFile load_text_file(const std::string& path) {
  TextFile file{path, {}};
  // POSIX I/O: one read per large chunk, and errno for a precise message.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, 0, std::string("cannot open file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    fail(path, 0, std::string("cannot read file: ") + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) fail(path, 0, "cannot open file: is a directory");
  // Read until EOF rather than trusting st_size (pipes, files still growing).
  constexpr std::size_t kChunk = 1 << 20;
  if (st.st_size > 0) file.bytes.reserve(static_cast<std::size_t>(st.st_size) + kChunk);
  std::size_t used = 0;
  for (;;) {
    file.bytes.resize(used + kChunk);
    const ssize_t n = ::read(fd.get(), file.bytes.data() + used, kChunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, 0, std::string("cannot read file: ") + std::strerror(errno));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  file.bytes.resize(used);
  return file;
}

LineReader::LineReader(std::string_view bytes, std::size_t first_line, bool file_start)
    : rest_(bytes), number_(first_line - 1) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (file_start && rest_.substr(0, kBom.size()) == kBom) rest_.remove_prefix(kBom.size());
}

bool LineReader::next(Line& line) {
  if (rest_.empty()) return false;
  const void* nl = std::memchr(rest_.data(), '\n', rest_.size());
  std::size_t len =
      nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - rest_.data()) : rest_.size();
  std::string_view text = rest_.substr(0, len);
  rest_.remove_prefix(nl ? len + 1 : len);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  line.text = text;
  line.number = ++number_;
  return true;
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

std::string_view trim(std::string_view s, std::string_view blanks) {
  const std::size_t b = s.find_first_not_of(blanks);
  if (b == std::string_view::npos) return {};
  const std::size_t e = s.find_last_not_of(blanks);
  return s.substr(b, e - b + 1);
}

void fail(const std::string& path, std::size_t line, std::string_view what) {
  std::string msg = path;
  if (line > 0) {
    msg += ':';
    msg += std::to_string(line);
  }
  msg += ": ";
  msg += what;
  throw InputError(msg);
}

namespace {

// Whether text is well-formed UTF-8, a sequence cut short at the end
// allowed (quoted() shows a prefix). Overlong forms and surrogates pass:
// this only tells text from binary bytes.
bool utf8_text(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = c < 0x80           ? 1
                            : (c >> 5) == 0x6  ? 2
                            : (c >> 4) == 0xe  ? 3
                            : (c >> 3) == 0x1e ? 4
                                               : 0;
    if (len == 0) return false;
    for (std::size_t k = 1; k < len && i + k < text.size(); ++k) {
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 40;
  const std::string_view shown = text.substr(0, kMax);
  // Non-ASCII bytes stay as they are in UTF-8 text (a column named 'préc')
  // and are escaped in anything else, so that a binary file's bytes cannot
  // garble the one-line message.
  const bool escape_high = !utf8_text(shown);
  std::string out = "'";
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const auto c = static_cast<unsigned char>(shown[i]);
    if (c < 0x20 || c == 0x7f || (escape_high && c >= 0x80)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

NumberStatus parse_float(std::string_view s, float& out) {
  // from_chars rejects a leading '+', which "+1" labels (LibSVM) need.
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  if (s.empty()) return NumberStatus::kNotNumber;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  float v = 0;
  auto [ptr, ec] = std::from_chars(first, last, v, std::chars_format::general);
  if (ptr != last) return NumberStatus::kNotNumber;
  if (ec == std::errc()) {
    out = v;
    return NumberStatus::kOk;
  }
  if (ec != std::errc::result_out_of_range) return NumberStatus::kNotNumber;
  // Out of float range: an underflow (1e-50) is just zero, an overflow is an
  // error. Telling them apart through double covers all but absurd inputs.
  double d = 0;
  auto rd = std::from_chars(first, last, d, std::chars_format::general);
  bool underflow = false;
  if (rd.ec == std::errc()) {
    underflow = std::fabs(d) < 1.0;
  } else {
    const std::size_t e = s.find_first_of("eE");
    underflow = e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-';
  }
  if (!underflow) return NumberStatus::kOutOfRange;
  out = s[0] == '-' ? -0.0f : 0.0f;
  return NumberStatus::kOk;
}

std::string label_problem(std::string_view text, float& label, LabelKind kind) {
  switch (kind) {
    case LabelKind::kAny:
      return {};
    case LabelKind::kBinary:
      if (label == -1.0f) {
        label = 0.0f;
      } else if (label != 0.0f && label != 1.0f) {
        return "label out of range for a binary model: " + quoted(text) +
               " (expected 0/1 or -1/+1)";
      }
      return {};
    case LabelKind::kClass: {
      std::string_view s = text;
      if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
      double exact = 0;
      const auto [ptr, ec] =
          std::from_chars(s.data(), s.data() + s.size(), exact, std::chars_format::general);
      if (ec != std::errc() || ptr != s.data() + s.size() || !(exact >= 0) || exact > kMaxClassId ||
          exact != std::floor(exact)) {
        return "label is not a class id: " + quoted(text) + " (expected an integer in 0.." +
               std::to_string(kMaxClassId) + ")";
      }
      label = static_cast<float>(exact);
      return {};
    }
  }
  return {};
}

}  // namespace dtrain::detail
