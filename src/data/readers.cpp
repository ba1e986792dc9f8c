#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain {

FileFormat parse_format(const std::string& name) {
  if (name == "csv") return FileFormat::kCsv;
  if (name == "libsvm") return FileFormat::kLibsvm;
  if (name == "idx") return FileFormat::kIdx;
  if (name == "npy") return FileFormat::kNpy;
  throw ConfigError("unknown data format " + detail::quoted(name) +
                    " (expected csv, libsvm, idx or npy)");
}

const char* format_name(FileFormat format) {
  switch (format) {
    case FileFormat::kCsv:
      return "csv";
    case FileFormat::kLibsvm:
      return "libsvm";
    case FileFormat::kIdx:
      return "idx";
    case FileFormat::kNpy:
      return "npy";
  }
  return "?";
}

namespace {

// True when the first data line of a .txt file looks like "label idx:val".
bool looks_like_libsvm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  detail::LineReader lines(head);
  detail::Line line;
  while (lines.next(line)) {
    std::string_view s = detail::trim(line.text);
    if (s.empty() || s.front() == '#') continue;
    const std::size_t space = s.find_first_of(" \t");
    if (space == std::string_view::npos) return false;  // a label alone says nothing
    const std::string_view tok = detail::trim(s.substr(space));
    const std::size_t colon = tok.find(':');
    return colon != std::string_view::npos && colon > 0 &&
           std::all_of(tok.begin(), tok.begin() + static_cast<std::ptrdiff_t>(colon),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
  }
  return false;
}

// The binary formats by their first bytes: a file with an unknown name that
// starts like one is not read as CSV (which would report its bytes as a
// malformed first line). Returns false for text, or an unreadable file.
bool sniff_binary_format(const std::string& path, FileFormat& format) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[6] = {};
  if (!in.read(reinterpret_cast<char*>(head), sizeof head)) return false;
  if (head[0] == 0x93 && std::string_view(reinterpret_cast<char*>(head + 1), 5) == "NUMPY") {
    format = FileFormat::kNpy;
    return true;
  }
  // gzip (dtrain reads compressed IDX only), or raw IDX: two zero bytes, a
  // type code (0x08 unsigned byte .. 0x0E double) and 1-4 dimensions.
  const bool gzip = head[0] == 0x1f && head[1] == 0x8b;
  const bool idx = head[0] == 0 && head[1] == 0 && head[2] >= 0x08 && head[2] <= 0x0e &&
                   head[3] >= 1 && head[3] <= 4;
  if (gzip || idx) {
    format = FileFormat::kIdx;
    return true;
  }
  return false;
}

}  // namespace

FileFormat guess_format(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".npy") return FileFormat::kNpy;
  std::string_view name = path;
  if (name.ends_with(".gz")) name.remove_suffix(3);
  if (name.ends_with("-idx1-ubyte") || name.ends_with("-idx3-ubyte")) return FileFormat::kIdx;
  if (ext == ".svm" || ext == ".libsvm") return FileFormat::kLibsvm;
  if (FileFormat sniffed; ext != ".csv" && sniff_binary_format(path, sniffed)) return sniffed;
  if (ext == ".txt" && looks_like_libsvm(path)) return FileFormat::kLibsvm;
  return FileFormat::kCsv;
}

}  // namespace dtrain
