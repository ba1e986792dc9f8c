// Data partitioning: which worker holds which rows.
//
// A Partitioner maps every row of a dataset to exactly one of `parts` owners.
// The decision depends only on the row's global id (and, for key hashing, the
// raw text of its key field), the total row count, the part count and the
// seed — never on the machine, the run, or the order rows are presented in.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/data/dataset.h"

namespace dtrain {

// The fixed 64-bit hashes dtrain uses for partitioning and splitting. They
// are part of the file formats' contract: changing them moves rows.
//   hash_bytes: FNV-1a 64 over the bytes, then mix64 (FNV alone mixes the
//               high bits poorly for short keys).
//   mix64:      the SplitMix64 finaliser (Steele, Lea, Flood 2014).
std::uint64_t mix64(std::uint64_t x);
std::uint64_t hash_bytes(std::string_view bytes);
// Plain FNV-1a 64 (no finaliser), resumable: pass the previous result as
// `state` to hash data that arrives in pieces. Shard checksums use it.
inline constexpr std::uint64_t kFnv1a64Offset = 14695981039346656037ull;
std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t state = kFnv1a64Offset);
// Maps a 64-bit hash uniformly onto [0, n) with Lemire's multiply-shift.
std::uint32_t reduce_to_range(std::uint64_t hash, std::uint32_t n);

// Seeded Fisher-Yates shuffle in place: for i = size-1 down to 1,
// j = (next() * (i + 1)) >> 64, swap(items[i], items[j]), where next() is
// SplitMix64 (state += 0x9e3779b97f4a7c15, output mix64(state)) started at
// `seed`. Lemire's reduction without the rejection step: its bias, below
// (i+1)/2^64, is immaterial here and the draw count per step stays fixed,
// which keeps the order easy to reproduce. ShufflePartitioner and mini-batch
// SGD both order rows with it.
void seeded_shuffle(std::span<std::uint64_t> items, std::uint64_t seed);

class Partitioner {
 public:
  virtual ~Partitioner() = default;
  // "range", "hash", "hash:COLUMN" or "shuffle".
  virtual std::string name() const = 0;
  // owner[i] in [0, parts) for row i of `data`. `total_rows` is the number of
  // data rows in the whole source (rows' ids are below it).
  virtual std::vector<std::uint32_t> assign(const Dataset& data, std::uint64_t total_rows,
                                            std::uint32_t parts) const = 0;
};

// Contiguous blocks of row ids. With no weights the blocks differ by at most
// one row; with weights (one positive number per part, e.g. relative worker
// speed) part p gets round(total * w_p / sum w) rows, largest remainders first.
// Invalid weights (count != parts, not positive and finite) and parts == 0
// are ConfigErrors, raised by assign/boundaries.
class RangePartitioner final : public Partitioner {
 public:
  explicit RangePartitioner(std::vector<double> weights = {});
  std::string name() const override { return "range"; }
  std::vector<std::uint32_t> assign(const Dataset& data, std::uint64_t total_rows,
                                    std::uint32_t parts) const override;
  // First row id of each part, plus total_rows at the end (parts + 1 entries).
  std::vector<std::uint64_t> boundaries(std::uint64_t total_rows, std::uint32_t parts) const;

 private:
  std::vector<double> weights_;
};

// owner = reduce_to_range(hash, parts) where hash is mix64(row id), or
// hash_bytes(key text) when partitioning by a key column (the field's text as
// written in the file, surrounding blanks trimmed). total_rows is unused. With
// a key column, data.keys() must hold one key per row (CsvOptions::key_column)
// or assign throws ConfigError.
class HashPartitioner final : public Partitioner {
 public:
  explicit HashPartitioner(std::string key_column = "");
  std::string name() const override;
  std::vector<std::uint32_t> assign(const Dataset& data, std::uint64_t total_rows,
                                    std::uint32_t parts) const override;
  const std::string& key_column() const { return key_column_; }

 private:
  std::string key_column_;
};

// A seeded random permutation of the row ids (Fisher-Yates driven by
// SplitMix64), cut into balanced contiguous blocks: balanced like range,
// order-free like hash. Needs O(total_rows) memory. The exact generator is
// specified in partition.cpp; it is part of the contract like the hashes.
class ShufflePartitioner final : public Partitioner {
 public:
  explicit ShufflePartitioner(std::uint64_t seed);
  std::string name() const override { return "shuffle"; }
  std::vector<std::uint32_t> assign(const Dataset& data, std::uint64_t total_rows,
                                    std::uint32_t parts) const override;

 private:
  std::uint64_t seed_;
};

// Leaves parts [0, first) empty and lets `inner` split the rows among parts
// first..parts-1: master-worker training keeps its parameter servers, the
// first ranks, free of data. ConfigError when parts <= first.
class OffsetPartitioner final : public Partitioner {
 public:
  OffsetPartitioner(std::unique_ptr<Partitioner> inner, std::uint32_t first);
  std::string name() const override { return inner_->name(); }
  std::vector<std::uint32_t> assign(const Dataset& data, std::uint64_t total_rows,
                                    std::uint32_t parts) const override;

 private:
  std::unique_ptr<Partitioner> inner_;
  std::uint32_t first_;
};

// "range" | "hash" | "hash:COLUMN" | "shuffle"; throws ConfigError otherwise.
std::unique_ptr<Partitioner> make_partitioner(std::string_view spec, std::uint64_t seed,
                                              std::vector<double> weights = {});

// Row indices (into the dataset) owned by `part`, in dataset order.
std::vector<std::size_t> rows_of_part(std::span<const std::uint32_t> owner, std::uint32_t part);

}  // namespace dtrain
