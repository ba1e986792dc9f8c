#include "dtrain/data/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "dtrain/error.h"

namespace dtrain {

std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t state) {
  constexpr std::uint64_t kPrime = 1099511628211ull;
  for (char c : bytes) {
    state ^= static_cast<unsigned char>(c);
    state *= kPrime;
  }
  return state;
}

std::uint64_t hash_bytes(std::string_view bytes) { return mix64(fnv1a64(bytes)); }

namespace {

// High 64 bits of the 128-bit product. __extension__ keeps -Wpedantic quiet
// about the GCC/Clang 128-bit integer, which compiles to a single mul.
__extension__ typedef unsigned __int128 Uint128;
std::uint64_t mul_high(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::uint64_t>((static_cast<Uint128>(a) * b) >> 64);
}

}  // namespace

std::uint32_t reduce_to_range(std::uint64_t hash, std::uint32_t n) {
  return static_cast<std::uint32_t>(mul_high(hash, n));
}

namespace {

void check_parts(std::uint32_t parts) {
  if (parts == 0) throw ConfigError("the number of parts must be at least 1");
}

void check_row_id(std::uint64_t id, std::uint64_t total_rows) {
  if (id >= total_rows) {
    throw ConfigError("row id " + std::to_string(id) + " is not below total_rows " +
                      std::to_string(total_rows));
  }
}

// Start of each of `parts` balanced blocks over [0, total), plus total: the
// first total % parts blocks get one extra row.
std::vector<std::uint64_t> balanced_boundaries(std::uint64_t total, std::uint32_t parts) {
  std::vector<std::uint64_t> b(parts + std::size_t{1});
  const std::uint64_t base = total / parts;
  const std::uint64_t extra = total % parts;
  b[0] = 0;
  for (std::uint32_t p = 0; p < parts; ++p) b[p + 1] = b[p] + base + (p < extra ? 1 : 0);
  return b;
}

// The block of `pos` given boundaries from balanced_boundaries/boundaries.
std::uint32_t block_of(std::span<const std::uint64_t> b, std::uint64_t pos) {
  // The last boundary <= pos; empty blocks share a boundary with the next
  // one, and upper_bound skips past them.
  const auto it = std::upper_bound(b.begin(), b.end() - 1, pos);
  return static_cast<std::uint32_t>(it - b.begin() - 1);
}

// SplitMix64 (Steele, Lea, Flood 2014) as a generator: the state advances by
// the golden gamma 0x9e3779b97f4a7c15 and each output is mix64(new state).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }

 private:
  std::uint64_t state_;
};

}  // namespace

void seeded_shuffle(std::span<std::uint64_t> items, std::uint64_t seed) {
  SplitMix64 rng(seed);
  for (std::size_t i = items.size(); i-- > 1;) {
    const auto j = static_cast<std::size_t>(mul_high(rng.next(), i + 1));
    std::swap(items[i], items[j]);
  }
}

RangePartitioner::RangePartitioner(std::vector<double> weights) : weights_(std::move(weights)) {}

std::vector<std::uint64_t> RangePartitioner::boundaries(std::uint64_t total_rows,
                                                        std::uint32_t parts) const {
  check_parts(parts);
  if (weights_.empty()) return balanced_boundaries(total_rows, parts);
  if (weights_.size() != parts) {
    throw ConfigError("range partitioner: " + std::to_string(weights_.size()) + " weights for " +
                      std::to_string(parts) + " parts");
  }
  long double sum = 0;
  for (double w : weights_) {
    if (!(w > 0) || !std::isfinite(w)) {
      throw ConfigError("range partitioner: weights must be positive, got " + std::to_string(w));
    }
    sum += w;
  }
  // Largest-remainder rounding: floors first, then one more row to the parts
  // with the largest fractional quota (lower part first on ties) until the
  // counts add up to total_rows.
  std::vector<std::uint64_t> count(parts);
  std::vector<long double> rem(parts);
  std::uint64_t assigned = 0;
  for (std::uint32_t p = 0; p < parts; ++p) {
    const long double quota = static_cast<long double>(total_rows) * weights_[p] / sum;
    const long double fl = std::floor(quota);
    count[p] = std::min(static_cast<std::uint64_t>(fl), total_rows);
    rem[p] = quota - fl;
    assigned += count[p];
  }
  std::vector<std::uint32_t> order(parts);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return rem[a] > rem[b]; });
  // Rounding of long double quotas can leave the floors off by a few rows in
  // either direction for huge totals; the loops settle it either way.
  for (std::size_t k = 0; assigned < total_rows; k = (k + 1) % parts, ++assigned) {
    ++count[order[k]];
  }
  for (std::size_t k = parts; assigned > total_rows;) {
    k = (k == 0 ? parts : k) - 1;
    if (count[order[k]] > 0) {
      --count[order[k]];
      --assigned;
    }
  }
  std::vector<std::uint64_t> b(parts + std::size_t{1}, 0);
  for (std::uint32_t p = 0; p < parts; ++p) b[p + 1] = b[p] + count[p];
  return b;
}

