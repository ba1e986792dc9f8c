// CSV reader: the whole file is read at once and split with memchr; numbers
// go through std::from_chars, so parsing is locale-free and allocation-free
// per field.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "text.h"

namespace dtrain {
namespace detail {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::optional<std::size_t> parse_index(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

void split(std::string_view line, char delim, std::vector<std::string_view>& out) {
  out.clear();
  for (;;) {
    const void* p = std::memchr(line.data(), delim, line.size());
    if (!p) break;
    const auto len = static_cast<std::size_t>(static_cast<const char*>(p) - line.data());
    out.push_back(line.substr(0, len));
    line.remove_prefix(len + 1);
  }
  out.push_back(line);
}

class CsvParser {
 public:
  CsvParser(const std::string& path, const CsvOptions& opts) : path_(path), opts_(opts) {
    if (opts.delimiter == '\n' || opts.delimiter == '\r' || opts.delimiter == '"' ||
        opts.delimiter == '\0' || opts.delimiter == opts.comment) {
      throw ConfigError("CSV options: invalid delimiter " +
                        quoted(std::string_view(&opts.delimiter, 1)));
    }
    if (!opts.hashed_columns.empty() && opts.hash_dimension == 0) {
      throw ConfigError("CSV options: hashed_columns given but hash_dimension is 0");
    }
    if (opts.hash_dimension > std::numeric_limits<std::uint32_t>::max()) {
      throw ConfigError("CSV options: hash_dimension " + std::to_string(opts.hash_dimension) +
                        " is too large (at most 2^32 - 1)");
    }
  }

  ParsedFile parse_file(std::string_view bytes, bool keep_lines) {
    ParsedFile out;
    parse_lines(Chunk{bytes, 1, true}, keep_lines, out);
    if (rows_ == 0 && !opts_.allow_empty) {
      if (resolved_) fail(path_, out.header.number, "header but no data rows");
      fail(path_, 0, "empty file (no data rows)");
    }
    finish(out);
    return out;
  }

  ParsedFile parse_chunk(const Chunk& chunk, const Line* schema) {
    ParsedFile out;
    if (schema) {
      split(schema->text, opts_.delimiter, fields_);
      set_schema(*schema, out);
    }
    parse_lines(chunk, false, out);
    finish(out);
    return out;
  }

 private:
  // The first content line: the header, or (without one) the first data row,
  // whose field count every later row must match. Its fields are in fields_.
  void set_schema(const Line& line, ParsedFile& out) {
    if (opts_.has_header) {
      read_header(line);
      out.header = line;
    }
    resolve(fields_.size(), line.number);
    resolved_ = true;
  }

  void parse_lines(const Chunk& chunk, bool keep_lines, ParsedFile& out) {
    LineReader lines(chunk.bytes, chunk.first_line, chunk.file_start);
    Line line;
    std::vector<float> x;
    while (lines.next(line)) {
      const std::string_view content = trim(line.text, " \t");
      if (content.empty()) continue;
      if (opts_.comment != '\0' && content.front() == opts_.comment) continue;
      split(line.text, opts_.delimiter, fields_);
      if (!resolved_) {
        set_schema(line, out);
        if (opts_.has_header) continue;
      }
      if (!resolved_data_) {
        resolved_data_ = true;
        data_ = empty_dataset();
        const auto estimate =
            static_cast<std::size_t>(std::count(chunk.bytes.begin(), chunk.bytes.end(), '\n') + 1);
        data_.reserve(estimate);
        if (keep_lines) out.row_lines.reserve(estimate);
      }
      parse_row(line, x);
      if (hashing()) {
        add_hashed_row(x);
      } else {
        data_.add_dense_row(x, label_, rows_++);
      }
      if (keep_lines) out.row_lines.push_back(line);
    }
  }

  bool hashing() const { return opts_.hash_dimension > 0; }

  Dataset empty_dataset() const {
    return hashing() ? Dataset::sparse(features_.size() + opts_.hash_dimension)
                     : Dataset::dense(features_.size());
  }

  // The numeric values in x (zeros left out), then a 1 per hashed column at
  // its slot after them, collisions added up.
  void add_hashed_row(std::span<const float> x) {
    idx_.clear();
    val_.clear();
    for (std::size_t k = 0; k < x.size(); ++k) {
      if (x[k] == 0.0f) continue;
      idx_.push_back(static_cast<std::uint32_t>(k));
      val_.push_back(x[k]);
    }
    const auto base = static_cast<std::uint32_t>(features_.size());
    const auto dim = static_cast<std::uint32_t>(opts_.hash_dimension);
    slots_.clear();
    for (std::size_t h = 0; h < hashed_.size(); ++h) {
      const std::string_view v = trim_field(fields_[hashed_[h]]);
      if (v.empty()) continue;  // a missing category
      // hash_bytes(name + '\x1f' + v), resuming FNV-1a after the prefix.
      slots_.push_back(base + reduce_to_range(mix64(fnv1a64(v, hash_state_[h])), dim));
    }
    std::sort(slots_.begin(), slots_.end());
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      if (k > 0 && slots_[k] == slots_[k - 1]) {
        val_.back() += 1.0f;
      } else {
        idx_.push_back(slots_[k]);
        val_.push_back(1.0f);
      }
    }
    data_.add_sparse_row(idx_, val_, label_, rows_++);
  }

  void finish(ParsedFile& out) {
    if (rows_ == 0) data_ = empty_dataset();
    if (opts_.has_header && resolved_) {
      std::vector<std::string> feature_names;
      feature_names.reserve(features_.size() + opts_.hash_dimension);
      for (std::size_t c : features_) feature_names.push_back(names_[c]);
      for (std::size_t k = 0; k < opts_.hash_dimension; ++k) {
        feature_names.push_back("hash[" + std::to_string(k) + "]");
      }
      data_.set_feature_names(std::move(feature_names));
      if (label_col_ != kNone) data_.set_label_name(names_[label_col_]);
    }
    out.data = std::move(data_);
  }

  void read_header(const Line& line) {
    std::unordered_map<std::string_view, std::size_t> seen;
    for (std::string_view f : fields_) {
      std::string_view name = trim_field(f);
      if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
        name = name.substr(1, name.size() - 2);
      }
      if (!seen.emplace(name, names_.size()).second) {
        fail(path_, line.number, "duplicate column name " + quoted(name));
      }
      names_.emplace_back(name);
    }
  }

