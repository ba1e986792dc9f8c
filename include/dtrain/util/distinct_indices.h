// Distinct indices in order of first appearance, in time proportional to the
// indices seen rather than to their range: a mark per possible index, set
// while collecting and cleared again at the end, so that no sort and no
// O(range) clearing is needed. Sparse steps use it for the weights a batch
// touches and for the union of every rank's lists.
//
// The marks are bits: for 2^20 weights they take 128 KiB, which can stay in
// a core's L2 cache beside the step's other data, where a byte per index
// (1 MiB, this CPU's whole L2) could not.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dtrain {

class DistinctIndices {
 public:
  // Starts a list in `out` (cleared) of indices below `bound`.
  void start(std::size_t bound, std::vector<std::size_t>& out) {
    assert(out_ == nullptr);
    if (bound_ != bound) {
      seen_.assign((bound + 63) / 64, 0);
      bound_ = bound;
    }
    out.clear();
    out_ = &out;
  }
  // Appends j to the list unless it is there already.
  void add(std::size_t j) {
    assert(out_ != nullptr && j < bound_);
    std::uint64_t& word = seen_[j / 64];
    const std::uint64_t bit = std::uint64_t{1} << (j % 64);
    if ((word & bit) == 0) {
      word |= bit;
      out_->push_back(j);
    }
  }
  // Ends the list, clearing the marks of its entries.
  void finish() {
    assert(out_ != nullptr);
    // Every mark set belongs to a listed index, so whole words can go.
    for (const std::size_t j : *out_) seen_[j / 64] = 0;
    out_ = nullptr;
  }

 private:
  std::vector<std::uint64_t> seen_;  // bit j % 64 of word j / 64; all clear between lists
  std::size_t bound_ = 0;
  std::vector<std::size_t>* out_ = nullptr;
};

}  // namespace dtrain
