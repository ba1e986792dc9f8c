// Distinct indices in order of first appearance, in time proportional to the
// indices seen rather than to their range: a mark per possible index, set
// while collecting and cleared again at the end, so that no sort and no
// O(range) clearing is needed. Sparse steps use it for the weights a batch
// touches and for the union of every rank's lists.
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
    if (seen_.size() != bound) seen_.assign(bound, 0);
    out.clear();
    out_ = &out;
  }
  // Appends j to the list unless it is there already.
  void add(std::size_t j) {
    assert(out_ != nullptr && j < seen_.size());
    if (seen_[j] == 0) {
      seen_[j] = 1;
      out_->push_back(j);
    }
  }
  // Ends the list, clearing the marks of its entries.
  void finish() {
    assert(out_ != nullptr);
    for (const std::size_t j : *out_) seen_[j] = 0;
    out_ = nullptr;
  }

 private:
  std::vector<std::uint8_t> seen_;  // all clear between lists
  std::vector<std::size_t>* out_ = nullptr;
};

}  // namespace dtrain