  std::size_t find_name(std::string_view name) const {
    auto it = std::find(names_.begin(), names_.end(), name);
    return it == names_.end() ? kNone : static_cast<std::size_t>(it - names_.begin());
  }

  // Resolves a column given as a header name or a 0-based index in digits.
  // Returns kNone when absent; `what` names the option in error messages.
  std::size_t find_column(const std::string& spec, std::size_t ncols, std::size_t line,
                          std::string_view what) const {
    if (opts_.has_header) {
      const std::size_t c = find_name(spec);
      if (c != kNone) return c;
    }
    if (auto idx = parse_index(spec)) return *idx < ncols ? *idx : kNone;
    if (!opts_.has_header) {
      fail(path_, line,
           std::string(what) + " " + quoted(spec) + " is a name but the file has no header");
    }
    return kNone;
  }

  void resolve(std::size_t ncols, std::size_t line) {
    ncols_ = ncols;
    if (opts_.label.empty()) {
      label_col_ = ncols - 1;
    } else {
      label_col_ = find_column(opts_.label, ncols, line, "label column");
      if (label_col_ == kNone && opts_.require_label) {
        fail(path_, line, "missing label column " + quoted(opts_.label));
      }
    }
    if (!opts_.key_column.empty()) {
      key_col_ = find_column(opts_.key_column, ncols, line, "key column");
      if (key_col_ == kNone) {
        fail(path_, line, "missing key column " + quoted(opts_.key_column));
      }
    }
    resolve_hashed(ncols);
    feature_pos_.assign(ncols, kNone);
    if (!opts_.select_features.empty()) {
      if (!opts_.has_header) fail(path_, line, "select_features needs a header line");
      for (const std::string& name : opts_.select_features) {
        const std::size_t c = find_name(name);
        if (c == kNone) fail(path_, line, "select_features: no column " + quoted(name));
        if (c == label_col_) {
          fail(path_, line, "select_features: " + quoted(name) + " is the label column");
        }
        if (feature_pos_[c] != kNone) {
          fail(path_, line, "select_features: " + quoted(name) + " listed twice");
        }
        if (std::find(hashed_.begin(), hashed_.end(), c) != hashed_.end()) {
          throw ConfigError(path_ + ": select_features: " + quoted(name) +
                            " is also a hashed column");
        }
        feature_pos_[c] = features_.size();
        features_.push_back(c);
      }
    } else {
      for (std::size_t c = 0; c < ncols; ++c) {
        if (c == label_col_) continue;
        if (std::find(hashed_.begin(), hashed_.end(), c) != hashed_.end()) continue;
        feature_pos_[c] = features_.size();
        features_.push_back(c);
      }
    }
    if (hashing() && features_.size() + opts_.hash_dimension >
                         std::size_t{std::numeric_limits<std::uint32_t>::max()} + 1) {
      throw ConfigError("CSV options: hash_dimension " + std::to_string(opts_.hash_dimension) +
                        " plus " + std::to_string(features_.size()) +
                        " numeric features exceeds 2^32 columns");
    }
  }

