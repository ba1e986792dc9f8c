// Parallel data loading: every worker reads only its share of the input.
//
// load_partitioned() is collective over a Communicator (threads or MPI). Rank
// r of N reads the byte range [S*r/N, S*(r+1)/N) of the file (S = its size),
// aligned to line starts as Hadoop input splits are: a line belongs to the rank
// whose range holds its first byte. Ranks count their rows and lines and take
// exclusive prefix sums, so global row ids and the line numbers in error
// messages are exact. Rows are then assigned by the partitioner and sent to
// their owners with one alltoallv; with range partitioning only the rows near
// range boundaries move.
//
// The result on rank r is exactly what partitioning the whole file would give
// it: the same rows (by global row id, in row-id order), values, feature and
// label names, and keys. Peak memory per rank is O(S/N) plus the rows it ends
// up owning.
//
// IDX and .npy files are binary: they cannot be cut at line starts, and a
// gzip stream cannot be entered in the middle. Every rank therefore reads
// (and inflates) the whole file, checks all of it, and converts to float only
// the rows the partitioner gives it; nothing is exchanged. The cost is that
// every rank reads and inflates the whole file (Fashion-MNIST's training
// images: 26 MB of gzip, 47 MB of pixels) and holds its raw bytes while
// converting, on top of the float32 rows it keeps (4 bytes per u8 pixel);
// for files of that size this is far cheaper than any exchange.
#pragma once

#include <cstdint>
#include <string>

#include "dtrain/comm/communicator.h"
#include "dtrain/data/dataset.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"

namespace dtrain {

struct LoadOptions {
  FileFormat format = FileFormat::kCsv;
  CsvOptions csv;        // used for CSV input
  LibsvmOptions libsvm;  // used for LibSVM input
  IdxOptions idx;        // used for IDX input
  NpyOptions npy;        // used for .npy input
  // IDX and .npy: the labels file. Empty: for IDX, derived from the images
  // path (see read_idx); for .npy, the last column is the label.
  std::string labels_path;
};

// What one rank of load_partitioned did, for tests and tuning.
struct LoadStats {
  std::uint64_t file_bytes = 0;      // size of the input file
  std::uint64_t bytes_read = 0;      // bytes this rank read from it, header included
  std::uint64_t rows_parsed = 0;     // data rows among the lines this rank read
  std::uint64_t rows_sent = 0;       // of those, rows that went to another rank
  std::uint64_t rows_received = 0;   // rows that came from other ranks
  std::uint64_t rows_owned = 0;      // rows of the result
  std::uint64_t exchange_bytes = 0;  // serialised bytes this rank sent plus received
};

// Collective. Input errors are InputError("PATH:LINE: what") on the rank that
// read the bad line; the other ranks then fail in the next collective (the
// threads backend wakes them at once; under MPI the caller ends the job).
// When several ranks find bad lines, the one with the first bad line of the
// file throws, so the error is the one reading the whole file would give.
// For "hash:COLUMN" partitioning of CSV, an empty csv.key_column defaults to
// COLUMN (another key column is a ConfigError), so the result keeps the keys;
// other formats have no columns to hash (ConfigError). IDX and .npy errors
// are found by every rank alike (each reads the whole file) and thrown by all.
// LoadStats for them: bytes_read counts both files as stored (compressed),
// rows_parsed every row of the file, and nothing is sent or received.
Dataset load_partitioned(Communicator& comm, const std::string& path, const LoadOptions& options,
                         const Partitioner& partitioner);
// The same, also reporting this rank's LoadStats (when `stats` is not null).
Dataset load_partitioned(Communicator& comm, const std::string& path, const LoadOptions& options,
                         const Partitioner& partitioner, LoadStats* stats);

// True when `path` is a directory written by `dtrain partition`.
bool is_shard_directory(const std::string& path);

// Collective. Rank r reads shard r of a `dtrain partition` directory after
// checking its size and checksum against the manifest; the manifest's part
// count must equal comm.size() (ConfigError otherwise). Rows keep their
// original row ids, which `dtrain partition` stores beside each shard
// (part-NNNNN.ids, checksummed in the manifest), so training from a shard
// directory splits and shuffles exactly as training from the original file.
// The shards must be in options.format (ConfigError otherwise); a shard may be
// empty; LibSVM data gets the widest shard's column count on every rank, as
// load_partitioned gives it.
//
// With first_rank > 0 (master-worker: ranks below it are parameter servers
// and train on nothing), rank r >= first_rank reads shard r - first_rank,
// the part count must equal comm.size() - first_rank, and the ranks below
// read shard 0 for its columns (a CSV header, feature names) and keep none
// of its rows.
Dataset load_shard(Communicator& comm, const std::string& dir, const LoadOptions& options,
                   std::uint32_t first_rank = 0);

}  // namespace dtrain
