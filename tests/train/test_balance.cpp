// Speed-balanced mini-batches: the split, the row streams, and training with
// a slowed worker.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "dtrain/train/balance.h"
#include "dtrain/train/trainer.h"
#include "train_on.h"

namespace dtrain {
namespace {

const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

std::size_t sum(const std::vector<std::size_t>& v) {
  return std::accumulate(v.begin(), v.end(), std::size_t{0});
}

TEST(SplitBatchTest, SharesFollowTheSpeedsAndAddUp) {
  const std::vector<double> speeds{3.0, 1.0};
  EXPECT_EQ(split_batch(256, speeds, 32), (std::vector<std::size_t>{192, 64}));
  const std::vector<double> even{2.0, 2.0, 2.0};
  EXPECT_EQ(split_batch(100, even, 1), (std::vector<std::size_t>{33, 34, 33}));
  for (std::size_t batch : {1u, 7u, 128u, 1000u}) {
    const std::vector<double> odd{0.3, 1.7, 0.9, 2.2, 1.1};
    const auto shares = split_batch(batch, odd, 1);
    EXPECT_EQ(sum(shares), batch) << batch;
  }
}

TEST(SplitBatchTest, AFloorForSlowWorkersAndNothingForIdleOnes) {
  // Proportional: 253.4 and 2.6 rows; the floor lifts the second to ~32.
  const std::vector<double> speeds{99.0, 1.0};
  const auto shares = split_batch(256, speeds, 32);
  EXPECT_EQ(sum(shares), 256u);
  EXPECT_GE(shares[1], 28u);
  EXPECT_LE(shares[1], 32u);
  // A worker without rows (speed 0) gets none; all zero: an even split.
  const std::vector<double> idle{1.0, 0.0, 1.0};
  EXPECT_EQ(split_batch(10, idle, 1), (std::vector<std::size_t>{5, 0, 5}));
  const std::vector<double> none{0.0, 0.0};
  EXPECT_EQ(split_batch(10, none, 1), (std::vector<std::size_t>{5, 5}));
}

TEST(RowStreamTest, PassesAreTheEpochShufflesOneAfterAnother) {
  std::vector<std::size_t> rows(23);
  std::iota(rows.begin(), rows.end(), std::size_t{100});
  RowStream stream(rows, 9, 2);
  for (std::uint64_t pass = 0; pass < 3; ++pass) {
    std::vector<std::size_t> expected = rows;
    seeded_shuffle(expected, pass_seed(9, pass, 2));
    std::vector<std::size_t> got;
    // Takes of 10: 10, 10, then the 3 left in the pass.
    for (const std::size_t want : {10u, 10u, 10u}) {
      const auto batch = stream.take(want);
      got.insert(got.end(), batch.begin(), batch.end());
    }
    EXPECT_EQ(got, expected) << "pass " << pass;
    EXPECT_EQ(stream.passes_started(), pass + 1);
  }
  RowStream empty({}, 1, 0);
  EXPECT_TRUE(empty.take(5).empty());
}

Dataset heart() {
  LibsvmOptions o;
  o.label_kind = LabelKind::kBinary;
  return read_libsvm(kData + "heart_scale.libsvm", o);
}

TrainConfig balanced_config() {
  TrainConfig c;
  c.model = ModelKind::kLogistic;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 16;
  c.epochs = 30;
  c.eval_every = 30;
  c.lr.base = 0.3;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.balance = true;
  return c;
}

// With one worker there is nothing to balance: the plain loop, bit for bit.
TEST(BalanceTest, OneWorkerIsThePlainMiniBatchLoop) {
  TrainConfig c = balanced_config();
  const TrainResult balanced = train_on(heart(), 1, "range", c);
  c.balance = false;
  const TrainResult plain = train_on(heart(), 1, "range", c);
  EXPECT_TRUE(balanced.params == plain.params);
}

// A worker made 8x slower gets far fewer rows, and the rows of an epoch add
// up to the global batches it holds.
TEST(BalanceTest, ASlowedWorkerTakesFewerRows) {
  const Dataset data = heart();
  TrainConfig c = balanced_config();
  c.epochs = 12;
  c.eval_every = 1;
  c.slow = {{1, 8.0}};
  const TrainResult r = train_on(data, 2, "range", c);
  // 270 rows over global batches of 32: 9 steps per epoch, each of at most
  // 32 rows (fewer when a worker's pass ends within the step).
  std::uint64_t fast = 0, slow = 0;
  for (const EpochReport& e : r.history) {
    const std::uint64_t rows = e.workers[0].rows + e.workers[1].rows;
    EXPECT_LE(rows, 9u * 32u);
    EXPECT_GE(rows, 270u * 3 / 4);
    if (e.epoch > 1) {
      fast += e.workers[0].rows;
      slow += e.workers[1].rows;
    }
  }
  EXPECT_GT(fast, 2 * slow) << fast << " vs " << slow;
  EXPECT_GT(slow, 0u);
  EXPECT_GT(r.history.back().train->at("accuracy"), 0.78);
}

// A worker whose shard is empty is given no rows, and nobody waits on it.
TEST(BalanceTest, AWorkerWithoutRowsGetsNone) {
  Dataset tiny = Dataset::dense(1);
  for (std::size_t r = 0; r < 40; ++r) {
    const float x[] = {static_cast<float>(r % 5)};
    tiny.add_dense_row(x, 2.0f * x[0] + 1.0f, r);
  }
  TrainConfig c;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 4;
  c.epochs = 3;
  c.lr.base = 0.02;
  c.balance = true;
  ThreadsOptions opts;
  opts.workers = 3;
  std::vector<TrainResult> results(3);
  run_threads(opts, [&](Communicator& comm) {
    const auto rank = static_cast<std::size_t>(comm.rank());
    const Dataset shard = rank == 1 ? Dataset::dense(1) : tiny;
    results[rank] = train(comm, shard, c);
  });
  for (const EpochReport& e : results[0].history) {
    EXPECT_EQ(e.workers[1].rows, 0u);
    EXPECT_GT(e.workers[0].rows, 0u);
    EXPECT_GT(e.workers[2].rows, 0u);
  }
  EXPECT_TRUE(results[0].params == results[2].params);
}

TEST(BalanceTest, OnlyForPeerToPeerBspMiniBatches) {
  const Dataset data = heart();
  TrainConfig c = balanced_config();
  c.batch_mode = BatchMode::kFullBatch;
  EXPECT_THROW(train_on(data, 2, "range", c), ConfigError);
  c = balanced_config();
  c.sync = SyncSpec::parse("local:4");
  EXPECT_THROW(train_on(data, 2, "range", c), ConfigError);
  c = balanced_config();
  c.schedule = Schedule::kMasterWorker;
  EXPECT_THROW(train_on(data, 2, "range", c), ConfigError);
}

}  // namespace
}  // namespace dtrain
