#include "dtrain/data/shards.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "dtrain/error.h"
#include "shard_io.h"
#include "text.h"

namespace dtrain {
namespace fs = std::filesystem;

namespace {

// Version 2 added the .ids files; version 1 shards cannot give their rows
// their original ids back.
constexpr int kManifestVersion = 2;
constexpr std::string_view kChecksumPrefix = "fnv1a64:";

std::string checksum_of(std::string_view bytes) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(bytes)));
  return std::string(kChecksumPrefix) + hex;
}

[[noreturn]] void io_fail(const std::string& path, std::string_view what, int err) {
  throw Error(path + ": " + std::string(what) + ": " + std::strerror(err));
}

// Writes a new file and fsyncs it, so that the final rename publishes
// complete shards even across a crash.
void write_file(const fs::path& path, std::string_view bytes) {
  const std::string p = path.string();
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) io_fail(p, "cannot create file", errno);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      io_fail(p, "cannot write", err);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    io_fail(p, "cannot sync", err);
  }
  if (::close(fd) != 0) io_fail(p, "cannot close", errno);
}

// Best effort: makes a rename or new entries in `dir` durable.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Removes the temporary directory unless the shards were published.
class TempDirGuard {
 public:
  explicit TempDirGuard(fs::path dir) : dir_(std::move(dir)) {}
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;
  ~TempDirGuard() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  void commit() { committed_ = true; }

 private:
  fs::path dir_;
  bool committed_ = false;
};

std::string temp_sibling(const fs::path& out) {
  std::random_device rd;
  const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
  return out.string() + ".tmp-" + std::to_string(::getpid()) + "-" + hex;
}

nlohmann::ordered_json to_json(const ShardManifest& m) {
  nlohmann::ordered_json j;
  j["format_version"] = kManifestVersion;
  j["source"] = m.source;
  j["format"] = m.format;
  j["partitioner"] = m.partitioner;
  j["seed"] = m.seed;
  j["parts"] = m.parts;
  j["total_rows"] = m.total_rows;
  auto shards = nlohmann::ordered_json::array();
  for (const ShardInfo& s : m.shards) {
    shards.push_back({{"file", s.file},
                      {"rows", s.rows},
                      {"bytes", s.bytes},
                      {"checksum", s.checksum},
                      {"ids_file", s.ids_file},
                      {"ids_checksum", s.ids_checksum}});
  }
  j["shards"] = std::move(shards);
  return j;
}

// Field access for read_manifest with "PATH: field 'F': what" errors.
class ManifestReader {
 public:
  explicit ManifestReader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, std::string_view what) const {
    detail::fail(path_, 0, "field '" + field + "': " + std::string(what));
  }
  const nlohmann::json& get(const nlohmann::json& obj, const std::string& key,
                            const std::string& field) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(field, "missing");
    return *it;
  }
  std::string str(const nlohmann::json& obj, const std::string& key,
                  const std::string& field) const {
    const auto& v = get(obj, key, field);
    if (!v.is_string()) fail(field, "not a string");
    return v.get<std::string>();
  }
  std::uint64_t uint(const nlohmann::json& obj, const std::string& key,
                     const std::string& field) const {
    const auto& v = get(obj, key, field);
    if (!v.is_number_unsigned()) fail(field, "not an unsigned integer");
    return v.get<std::uint64_t>();
  }
  // A name inside the shard directory: no path separators, "." or "..".
  std::string file_name(const nlohmann::json& obj, const std::string& key,
                        const std::string& field) const {
    std::string name = str(obj, key, field);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      fail(field, "not a plain file name");
    }
    return name;
  }

 private:
  std::string path_;
};

bool is_checksum(std::string_view s) {
  if (s.substr(0, kChecksumPrefix.size()) != kChecksumPrefix) return false;
  s.remove_prefix(kChecksumPrefix.size());
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string shard_file_name(std::uint32_t part, FileFormat format) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%05u.%s", part, format_name(format));
  return name;
}

std::string shard_ids_file_name(std::uint32_t part) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%05u.ids", part);
  return name;
}

