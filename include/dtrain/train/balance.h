// Speed-balanced mini-batches (--balance): each step's global batch of
// workers x batch_size rows is split between the workers in proportion to
// how fast each has been computing, so that a worker slowed down (by a
// busier core, a slower machine, another job) takes fewer rows instead of
// holding every other worker up at the exchange. Each worker still trains
// on its own shard only, read as an endless stream of seeded shuffles, so no
// rows move between workers; a faster worker simply goes through its shard
// more often.
//
// The split depends on measured times, so runs are not reproducible bit for
// bit (the rows of a step are summed in a different grouping), unlike every
// other mode of dtrain's; with one worker it is the plain mini-batch loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dtrain {

// Splits `global_batch` rows between workers in proportion to `speeds`
// (rows per second; each > 0, or 0 for a worker that has no rows and gets
// none). A share below min_rows (at most an even split) is raised to it
// before the shares are scaled back to add up to global_batch exactly, by
// cumulative rounding, so the same inputs give the same split on every
// worker. All speeds 0: an even split.
std::vector<std::size_t> split_batch(std::size_t global_batch, std::span<const double> speeds,
                                     std::size_t min_rows);

// A worker's training rows as an endless sequence of passes, each a seeded
// shuffle of the rows: pass p of worker w is ordered as the plain
// mini-batch loop orders epoch p of worker w.
class RowStream {
 public:
  RowStream(std::vector<std::size_t> rows, std::uint64_t seed, std::uint64_t worker);
  // The next min(n, rows left in the pass) rows; a new pass starts when the
  // current one is used up. Empty only when n is 0 or there are no rows.
  std::span<const std::size_t> take(std::size_t n);
  std::uint64_t passes_started() const { return pass_; }

 private:
  void start_pass();

  std::vector<std::size_t> rows_;
  std::vector<std::size_t> order_;
  std::uint64_t seed_;
  std::uint64_t worker_;
  std::uint64_t pass_ = 0;  // passes started so far
  std::size_t next_ = 0;    // position in order_
};

// The shuffle seed of pass (or epoch) `pass` of worker `worker`.
std::uint64_t pass_seed(std::uint64_t seed, std::uint64_t pass, std::uint64_t worker);

}  // namespace dtrain
