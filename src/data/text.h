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
// For a piece of a file, `first_line` numbers its first line and `file_start`
// says whether it begins the file (a BOM anywhere else is data).
class LineReader {
 public:
  explicit LineReader(std::string_view bytes, std::size_t first_line = 1, bool file_start = true);
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

// Checks a parsed label against `kind` and maps it (binary -1 -> 0). Returns
// what is wrong with it ("label out of range for a binary model: '3' (...)",
// "label is not a class id: '2.5' (...)"), or an empty string when it is fine. `text`
// is the label as written: class ids are checked on it exactly, since the
// float would round "2.0000001" to 2.
std::string label_problem(std::string_view text, float& label, LabelKind kind);

// Everything the readers produce plus, for each data row, its source line:
// what the shard writer needs to copy rows verbatim.
struct ParsedFile {
  Dataset data;
  std::vector<Line> row_lines;  // one per data row, in row-id order (keep_lines)
  Line header;                  // CSV with header only; number 0 otherwise
};

ParsedFile parse_csv(const TextFile& file, const CsvOptions& opts, bool keep_lines);
ParsedFile parse_libsvm(const TextFile& file, const LibsvmOptions& opts, bool keep_lines);

// Parsing one worker's share of a file (whole lines from somewhere in it):
// the same checks and messages as parsing the whole file, with line numbers
// counted from `first_line`, except that a chunk without data rows is no
// error (only the whole file can be empty). Row ids count from 0 within the
// chunk; the caller shifts them once it knows how many rows come before.
struct Chunk {
  std::string_view bytes;
  std::size_t first_line = 1;  // physical line number of its first line
  bool file_start = true;      // it begins the file: a UTF-8 BOM is skipped
};

// `schema` is the file's first non-blank, non-comment line: the header (the
// chunks of such a file start after it) or, without a header, the first data
// row, which fixes the column count. Null when the file has no such line.
ParsedFile parse_csv_chunk(const std::string& path, const Chunk& chunk, const Line* schema,
                           const CsvOptions& opts);
ParsedFile parse_libsvm_chunk(const std::string& path, const Chunk& chunk,
                              const LibsvmOptions& opts);

}  // namespace dtrain::detail