ShardManifest write_shards(const std::string& input, FileFormat format, const CsvOptions& csv,
                           const Partitioner& partitioner, std::uint32_t parts, std::uint64_t seed,
                           const std::string& out_dir) {
  if (parts == 0) throw ConfigError("the number of parts must be at least 1");
  if (out_dir.empty()) throw ConfigError("empty output directory name");
  if (format != FileFormat::kCsv && format != FileFormat::kLibsvm) {
    // Shards copy text lines; binary files are split when loaded instead.
    throw ConfigError(std::string("shards are written from CSV or LibSVM input, not ") +
                      format_name(format) + " (load " + format_name(format) +
                      " files directly: every worker keeps its own rows)");
  }
  fs::path out(out_dir);
  if (!out.has_filename()) out = out.parent_path();  // "shards/" -> "shards"
  {
    std::error_code ec;
    const auto st = fs::status(out, ec);
    if (fs::exists(st)) {
      if (!fs::is_directory(st)) {
        throw ConfigError("output '" + out_dir + "' exists and is not a directory");
      }
      if (!fs::is_empty(out, ec) || ec) {
        throw ConfigError("output directory '" + out_dir + "' exists and is not empty");
      }
    }
  }

  // Everything that can fail on the input or the options happens before the
  // first byte is written.
  const detail::TextFile file = detail::load_text_file(input);
  detail::ParsedFile parsed;
  const auto* hash = dynamic_cast<const HashPartitioner*>(&partitioner);
  if (format == FileFormat::kCsv) {
    CsvOptions opts = csv;
    if (hash && !hash->key_column().empty()) {
      if (opts.key_column.empty()) opts.key_column = hash->key_column();
      if (opts.key_column != hash->key_column()) {
        throw ConfigError("partitioner " + hash->name() + " but key_column is '" + opts.key_column +
                          "'");
      }
    }
    parsed = detail::parse_csv(file, opts, true);
  } else {
    if (hash && !hash->key_column().empty()) {
      throw ConfigError("partitioner " + hash->name() + " needs CSV input (LibSVM has no columns)");
    }
    LibsvmOptions opts;
    opts.allow_nonfinite = csv.allow_nonfinite;
    opts.label_kind = csv.label_kind;
    opts.allow_empty = csv.allow_empty;
    parsed = detail::parse_libsvm(file, opts, true);
  }
  const Dataset& data = parsed.data;
  const std::vector<std::uint32_t> owner = partitioner.assign(data, data.rows(), parts);

  std::vector<std::vector<std::size_t>> rows(parts);
  for (std::size_t i = 0; i < owner.size(); ++i) rows[owner[i]].push_back(i);

  ShardManifest m;
  m.source = input;
  m.format = format_name(format);
  m.partitioner = partitioner.name();
  m.seed = seed;
  m.parts = parts;
  m.total_rows = data.rows();

  std::error_code ec;
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  const fs::path tmp = temp_sibling(out);
  if (!fs::create_directory(tmp, ec) || ec) {
    throw Error(tmp.string() + ": cannot create directory: " + ec.message());
  }
  TempDirGuard guard(tmp);

  const bool with_header = format == FileFormat::kCsv && parsed.header.number > 0;
  const auto ids = data.row_ids();
  std::string content;
  std::string id_bytes;
  for (std::uint32_t p = 0; p < parts; ++p) {
    content.clear();
    id_bytes.clear();
    if (with_header) {
      content += parsed.header.text;
      content += '\n';
    }
    for (std::size_t i : rows[p]) {
      content += parsed.row_lines[i].text;
      content += '\n';
      detail::append_row_id(id_bytes, ids[i]);
    }
    ShardInfo info;
    info.file = shard_file_name(p, format);
    info.rows = rows[p].size();
    info.bytes = content.size();
    info.checksum = checksum_of(content);
    info.ids_file = shard_ids_file_name(p);
    info.ids_checksum = checksum_of(id_bytes);
    write_file(tmp / info.file, content);
    write_file(tmp / info.ids_file, id_bytes);
    m.shards.push_back(std::move(info));
  }
  write_file(tmp / "manifest.json", to_json(m).dump(2) + "\n");
  sync_dir(tmp);

  // rename(2) replaces an empty directory atomically and fails on a
  // non-empty one, so a concurrent writer cannot be clobbered.
  fs::rename(tmp, out, ec);
  if (ec) throw Error(out.string() + ": cannot move shards into place: " + ec.message());
  guard.commit();
  sync_dir(out.has_parent_path() ? out.parent_path() : fs::path("."));
  return m;
}

ShardManifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / "manifest.json").string();
  const detail::TextFile file = detail::load_text_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file.bytes);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    detail::fail(path, 0, "invalid JSON: " + what);
  }
  const ManifestReader r(path);
  if (!j.is_object()) detail::fail(path, 0, "not a JSON object");
  const std::uint64_t version = r.uint(j, "format_version", "format_version");
  if (version != kManifestVersion) {
    r.fail("format_version", "unsupported version " + std::to_string(version) +
                                 (version < kManifestVersion
                                      ? " (written by an older dtrain: run dtrain partition again)"
                                      : ""));
  }
  ShardManifest m;
  m.source = r.str(j, "source", "source");
  m.format = r.str(j, "format", "format");
  if (m.format != "csv" && m.format != "libsvm") r.fail("format", "expected csv or libsvm");
  m.partitioner = r.str(j, "partitioner", "partitioner");
  m.seed = r.uint(j, "seed", "seed");
  const std::uint64_t parts = r.uint(j, "parts", "parts");
  if (parts == 0 || parts > UINT32_MAX) r.fail("parts", "out of range");
  m.parts = static_cast<std::uint32_t>(parts);
  m.total_rows = r.uint(j, "total_rows", "total_rows");
  const auto& shards = r.get(j, "shards", "shards");
  if (!shards.is_array()) r.fail("shards", "not an array");
  if (shards.size() != parts) {
    r.fail("shards",
           std::to_string(shards.size()) + " entries for " + std::to_string(parts) + " parts");
  }
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const std::string f = "shards[" + std::to_string(i) + "]";
    const auto& s = shards[i];
    if (!s.is_object()) r.fail(f, "not an object");
    ShardInfo info;
    info.file = r.file_name(s, "file", f + ".file");
    info.rows = r.uint(s, "rows", f + ".rows");
    info.bytes = r.uint(s, "bytes", f + ".bytes");
    info.checksum = r.str(s, "checksum", f + ".checksum");
    if (!is_checksum(info.checksum)) r.fail(f + ".checksum", "expected fnv1a64:<16 hex digits>");
    info.ids_file = r.file_name(s, "ids_file", f + ".ids_file");
    if (info.ids_file == info.file) r.fail(f + ".ids_file", "same as the shard file");
    info.ids_checksum = r.str(s, "ids_checksum", f + ".ids_checksum");
    if (!is_checksum(info.ids_checksum)) {
      r.fail(f + ".ids_checksum", "expected fnv1a64:<16 hex digits>");
    }
    sum += info.rows;
    m.shards.push_back(std::move(info));
  }
  if (sum != m.total_rows) {
    r.fail("total_rows",
           std::to_string(m.total_rows) + " but the shards hold " + std::to_string(sum) + " rows");
  }
  return m;
}

namespace detail {

void append_row_id(std::string& out, std::uint64_t id) {
  for (int b = 0; b < 8; ++b) out += static_cast<char>((id >> (8 * b)) & 0xff);
}

VerifiedShard load_verified_shard(const std::string& dir, const ShardManifest& manifest,
                                  std::uint32_t part) {
  if (part >= manifest.shards.size()) {
    throw ConfigError("part " + std::to_string(part) + " not in the manifest (" +
                      std::to_string(manifest.shards.size()) + " shards)");
  }
  const ShardInfo& info = manifest.shards[part];
  // Both files are checked the same way: size first (the cheap, telling
  // error), then the checksum of every byte.
  const auto check = [](const TextFile& file, std::uint64_t bytes, const std::string& checksum) {
    if (file.bytes.size() != bytes) {
      fail(file.path, 0,
           "size " + std::to_string(file.bytes.size()) + " bytes, manifest says " +
               std::to_string(bytes));
    }
    const std::string sum = checksum_of(file.bytes);
    if (sum != checksum) {
      fail(file.path, 0, "checksum " + sum + " does not match the manifest's " + checksum);
    }
  };
  VerifiedShard shard;
  shard.data = load_text_file((fs::path(dir) / info.file).string());
  check(shard.data, info.bytes, info.checksum);
  const TextFile ids = load_text_file((fs::path(dir) / info.ids_file).string());
  // A row count no file could hold (a damaged manifest) must not overflow.
  check(ids, info.rows <= UINT64_MAX / 8 ? info.rows * 8 : UINT64_MAX, info.ids_checksum);
  shard.ids_path = ids.path;
  shard.ids.resize(static_cast<std::size_t>(info.rows));
  for (std::size_t i = 0; i < shard.ids.size(); ++i) {
    std::uint64_t id = 0;
    for (int b = 0; b < 8; ++b) {
      id |= std::uint64_t{static_cast<unsigned char>(ids.bytes[8 * i + b])} << (8 * b);
    }
    shard.ids[i] = id;
  }
  return shard;
}

}  // namespace detail

void verify_shard(const std::string& dir, const ShardManifest& manifest, std::uint32_t part) {
  detail::load_verified_shard(dir, manifest, part);
}

BalanceStats balance_of(const ShardManifest& manifest) {
  BalanceStats b;
  if (manifest.shards.empty()) return b;
  std::uint64_t sum = 0;
  b.min = UINT64_MAX;
  for (const ShardInfo& s : manifest.shards) {
    b.min = std::min(b.min, s.rows);
    b.max = std::max(b.max, s.rows);
    sum += s.rows;
  }
  b.mean = static_cast<double>(sum) / static_cast<double>(manifest.shards.size());
  b.imbalance = b.mean > 0 ? static_cast<double>(b.max) / b.mean : 1.0;
  return b;
}

}  // namespace dtrain