std::vector<std::uint32_t> RangePartitioner::assign(const Dataset& data, std::uint64_t total_rows,
                                                    std::uint32_t parts) const {
  const std::vector<std::uint64_t> b = boundaries(total_rows, parts);
  std::vector<std::uint32_t> owner(data.rows());
  const auto ids = data.row_ids();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    check_row_id(ids[i], total_rows);
    owner[i] = block_of(b, ids[i]);
  }
  return owner;
}

HashPartitioner::HashPartitioner(std::string key_column) : key_column_(std::move(key_column)) {}

std::string HashPartitioner::name() const {
  return key_column_.empty() ? "hash" : "hash:" + key_column_;
}

std::vector<std::uint32_t> HashPartitioner::assign(const Dataset& data, std::uint64_t /*total*/,
                                                   std::uint32_t parts) const {
  check_parts(parts);
  std::vector<std::uint32_t> owner(data.rows());
  if (key_column_.empty()) {
    const auto ids = data.row_ids();
    for (std::size_t i = 0; i < ids.size(); ++i) owner[i] = reduce_to_range(mix64(ids[i]), parts);
    return owner;
  }
  const auto& keys = data.keys();
  if (keys.size() != data.rows()) {
    throw ConfigError("partitioner hash:" + key_column_ + " needs the keys of column '" +
                      key_column_ + "': the reader must keep that column (key_column)");
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    owner[i] = reduce_to_range(hash_bytes(keys[i]), parts);
  }
  return owner;
}

ShufflePartitioner::ShufflePartitioner(std::uint64_t seed) : seed_(seed) {}

std::vector<std::uint32_t> ShufflePartitioner::assign(const Dataset& data, std::uint64_t total_rows,
                                                      std::uint32_t parts) const {
  check_parts(parts);
  const auto ids = data.row_ids();
  for (std::uint64_t id : ids) check_row_id(id, total_rows);
  std::vector<std::uint64_t> perm(static_cast<std::size_t>(total_rows));
  std::iota(perm.begin(), perm.end(), std::uint64_t{0});
  seeded_shuffle(perm, seed_);
  // Position k of the permuted order falls in balanced block block_of(k).
  const std::vector<std::uint64_t> b = balanced_boundaries(total_rows, parts);
  std::vector<std::uint32_t> owner_of_id(static_cast<std::size_t>(total_rows));
  std::uint32_t p = 0;
  for (std::uint64_t k = 0; k < total_rows; ++k) {
    while (k >= b[p + 1]) ++p;
    owner_of_id[perm[k]] = p;
  }
  std::vector<std::uint32_t> owner(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) owner[i] = owner_of_id[ids[i]];
  return owner;
}

OffsetPartitioner::OffsetPartitioner(std::unique_ptr<Partitioner> inner, std::uint32_t first)
    : inner_(std::move(inner)), first_(first) {}

std::vector<std::uint32_t> OffsetPartitioner::assign(const Dataset& data, std::uint64_t total_rows,
                                                     std::uint32_t parts) const {
  if (parts <= first_) {
    throw ConfigError("no part left for the rows: " + std::to_string(parts) + " parts, the first " +
                      std::to_string(first_) + " kept empty");
  }
  auto owners = inner_->assign(data, total_rows, parts - first_);
  for (auto& owner : owners) owner += first_;
  return owners;
}

std::unique_ptr<Partitioner> make_partitioner(std::string_view spec, std::uint64_t seed,
                                              std::vector<double> weights) {
  std::unique_ptr<Partitioner> p;
  if (spec == "range") return std::make_unique<RangePartitioner>(std::move(weights));
  if (spec == "hash") {
    p = std::make_unique<HashPartitioner>();
  } else if (spec.substr(0, 5) == "hash:" && spec.size() > 5) {
    p = std::make_unique<HashPartitioner>(std::string(spec.substr(5)));
  } else if (spec == "shuffle") {
    p = std::make_unique<ShufflePartitioner>(seed);
  } else {
    throw ConfigError("unknown partitioner '" + std::string(spec) +
                      "' (expected range, hash, hash:COLUMN or shuffle)");
  }
  if (!weights.empty()) {
    throw ConfigError("partition weights only apply to 'range', not '" + std::string(spec) + "'");
  }
  return p;
}

std::vector<std::size_t> rows_of_part(std::span<const std::uint32_t> owner, std::uint32_t part) {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < owner.size(); ++i) {
    if (owner[i] == part) rows.push_back(i);
  }
  return rows;
}

}  // namespace dtrain