  // The hashed columns, by header name or 0-based index; any that does not
  // exist is a ConfigError (an option naming a column the file lacks).
  void resolve_hashed(std::size_t ncols) {
    for (const std::string& spec : opts_.hashed_columns) {
      std::size_t c = opts_.has_header ? find_name(spec) : kNone;
      if (c == kNone) {
        if (auto index = parse_index(spec); index && *index < ncols) c = *index;
      }
      if (c == kNone) {
        throw ConfigError(path_ + ": hashed column " + quoted(spec) + " not found" +
                          (opts_.has_header ? "" : " (no header: give 0-based column indices)"));
      }
      if (c == label_col_) {
        throw ConfigError(path_ + ": hashed column " + quoted(spec) + " is the label column");
      }
      if (std::find(hashed_.begin(), hashed_.end(), c) != hashed_.end()) {
        throw ConfigError(path_ + ": hashed column " + quoted(spec) + " listed twice");
      }
      hashed_.push_back(c);
      const std::string name = opts_.has_header ? names_[c] : std::to_string(c);
      hash_state_.push_back(fnv1a64(name + '\x1f'));
    }
  }

  std::string column_name(std::size_t c) const {
    return opts_.has_header ? quoted(names_[c]) : std::to_string(c);
  }

  // Error text for column c; built only when failing.
  std::string column_label(std::size_t c, bool is_label) const {
    return (is_label ? "label column " : "column ") + column_name(c);
  }

  float parse_value(std::string_view field, std::size_t c, std::size_t line, bool is_label) const {
    const std::string_view v = trim_field(field);
    float out = 0;
    const NumberStatus status = parse_float(v, out);
    if (status != NumberStatus::kOk) {
      const std::string col = column_label(c, is_label);
      if (v.empty()) fail(path_, line, col + ": empty field");
      if (status == NumberStatus::kOutOfRange) {
        fail(path_, line, col + ": out of float range: " + quoted(v));
      }
      fail(path_, line, col + ": not a number: " + quoted(v));
    }
    if (!std::isfinite(out) && (is_label || !opts_.allow_nonfinite)) {
      fail(path_, line, column_label(c, is_label) + ": non-finite value " + quoted(v));
    }
    if (is_label && opts_.label_kind != LabelKind::kAny) {
      if (const std::string problem = label_problem(v, out, opts_.label_kind); !problem.empty()) {
        fail(path_, line, column_label(c, is_label) + ": " + problem);
      }
    }
    return out;
  }

  // Strips spaces and tabs, except the delimiter itself (tab-separated
  // files). Hot path: a plain loop beats find_first_not_of.
  std::string_view trim_field(std::string_view f) const {
    const auto is_blank = [this](char ch) {
      return (ch == ' ' || ch == '\t') && ch != opts_.delimiter;
    };
    std::size_t b = 0;
    std::size_t e = f.size();
    while (b < e && is_blank(f[b])) ++b;
    while (e > b && is_blank(f[e - 1])) --e;
    return f.substr(b, e - b);
  }

  void parse_row(const Line& line, std::vector<float>& x) {
    if (fields_.size() != ncols_) {
      fail(path_, line.number,
           "expected " + std::to_string(ncols_) + " fields, got " + std::to_string(fields_.size()));
    }
    x.resize(features_.size());
    for (std::size_t k = 0; k < features_.size(); ++k) {
      x[k] = parse_value(fields_[features_[k]], features_[k], line.number, false);
    }
    label_ = label_col_ == kNone ? 0.0f
                                 : parse_value(fields_[label_col_], label_col_, line.number, true);
    if (key_col_ != kNone) data_.add_key(std::string(trim_field(fields_[key_col_])));
  }

  const std::string& path_;
  const CsvOptions& opts_;
  std::vector<std::string_view> fields_;
  std::vector<std::string> names_;
  std::size_t ncols_ = 0;
  std::size_t label_col_ = kNone;
  std::size_t key_col_ = kNone;
  std::vector<std::size_t> features_;      // column of each feature, in feature order
  std::vector<std::size_t> feature_pos_;   // feature position of each column, or kNone
  std::vector<std::size_t> hashed_;        // hashed columns, in option order
  std::vector<std::uint64_t> hash_state_;  // FNV-1a state after "name\x1f", per hashed column
  std::vector<std::uint32_t> slots_;       // per row: hashed indices
  std::vector<std::uint32_t> idx_;         // per row: sparse entries
  std::vector<float> val_;
  bool resolved_ = false;       // the schema line has been seen
  bool resolved_data_ = false;  // data_ is set up for rows
  std::uint64_t rows_ = 0;
  float label_ = 0;
  Dataset data_;
};

}  // namespace

ParsedFile parse_csv(const TextFile& file, const CsvOptions& opts, bool keep_lines) {
  return CsvParser(file.path, opts).parse_file(file.bytes, keep_lines);
}

ParsedFile parse_csv_chunk(const std::string& path, const Chunk& chunk, const Line* schema,
                           const CsvOptions& opts) {
  return CsvParser(path, opts).parse_chunk(chunk, schema);
}

}  // namespace detail

Dataset read_csv(const std::string& path, const CsvOptions& opts) {
  return detail::parse_csv(detail::load_text_file(path), opts, false).data;
}

}  // namespace dtrain
