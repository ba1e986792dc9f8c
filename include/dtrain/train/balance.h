// Speed-balanced mini-batches (--balance): each step's global batch of
// workers x batch_size rows is split between the workers so that their
// compute takes equally long, so that a worker slowed down (by a busier
// core, a slower machine, another job) takes fewer rows instead of holding
// every other worker up at the exchange. Each worker still trains on its own
// shard only, read as an endless stream of seeded shuffles, so no rows move
// between workers; a faster worker simply goes through its shard more often.
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

// Splits `global_batch` rows between workers in proportion to `weights`
// (each >= 0; a worker of weight 0 gets no rows), except that every worker
// of positive weight gets at least max(1, floor_rows) rows (lowered to
// global_batch / their count when that is less): a worker whose share would
// fall below is held at the floor and the others share the rest in
// proportion. Cumulative rounding makes the shares add up to global_batch
// exactly, and the same inputs give the same split on every worker. All
// weights 0: an even split.
std::vector<std::size_t> split_batch(std::size_t global_batch, std::span<const double> weights,
                                     std::size_t floor_rows);

// Decides every step's split from the compute time each worker took for its
// share of the last step. A proportional controller moves each worker's
// (fractional) share by a part of its time's relative gap to the mean time,
// so the split settles where the workers' times are equal. Balancing times
// rather than rows per second keeps a per-step cost that does not depend
// on the row count (clock reads, clearing buffers, sleep granularity) from
// making a worker with few rows look slow per row and lose the rest.
// Every worker runs one on the same measurements, so all agree on the split.
class BatchBalancer {
 public:
  // has_rows[r]: whether worker r holds training rows (those without get
  // none). floor_rows: see split_batch.
  BatchBalancer(std::size_t global_batch, std::size_t floor_rows, std::vector<bool> has_rows);

  // Rows per worker for the next step.
  const std::vector<std::size_t>& shares() const { return shares_; }

  // seconds[r]: worker r's compute time for the last step's batch, which
  // held rows[r] rows (fewer than its share when its pass over its shard
  // ended within the step; the time is then scaled up to the share).
  void update(std::span<const double> seconds, std::span<const double> rows);

 private:
  std::size_t global_batch_;
  std::size_t floor_ = 0;  // floor_rows as split_batch applies it
  std::vector<bool> has_rows_;
  std::vector<double> target_;  // fractional shares, adding up to global_batch
  std::vector<std::size_t> shares_;
};

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
