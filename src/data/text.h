// Internal helpers shared by the readers and the shard writer: whole-file
// loading, line iteration with physical line numbers, number parsing and the
// "path:line: what" error convention. Not part of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/data/dataset.h"
#include "dtrain/data/readers.h"

namespace dtrain::detail {

// A whole file in memory. Reading it in one go is both the fastest way to
// parse it and what lets the shard writer copy original lines verbatim.
struct TextFile {
  std::string path;
  std::string bytes;
};

// Throws InputError("PATH: cannot open file: <reason>") when unreadable.
TextFile load_text_file(const std::string& path);

// One physical line: its text without the line terminator ("\n" or "\r\n")
// and its 1-based line number.
struct Line {
  std::string_view text;
  std::size_t number = 0;
};

// Iterates over the lines of a buffer; a UTF-8 byte order mark at the start is
// skipped (spreadsheets write one) and a final line need not end in '\n'.
class LineReader {
 public:
  explicit LineReader(std::string_view bytes);
  bool next(Line& line);

 private:
  std::string_view rest_;
  std::size_t number_ = 0;
};

// True when the line holds nothing but spaces and tabs.
bool is_blank(std::string_view s);
std::string_view trim(std::string_view s, std::string_view blanks = " \t");

// "PATH:LINE: what" (or "PATH: what" when line is 0) as an InputError.
[[noreturn]] void fail(const std::string& path, std::size_t line, std::string_view what);

// A field quoted for an error message: single quotes, control characters
// escaped and long text shortened, so the message stays one short line.
std::string quoted(std::string_view text);

enum class NumberStatus { kOk, kNotNumber, kOutOfRange };
// Parses the whole of `s` as a float with std::from_chars (locale-free). A
// leading '+' is accepted; values too small for a float round to zero, values
// too large are kOutOfRange. "nan"/"inf" parse (callers decide on them).
NumberStatus parse_float(std::string_view s, float& out);

// Everything the readers produce plus, for each data row, its source line:
// what the shard writer needs to copy rows verbatim.
struct ParsedFile {
  Dataset data;
  std::vector<Line> row_lines;  // one per data row, in row-id order (keep_lines)
  Line header;                  // CSV with header only; number 0 otherwise
};

ParsedFile parse_csv(const TextFile& file, const CsvOptions& opts, bool keep_lines);
ParsedFile parse_libsvm(const TextFile& file, const LibsvmOptions& opts, bool keep_lines);

}  // namespace dtrain::detail
