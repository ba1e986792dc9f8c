// Sharding a data file for a fixed number of workers (`dtrain partition`):
// one file per part holding the original text lines of its rows, one beside
// it holding their original row ids, plus a manifest.json that records how the
// shards were made and their checksums.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"

namespace dtrain {

struct ShardInfo {
  std::string file;  // name inside the shard directory, e.g. "part-00003.csv"
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::string checksum;  // "fnv1a64:<16 lowercase hex>" of the file's bytes
  // The rows' original row ids (their position among the source's data
  // rows), in the shard's row order: little-endian uint64s, 8 * rows bytes.
  // Training from shards needs them to split and shuffle as from the source.
  std::string ids_file;  // e.g. "part-00003.ids"
  std::string ids_checksum;
};

struct ShardManifest {
  std::string source;       // the input path as given
  std::string format;       // "csv" or "libsvm"
  std::string partitioner;  // Partitioner::name()
  std::uint64_t seed = 0;   // as passed to write_shards (only shuffle uses it)
  std::uint32_t parts = 0;
  std::uint64_t total_rows = 0;
  std::vector<ShardInfo> shards;  // one per part, in part order
};

// Reads and validates `input` with the given options, assigns its rows with
// `partitioner` and writes out_dir/part-NNNNN.{csv,libsvm} (CSV shards start
// with the input's header line; then each row's original line, in row-id
// order, ending in '\n'), out_dir/part-NNNNN.ids (those rows' ids) and
// out_dir/manifest.json.
//
// Validation uses `csv` exactly as given (label, label_kind, select_features),
// so every shard reads back with the same options (set allow_empty where a
// part may be empty). For LibSVM input, allow_nonfinite, label_kind and
// allow_empty are taken from `csv`. For "hash:COLUMN" an empty
// csv.key_column defaults to COLUMN.
//
// Atomic: everything is written to a sibling temporary directory that is
// renamed to out_dir at the end and removed on any error. out_dir may be
// absent or an empty directory; otherwise ConfigError and nothing is written.
// Missing parent directories are created. Input problems throw InputError,
// bad options ConfigError, write failures Error.
ShardManifest write_shards(const std::string& input, FileFormat format, const CsvOptions& csv,
                           const Partitioner& partitioner, std::uint32_t parts, std::uint64_t seed,
                           const std::string& out_dir);

// Reads and validates dir/manifest.json; InputError "PATH: field 'F': what".
// Manifests of format version 1 (before the .ids files) are refused.
ShardManifest read_manifest(const std::string& dir);

// Checks the size and checksum of shard `part` and of its .ids file against
// the manifest: InputError naming the file on a mismatch; ConfigError when
// `part` is not in the manifest.
void verify_shard(const std::string& dir, const ShardManifest& manifest, std::uint32_t part);

// The shard file name of a part: "part-00003.csv" / "part-00003.libsvm".
std::string shard_file_name(std::uint32_t part, FileFormat format);
// The row-id file name of a part: "part-00003.ids".
std::string shard_ids_file_name(std::uint32_t part);

struct BalanceStats {
  std::uint64_t min = 0;  // rows in the smallest shard
  std::uint64_t max = 0;
  double mean = 0;
  double imbalance = 1;  // max / mean; 1 when there are no rows
};
BalanceStats balance_of(const ShardManifest& manifest);

}  // namespace dtrain
