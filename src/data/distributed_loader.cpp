// Parallel loading: each rank reads its byte range of the file, parses the
// lines that start in it, and the rows go to their owners in one alltoallv.
//
// The collectives, in order (every rank makes each call, also on error paths
// that are common to all ranks):
//   1. allgather: where each rank's first line starts, and (from rank 0) where
//      the CSV header or first content line is;
//   2. allgather: newlines in each rank's lines, for exact line numbers;
//   3. allgather: rows, columns and parse failure of each rank, for row ids,
//      the total and a deterministic choice of the error to report;
//   4. allgather: bytes, rows and nonzeros each rank sends to each rank;
//   5. alltoallv: the rows.
#include "dtrain/data/distributed_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary_matrix.h"
#include "dtrain/data/shards.h"
#include "dtrain/error.h"
#include "shard_io.h"
#include "text.h"

namespace dtrain {
namespace {

using detail::fail;

constexpr std::uint64_t kNone = UINT64_MAX;

// Reads byte ranges of one regular file with pread, counting every byte read:
// the point of the loader is how little each rank reads.
class RangeReader {
 public:
  explicit RangeReader(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(path, 0, std::string("cannot open file: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fail(path, 0, std::string("cannot read file: ") + std::strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      fail(path, 0, "cannot open file: is a directory");
    }
    if (!S_ISREG(st.st_mode)) {
      // Splitting by offset needs the size up front and random access.
      ::close(fd_);
      fail(path, 0, "cannot read file: not a regular file (parallel loading needs to seek)");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  RangeReader(const RangeReader&) = delete;
  RangeReader& operator=(const RangeReader&) = delete;
  ~RangeReader() { ::close(fd_); }

  std::uint64_t size() const { return size_; }
  std::uint64_t bytes_read() const { return bytes_read_; }

  // Appends the bytes [offset, offset + len) of the file to `out`.
  void read(std::uint64_t offset, std::uint64_t len, std::string& out) {
    const std::size_t old = out.size();
    out.resize(old + static_cast<std::size_t>(len));
    std::size_t done = 0;
    while (done < len) {
      const ssize_t n = ::pread(fd_, out.data() + old + done, static_cast<std::size_t>(len) - done,
                                static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(path_, 0, std::string("cannot read file: ") + std::strerror(errno));
      }
      if (n == 0) fail(path_, 0, "cannot read file: it shrank while being read");
      done += static_cast<std::size_t>(n);
      bytes_read_ += static_cast<std::uint64_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t bytes_read_ = 0;
};

// Rank r's byte range [S*r/N, S*(r+1)/N), computed without overflowing S*r.
std::uint64_t range_start(std::uint64_t size, int rank, int ranks) {
  const auto r = static_cast<std::uint64_t>(rank);
  const auto n = static_cast<std::uint64_t>(ranks);
  return size / n * r + size % n * r / n;
}

// Where the first non-blank, non-comment line of a CSV file is: the header,
// or without one the first data row, which fixes the column count.
struct Schema {
  std::uint64_t found = 0;
  std::uint64_t start = 0;  // offset of the line
  std::uint64_t len = 0;    // length of its text, without "\n" or "\r\n"
  std::uint64_t line = 0;   // its line number
  // Where data lines start: after the header, or 0 without one (the schema
  // line is then data too), and the newlines before that offset.
  std::uint64_t data_start = 0;
  std::uint64_t lines_before_data = 0;
};

// Rank 0 finds the schema line in `buf`, which holds the file from offset 0
// and is extended while the line is not complete (its own range is usually
// far longer than a header).
Schema find_schema(RangeReader& file, std::string& buf, const CsvOptions& opts) {
  const std::uint64_t size = file.size();
  const auto extend = [&] {
    if (buf.size() >= size) return false;
    const std::uint64_t want = std::max<std::uint64_t>(buf.size(), 4096);
    file.read(buf.size(), std::min<std::uint64_t>(want, size - buf.size()), buf);
    return true;
  };
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  while (buf.size() < kBom.size() && extend()) {
  }
  std::size_t pos = std::string_view(buf).substr(0, kBom.size()) == kBom ? kBom.size() : 0;
  std::uint64_t line = 0;
  for (;;) {
    const void* nl = std::memchr(buf.data() + pos, '\n', buf.size() - pos);
    if (!nl && extend()) continue;  // the line goes on past what was read
    if (!nl && pos == buf.size()) return {};
    ++line;
    const std::size_t end =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data()) : buf.size();
    std::string_view text = std::string_view(buf).substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    const std::string_view content = detail::trim(text, " \t");
    if (!content.empty() && !(opts.comment != '\0' && content.front() == opts.comment)) {
      Schema s;
      s.found = 1;
      s.start = pos;
      s.len = text.size();
      s.line = line;
      if (opts.has_header) {
        s.data_start = nl ? end + 1 : size;
        s.lines_before_data = nl ? line : line - 1;
      }
      return s;
    }
    if (!nl) return {};
    pos = end + 1;
  }
}

// Exclusive prefix sum of field `field` of per-rank records of `width` u64s.
std::uint64_t sum_before(std::span<const std::uint64_t> all, std::size_t width, std::size_t field,
                         int rank) {
  std::uint64_t s = 0;
  for (int q = 0; q < rank; ++q) s += all[static_cast<std::size_t>(q) * width + field];
  return s;
}

// Rows on the wire: row id (u64), label (f32), then the dense values (cols
// f32) or the entry count (u32) with the indices (u32) and values (f32), then
// with keys the key's length (u32) and bytes. Native byte order: both ends
// run the same build.
class RowWriter {
 public:
  explicit RowWriter(char* out) : out_(out) {}
  template <class T>
  void put(const T& v) {
    std::memcpy(out_, &v, sizeof v);
    out_ += sizeof v;
  }
  template <class T>
  void put_all(std::span<const T> v) {
    if (v.empty()) return;
    std::memcpy(out_, v.data(), v.size_bytes());
    out_ += v.size_bytes();
  }
  char* pos() const { return out_; }

 private:
  char* out_;
};

class RowReader {
 public:
  RowReader(std::span<const char> in, int source) : in_(in), source_(source) {}
  bool done() const { return in_.empty(); }
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof v).data(), sizeof v);
    return v;
  }
  template <class T>
  void get_all(std::size_t n, std::vector<T>& out) {
    out.resize(n);
    if (n > 0) std::memcpy(out.data(), take(n * sizeof(T)).data(), n * sizeof(T));
  }
  std::string_view get_text(std::size_t n) {
    const auto b = take(n);
    return std::string_view(b.data(), b.size());
  }

 private:
  std::span<const char> take(std::size_t n) {
    if (n > in_.size()) {
      throw CommError("load_partitioned: truncated row data from rank " + std::to_string(source_));
    }
    const auto b = in_.first(n);
    in_ = in_.subspan(n);
    return b;
  }
  std::span<const char> in_;
  int source_;
};

std::size_t wire_size(const Dataset& d, std::size_t r, bool with_keys) {
  std::size_t n = sizeof(std::uint64_t) + sizeof(float);
  if (d.is_sparse()) {
    const auto e = d.csr().row_ptr[r + 1] - d.csr().row_ptr[r];
    n += sizeof(std::uint32_t) +
         static_cast<std::size_t>(e) * (sizeof(std::uint32_t) + sizeof(float));
  } else {
    n += d.cols() * sizeof(float);
  }
  if (with_keys) n += sizeof(std::uint32_t) + d.keys()[r].size();
  return n;
}

void write_row(const Dataset& d, std::size_t r, bool with_keys, RowWriter& w) {
  w.put(d.row_ids()[r]);
  w.put(d.labels()[r]);
  const RowView v = d.row(r);
  if (v.is_sparse) {
    w.put(static_cast<std::uint32_t>(v.indices.size()));
    w.put_all(v.indices);
    w.put_all(v.values);
  } else {
    w.put_all(v.dense);
  }
  if (with_keys) {
    const std::string& key = d.keys()[r];
    w.put(static_cast<std::uint32_t>(key.size()));
    w.put_all(std::span<const char>(key));
  }
}

// Appends the rows of one received block to `out`.
void read_rows(RowReader& in, bool with_keys, Dataset& out) {
  std::vector<float> x;
  std::vector<std::uint32_t> idx;
  while (!in.done()) {
    const auto id = in.get<std::uint64_t>();
    const auto label = in.get<float>();
    if (out.is_sparse()) {
      const auto n = in.get<std::uint32_t>();
      in.get_all(n, idx);
      in.get_all(n, x);
      out.add_sparse_row(idx, x, label, id);
    } else {
      in.get_all(out.cols(), x);
      out.add_dense_row(x, label, id);
    }
    if (with_keys) out.add_key(std::string(in.get_text(in.get<std::uint32_t>())));
  }
}

void append_row(const Dataset& d, std::size_t r, bool with_keys, Dataset& out) {
  const RowView v = d.row(r);
  if (v.is_sparse) {
    out.add_sparse_row(v.indices, v.values, d.labels()[r], d.row_ids()[r]);
  } else {
    out.add_dense_row(v.dense, d.labels()[r], d.row_ids()[r]);
  }
  if (with_keys) out.add_key(d.keys()[r]);
}

// The CSV options the loader parses with: "hash:COLUMN" needs that column's
// keys, as write_shards and the CLI arrange.
CsvOptions csv_options_for(const LoadOptions& options, const Partitioner& partitioner) {
  CsvOptions csv = options.csv;
  const auto* hash = dynamic_cast<const HashPartitioner*>(&partitioner);
  if (!hash || hash->key_column().empty()) return csv;
  if (options.format != FileFormat::kCsv) {
    throw ConfigError("partitioner " + hash->name() + " needs CSV input (" +
                      format_name(options.format) + " files have no named columns)");
  }
  if (csv.key_column.empty()) csv.key_column = hash->key_column();
  if (csv.key_column != hash->key_column()) {
    throw ConfigError("partitioner " + hash->name() + " but key_column is '" + csv.key_column +
                      "'");
  }
  return csv;
}

// IDX and .npy: every rank reads the whole file and converts its own rows
// (see distributed_loader.h). One collective: an allgather of each rank's
// failure flag and shape, so that a rank that cannot read the file (e.g. a
// host that lacks it) fails the others instead of leaving them waiting, and
// ranks that see different files notice.
Dataset load_binary_partitioned(Communicator& comm, const std::string& path,
                                const LoadOptions& options, const Partitioner& partitioner,
                                LoadStats* stats) {
  csv_options_for(options, partitioner);  // hash:COLUMN -> ConfigError
  const auto n = static_cast<std::size_t>(comm.size());
  std::optional<detail::MatrixSource> source;
  std::exception_ptr error;
  try {
    source = options.format == FileFormat::kIdx
                 ? detail::open_idx(path, options.labels_path, options.idx)
                 : detail::open_npy(path, options.labels_path, options.npy);
    detail::validate(*source);
  } catch (const Error&) {
    error = std::current_exception();
  }
  constexpr std::size_t kWidth = 3;
  std::vector<std::uint64_t> all(n * kWidth);
  {
    const std::uint64_t mine[kWidth] = {error ? 1u : 0u, source ? source->rows() : 0,
                                        source ? source->feature_cols() : 0};
    comm.allgather(std::span<const std::uint64_t>(mine), std::span<std::uint64_t>(all));
  }
  // Every rank that failed reports its own error: the checks are the same
  // everywhere, so this is usually every rank with the same message.
  if (error) std::rethrow_exception(error);
  for (std::size_t q = 0; q < n; ++q) {
    if (all[q * kWidth] == 0) continue;
    comm.barrier();  // wait for the job to fail on the rank that knows why
    throw CommError("rank " + std::to_string(comm.rank()) + ": load_partitioned: rank " +
                    std::to_string(q) + " failed to read " + path);
  }
  const std::uint64_t rows = source->rows();
  for (std::size_t q = 0; q < n; ++q) {
    if (all[q * kWidth + 1] != rows || all[q * kWidth + 2] != source->feature_cols()) {
      throw InputError(path + ": rank " + std::to_string(q) + " reads " +
                       std::to_string(all[q * kWidth + 1]) + " rows of " +
                       std::to_string(all[q * kWidth + 2]) + " features, rank " +
                       std::to_string(comm.rank()) + " " + std::to_string(rows) + " of " +
                       std::to_string(source->feature_cols()) + ": not the same file");
    }
  }

  // The partitioner decides from row ids (and the row count) alone, so a
  // dataset of ids stands in for the whole file.
  std::vector<std::size_t> my_rows;
  {
    Dataset ids = Dataset::dense(0);
    ids.reserve(static_cast<std::size_t>(rows));
    for (std::uint64_t r = 0; r < rows; ++r) ids.add_dense_row({}, 0.0f, r);
    const std::vector<std::uint32_t> owner =
        partitioner.assign(ids, rows, static_cast<std::uint32_t>(n));
    my_rows = rows_of_part(owner, static_cast<std::uint32_t>(comm.rank()));
  }
  Dataset out = detail::to_dataset(*source, my_rows);
  if (stats) {
    *stats = LoadStats{};
    stats->file_bytes = source->features.file.stored_bytes;
    stats->bytes_read = source->features.file.stored_bytes +
                        (source->labels ? source->labels->file.stored_bytes : 0);
    stats->rows_parsed = rows;
    stats->rows_owned = out.rows();
  }
  return out;
}

}  // namespace

Dataset load_partitioned(Communicator& comm, const std::string& path, const LoadOptions& options,
                         const Partitioner& partitioner) {
  return load_partitioned(comm, path, options, partitioner, nullptr);
}

Dataset load_partitioned(Communicator& comm, const std::string& path, const LoadOptions& options,
                         const Partitioner& partitioner, LoadStats* stats) {
  if (options.format == FileFormat::kIdx || options.format == FileFormat::kNpy) {
    return load_binary_partitioned(comm, path, options, partitioner, stats);
  }
  const int ranks = comm.size();
  const int rank = comm.rank();
  const auto n = static_cast<std::size_t>(ranks);
  const auto me = static_cast<std::size_t>(rank);
  const bool is_csv = options.format == FileFormat::kCsv;
  const CsvOptions csv = csv_options_for(options, partitioner);

  RangeReader file(path);
  const std::uint64_t size = file.size();
  const std::uint64_t start = range_start(size, rank, ranks);
  const std::uint64_t end = range_start(size, rank + 1, ranks);

  // --- 1. Own range, plus the byte before it: a line starts at `start` iff
  // that byte is '\n'. `buf` holds the file's bytes [buf_lo, buf_lo + size()).
  std::string buf;
  const std::uint64_t buf_lo = start > 0 ? start - 1 : 0;
  if (start < end) {
    // Room for the tail of the last line too: growing a string past its
    // capacity would double it, and the range is most of a rank's memory.
    constexpr std::uint64_t kTailRoom = 64 * 1024;
    buf.reserve(static_cast<std::size_t>(end - buf_lo + kTailRoom));
    file.read(buf_lo, end - buf_lo, buf);
  }
  std::uint64_t first_line_start = kNone;  // first line start in [start, end)
  if (start < end) {
    if (start == 0) {
      first_line_start = 0;
    } else if (const void* nl = std::memchr(buf.data(), '\n', end - 1 - buf_lo)) {
      first_line_start =
          buf_lo + static_cast<std::uint64_t>(static_cast<const char*>(nl) - buf.data()) + 1;
    }
  }
  Schema schema;
  if (is_csv && rank == 0) schema = find_schema(file, buf, csv);

  constexpr std::size_t kStartWidth = 7;
  std::vector<std::uint64_t> starts(n * kStartWidth);
  {
    const std::uint64_t mine[kStartWidth] = {first_line_start,
                                             schema.found,
                                             schema.start,
                                             schema.len,
                                             schema.line,
                                             schema.data_start,
                                             schema.lines_before_data};
    comm.allgather(std::span<const std::uint64_t>(mine), std::span<std::uint64_t>(starts));
  }
  schema = Schema{starts[1], starts[2], starts[3], starts[4], starts[5], starts[6]};

  // My lines: from my first line start to the next rank's, after the header.
  std::uint64_t chunk_begin = 0;
  std::uint64_t chunk_end = 0;
  if (first_line_start != kNone) {
    std::uint64_t next = size;
    for (std::size_t q = me + 1; q < n; ++q) {
      if (starts[q * kStartWidth] != kNone) {
        next = starts[q * kStartWidth];
        break;
      }
    }
    chunk_begin = std::max(first_line_start, schema.data_start);
    chunk_end = std::max(next, schema.data_start);
    if (chunk_begin >= chunk_end) chunk_begin = chunk_end = 0;
  }
  // The tail of my last line, which ends past my range.
  const std::uint64_t buf_hi = buf_lo + buf.size();
  if (chunk_end > buf_hi) file.read(buf_hi, chunk_end - buf_hi, buf);
  const std::string_view chunk_text =
      chunk_end > chunk_begin
          ? std::string_view(buf).substr(chunk_begin - buf_lo, chunk_end - chunk_begin)
          : std::string_view();

  // Every rank reads the schema line itself: its header names and its column
  // count decide how every row parses.
  std::string schema_text;
  if (schema.found) {
    if (schema.start >= buf_lo && schema.start + schema.len <= buf_lo + buf.size()) {
      schema_text = buf.substr(schema.start - buf_lo, schema.len);
    } else {
      file.read(schema.start, schema.len, schema_text);
    }
  }

  // --- 2. Line numbers.
  std::vector<std::uint64_t> newlines(n);
  {
    const auto mine =
        static_cast<std::uint64_t>(std::count(chunk_text.begin(), chunk_text.end(), '\n'));
    comm.allgather(std::span<const std::uint64_t>(&mine, 1), std::span<std::uint64_t>(newlines));
  }
  const std::uint64_t first_line = 1 + schema.lines_before_data + sum_before(newlines, 1, 0, rank);

  // --- 3. Parse. A parse error is held until every rank knows who failed:
  // the first failing rank holds the first bad line of the file.
  Dataset local;
  std::exception_ptr error;
  try {
    const detail::Chunk chunk{chunk_text, static_cast<std::size_t>(first_line), chunk_begin == 0};
    if (is_csv) {
      const detail::Line line{schema_text, static_cast<std::size_t>(schema.line)};
      local = detail::parse_csv_chunk(path, chunk, schema.found ? &line : nullptr, csv).data;
    } else {
      local = detail::parse_libsvm_chunk(path, chunk, options.libsvm).data;
    }
  } catch (const InputError&) {
    error = std::current_exception();
  }
  const std::uint64_t bytes_read = file.bytes_read();
  std::string().swap(buf);  // the text is parsed: peak memory is text or rows, not both

  constexpr std::size_t kCountWidth = 3;
  std::vector<std::uint64_t> counts(n * kCountWidth);
  {
    const std::uint64_t mine[kCountWidth] = {local.rows(), local.cols(), error ? 1u : 0u};
    comm.allgather(std::span<const std::uint64_t>(mine), std::span<std::uint64_t>(counts));
  }
  for (std::size_t q = 0; q < n; ++q) {
    if (counts[q * kCountWidth + 2] == 0) continue;
    if (q == me) std::rethrow_exception(error);
    // Another rank reports the error. Wait for the job to fail rather than
    // throw a second error that could be taken for the cause.
    comm.barrier();
    throw CommError("rank " + std::to_string(rank) + ": load_partitioned: rank " +
                    std::to_string(q) + " failed to parse " + path);
  }
  std::uint64_t total = 0;
  std::uint64_t cols = local.cols();
  for (std::size_t q = 0; q < n; ++q) {
    total += counts[q * kCountWidth];
    cols = std::max(cols, counts[q * kCountWidth + 1]);
  }
  if (total == 0 && !(is_csv ? csv.allow_empty : options.libsvm.allow_empty)) {
    // The whole-file readers' errors, on every rank alike.
    if (is_csv && schema.found && csv.has_header) {
      fail(path, static_cast<std::size_t>(schema.line), "header but no data rows");
    }
    fail(path, 0, "empty file (no data rows)");
  }
  {
    const std::uint64_t first_row = sum_before(counts, kCountWidth, 0, rank);
    std::vector<std::uint64_t> ids(local.rows());
    std::iota(ids.begin(), ids.end(), first_row);
    local.set_row_ids(std::move(ids));
  }

  // --- 4. Owners, and what goes where.
  const std::vector<std::uint32_t> owner =
      partitioner.assign(local, total, static_cast<std::uint32_t>(ranks));
  // The same on every rank: the wire format depends on it.
  const bool with_keys = is_csv && !csv.key_column.empty();
  constexpr std::size_t kSendWidth = 3;  // bytes, rows, nonzeros per destination
  std::vector<std::uint64_t> mine(n * kSendWidth, 0);
  for (std::size_t i = 0; i < owner.size(); ++i) {
    const std::size_t d = owner[i];
    if (d == me) continue;  // kept rows never leave
    mine[d * kSendWidth] += wire_size(local, i, with_keys);
    mine[d * kSendWidth + 1] += 1;
    if (local.is_sparse()) mine[d * kSendWidth + 2] += local.row(i).indices.size();
  }
  std::vector<std::size_t> send_counts(n);
  std::vector<std::size_t> offsets(n + 1, 0);
  for (std::size_t d = 0; d < n; ++d) {
    send_counts[d] = static_cast<std::size_t>(mine[d * kSendWidth]);
    offsets[d + 1] = offsets[d] + send_counts[d];
  }
  std::vector<char> send(offsets[n]);
  {
    std::vector<char*> cursor(n);
    for (std::size_t d = 0; d < n; ++d) cursor[d] = send.data() + offsets[d];
    for (std::size_t i = 0; i < owner.size(); ++i) {
      if (owner[i] == me) continue;
      RowWriter w(cursor[owner[i]]);
      write_row(local, i, with_keys, w);
      cursor[owner[i]] = w.pos();
    }
  }
  std::vector<std::uint64_t> matrix(n * n * kSendWidth);
  comm.allgather(std::span<const std::uint64_t>(mine), std::span<std::uint64_t>(matrix));
  std::vector<std::size_t> recv_counts(n);
  std::uint64_t recv_rows = 0;
  std::uint64_t recv_nnz = 0;
  for (std::size_t s = 0; s < n; ++s) {
    const std::size_t at = (s * n + me) * kSendWidth;
    recv_counts[s] = static_cast<std::size_t>(matrix[at]);
    recv_rows += matrix[at + 1];
    recv_nnz += matrix[at + 2];
  }

  // --- 5. The exchange.
  std::vector<char> recv(std::accumulate(recv_counts.begin(), recv_counts.end(), std::size_t{0}));
  comm.alltoallv(std::span<const char>(send), std::span<const std::size_t>(send_counts),
                 std::span<char>(recv), std::span<const std::size_t>(recv_counts));
  const std::size_t sent_bytes = send.size();
  std::vector<char>().swap(send);

  // Ranks hold consecutive pieces of the file, so taking the blocks of lower
  // ranks, then my own rows, then higher ranks' blocks is row-id order.
  Dataset out = local.is_sparse() ? Dataset::sparse(static_cast<std::size_t>(cols))
                                  : Dataset::dense(static_cast<std::size_t>(cols));
  out.set_feature_names(local.feature_names());
  out.set_label_name(local.label_name());
  std::size_t kept = 0;
  std::size_t kept_nnz = 0;
  for (std::size_t i = 0; i < owner.size(); ++i) {
    if (owner[i] != me) continue;
    ++kept;
    if (local.is_sparse()) kept_nnz += local.row(i).indices.size();
  }
  out.reserve(kept + static_cast<std::size_t>(recv_rows),
              kept_nnz + static_cast<std::size_t>(recv_nnz));
  std::size_t offset = 0;
  for (std::size_t s = 0; s < n; ++s) {
    if (s == me) {
      for (std::size_t i = 0; i < owner.size(); ++i) {
        if (owner[i] == me) append_row(local, i, with_keys, out);
      }
      continue;
    }
    RowReader in(std::span<const char>(recv).subspan(offset, recv_counts[s]), static_cast<int>(s));
    read_rows(in, with_keys, out);
    offset += recv_counts[s];
  }
  const auto ids = out.row_ids();
  if (!std::is_sorted(ids.begin(), ids.end())) {
    // Not reachable with the offsets above; kept so the order never depends
    // on that reasoning.
    std::vector<std::size_t> order(ids.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
    out = out.subset(order);
  }

  if (stats) {
    stats->file_bytes = size;
    stats->bytes_read = bytes_read;
    stats->rows_parsed = local.rows();
    stats->rows_sent = local.rows() - kept;
    stats->rows_received = recv_rows;
    stats->rows_owned = out.rows();
    stats->exchange_bytes = sent_bytes + recv.size();
  }
  return out;
}

bool is_shard_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::is_regular_file(std::filesystem::path(path) / "manifest.json", ec);
}

Dataset load_shard(Communicator& comm, const std::string& dir, const LoadOptions& options,
                   std::uint32_t first_rank) {
  const ShardManifest manifest = read_manifest(dir);
  const auto rank = static_cast<std::uint32_t>(comm.rank());
  const auto size = static_cast<std::uint32_t>(comm.size());
  if (first_rank >= size) {
    throw ConfigError(dir + ": " + std::to_string(first_rank) +
                      " ranks without rows leave none of the " + std::to_string(size) +
                      " to read the shards");
  }
  if (manifest.parts != static_cast<std::uint64_t>(size - first_rank)) {
    throw ConfigError(dir + ": has " + std::to_string(manifest.parts) + " shards but the job has " +
                      std::to_string(size - first_rank) + " workers");
  }
  const std::string wanted = format_name(options.format);
  if (manifest.format != wanted) {
    throw ConfigError(dir + ": holds " + manifest.format + " shards, not " + wanted);
  }
  const bool holds_rows = rank >= first_rank;
  const std::uint32_t part = holds_rows ? rank - first_rank : 0;
  detail::VerifiedShard shard = detail::load_verified_shard(dir, manifest, part);
  Dataset data;
  if (options.format == FileFormat::kCsv) {
    CsvOptions csv = options.csv;
    csv.allow_empty = true;  // fewer rows than parts leaves shards empty
    data = detail::parse_csv(shard.data, csv, false).data;
  } else {
    LibsvmOptions libsvm = options.libsvm;
    libsvm.allow_empty = true;
    data = detail::parse_libsvm(shard.data, libsvm, false).data;
  }
  std::string().swap(shard.data.bytes);
  if (shard.ids.size() != data.rows()) {
    fail(shard.ids_path, 0,
         "holds " + std::to_string(shard.ids.size()) + " row ids but " + shard.data.path + " has " +
             std::to_string(data.rows()) + " rows");
  }
  for (std::size_t i = 0; i < shard.ids.size(); ++i) {
    if (shard.ids[i] >= manifest.total_rows || (i > 0 && shard.ids[i] <= shard.ids[i - 1])) {
      fail(shard.ids_path, 0,
           "row id " + std::to_string(shard.ids[i]) + " at entry " + std::to_string(i) +
               " is out of order or not below total_rows " + std::to_string(manifest.total_rows));
    }
  }
  data.set_row_ids(std::move(shard.ids));
  if (!holds_rows) data = data.subset({});
  // LibSVM shards need not mention the last columns; every rank gets the
  // widest, as from load_partitioned.
  std::uint64_t cols = data.cols();
  comm.allreduce(std::span<std::uint64_t>(&cols, 1), ReduceOp::kMax);
  if (data.is_sparse()) data.set_cols(static_cast<std::size_t>(cols));
  return data;
}

}  // namespace dtrain
