// LibSVM / SVMlight reader. Like the CSV reader it parses the whole file in
// memory with std::from_chars.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain {
namespace detail {
namespace {

// Largest 1-based index whose 0-based form fits the uint32 column ids.
constexpr std::uint64_t kMaxIndex = std::numeric_limits<std::uint32_t>::max();

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Splits on runs of spaces and tabs.
void tokenize(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
}

// The rows of `chunk`; `whole_file` adds the check for an empty file.
ParsedFile parse_libsvm_lines(const std::string& path, const Chunk& chunk,
                              const LibsvmOptions& opts, bool keep_lines, bool whole_file) {
  if (opts.num_features > kMaxIndex) {
    throw ConfigError("num_features " + std::to_string(opts.num_features) + " is too large");
  }
  ParsedFile out;
  Dataset data = Dataset::sparse(opts.num_features);
  {
    const std::string_view bytes = chunk.bytes;
    const auto rows = static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), '\n') + 1);
    const auto nnz = static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), ':'));
    data.reserve(rows, nnz);
    if (keep_lines) out.row_lines.reserve(rows);
  }
  std::vector<std::string_view> tokens;
  std::vector<std::uint32_t> idx;
  std::vector<float> val;
  LineReader lines(chunk.bytes, chunk.first_line, chunk.file_start);
  Line line;
  std::uint64_t row_id = 0;
  while (lines.next(line)) {
    std::string_view content = line.text;
    if (const std::size_t hash = content.find('#'); hash != std::string_view::npos) {
      content = content.substr(0, hash);
    }
    tokenize(content, tokens);
    if (tokens.empty()) continue;
    const std::size_t ln = line.number;

    float label = 0;
    const std::string_view lt = tokens[0];
    if (parse_float(lt, label) != NumberStatus::kOk) fail(path, ln, "bad label " + quoted(lt));
    if (!std::isfinite(label)) fail(path, ln, "non-finite label " + quoted(lt));
    if (const std::string problem = label_problem(lt, label, opts.label_kind); !problem.empty()) {
      fail(path, ln, problem);
    }

    idx.clear();
    val.clear();
    std::uint64_t prev = 0;
    for (std::size_t t = 1; t < tokens.size(); ++t) {
      const std::string_view tok = tokens[t];
      const std::size_t colon = tok.find(':');
      if (colon == std::string_view::npos || colon == 0 || colon + 1 == tok.size()) {
        fail(path, ln, "bad token " + quoted(tok) + " (expected index:value)");
      }
      const std::string_view is = tok.substr(0, colon);
      const std::string_view vs = tok.substr(colon + 1);
      if (is == "qid") {
        std::uint64_t qid = 0;
        if (t != 1 || !parse_u64(vs, qid)) {
          fail(path, ln, "bad token " + quoted(tok) + " (qid:N may only follow the label)");
        }
        continue;  // ranking groups mean nothing to dtrain's models
      }
      std::uint64_t index = 0;
      if (!parse_u64(is, index)) fail(path, ln, "bad feature index in token " + quoted(tok));
      if (index == 0) fail(path, ln, "feature index 0 (indices start at 1)");
      if (index <= prev) {
        fail(path, ln,
             "feature index " + std::to_string(index) + " not above the previous index " +
                 std::to_string(prev) + " (indices must increase)");
      }
      if (opts.num_features != 0 && index > opts.num_features) {
        fail(path, ln,
             "feature index " + std::to_string(index) + " above num_features " +
                 std::to_string(opts.num_features));
      }
      if (index > kMaxIndex)
        fail(path, ln, "feature index " + std::to_string(index) + " too large");
      float v = 0;
      switch (parse_float(vs, v)) {
        case NumberStatus::kOk:
          break;
        case NumberStatus::kNotNumber:
          fail(path, ln, "feature " + std::to_string(index) + ": not a number: " + quoted(vs));
        case NumberStatus::kOutOfRange:
          fail(path, ln,
               "feature " + std::to_string(index) + ": out of float range: " + quoted(vs));
      }
      if (!opts.allow_nonfinite && !std::isfinite(v)) {
        fail(path, ln, "feature " + std::to_string(index) + ": non-finite value " + quoted(vs));
      }
      prev = index;
      idx.push_back(static_cast<std::uint32_t>(index - 1));
      val.push_back(v);
    }
    data.add_sparse_row(idx, val, label, row_id++);
    if (keep_lines) out.row_lines.push_back(line);
  }
  if (whole_file && row_id == 0 && !opts.allow_empty) fail(path, 0, "empty file (no data rows)");
  out.data = std::move(data);
  return out;
}

}  // namespace

ParsedFile parse_libsvm(const TextFile& file, const LibsvmOptions& opts, bool keep_lines) {
  return parse_libsvm_lines(file.path, Chunk{file.bytes, 1, true}, opts, keep_lines, true);
}

ParsedFile parse_libsvm_chunk(const std::string& path, const Chunk& chunk,
                              const LibsvmOptions& opts) {
  return parse_libsvm_lines(path, chunk, opts, false, false);
}

}  // namespace detail

Dataset read_libsvm(const std::string& path, const LibsvmOptions& opts) {
  return detail::parse_libsvm(detail::load_text_file(path), opts, false).data;
}

}  // namespace dtrain
