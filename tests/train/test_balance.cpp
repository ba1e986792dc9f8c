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

TEST(SplitBatchTest, SharesFollowTheWeightsAboveTheFloor) {
  const std::vector<double> weights{3.0, 1.0};
  EXPECT_EQ(split_batch(256, weights, 32), (std::vector<std::size_t>{192, 64}));
  const std::vector<double> even{2.0, 2.0, 2.0};
  EXPECT_EQ(split_batch(100, even, 0), (std::vector<std::size_t>{33, 34, 33}));
  for (std::size_t batch : {3u, 7u, 128u, 1000u}) {
    const std::vector<double> odd{0.3, 1.7, 0.9, 2.2, 1.1};
    for (std::size_t floor : {0u, 1u, 4u, 50u}) {
      const auto shares = split_batch(batch, odd, floor);
      EXPECT_EQ(sum(shares), batch) << batch;
      for (const std::size_t share : shares) {
        EXPECT_GE(share, std::min(std::max<std::size_t>(floor, 1), batch / 5)) << batch;
      }
    }
  }
}

TEST(SplitBatchTest, SlowWorkersKeepTheFloorIdleOnesGetNothing) {
  EXPECT_EQ(split_batch(6, std::vector<double>{3, 1, 3}, 1), (std::vector<std::size_t>{3, 1, 2}));
  const auto tiny = split_batch(64, std::vector<double>{1000, 1, 1, 1}, 4);
  EXPECT_EQ(tiny, (std::vector<std::size_t>{52, 4, 4, 4}));
  // 40 : 1 : 1 of 84 rows with a floor of 10: the proportional shares of
  // the two slow workers (2 each) are raised to 10 and the first takes 64.
  EXPECT_EQ(split_batch(84, std::vector<double>{40, 1, 1}, 10),
            (std::vector<std::size_t>{64, 10, 10}));
  // A worker without rows (weight 0) gets none; all zero: an even split.
  const std::vector<double> idle{1.0, 0.0, 1.0};
  EXPECT_EQ(split_batch(10, idle, 1), (std::vector<std::size_t>{5, 0, 5}));
  const std::vector<double> none{0.0, 0.0, 0.0};
  EXPECT_EQ(split_batch(10, none, 1), (std::vector<std::size_t>{3, 3, 4}));
}

// Worker r computes a step of n rows in overhead + n / speed[r] seconds.
struct SimulatedWorkers {
  std::vector<double> speed;
  double overhead = 0.0;
  // Runs `steps` steps of `balancer`; returns the shares after them.
  std::vector<std::size_t> run(BatchBalancer& balancer, int steps) const {
    for (int s = 0; s < steps; ++s) {
      std::vector<double> seconds, rows;
      for (std::size_t r = 0; r < speed.size(); ++r) {
        const auto n = static_cast<double>(balancer.shares()[r]);
        seconds.push_back(speed[r] > 0 ? overhead + n / speed[r] : 0.0);
        rows.push_back(speed[r] > 0 ? n : 0.0);
      }
      balancer.update(seconds, rows);
      EXPECT_EQ(sum(balancer.shares()), 256u);
    }
    return balancer.shares();
  }
};

TEST(BatchBalancerTest, SettlesWhereTheTimesAreEqual) {
  BatchBalancer balancer(256, 32, {true, true});
  EXPECT_EQ(balancer.shares(), (std::vector<std::size_t>{128, 128}));
  const SimulatedWorkers three_to_one{{3000.0, 1000.0}, 0.0};
  const auto shares = three_to_one.run(balancer, 30);
  EXPECT_NEAR(static_cast<double>(shares[0]), 192.0, 3.0);
  // Speeds change back: so does the split.
  const SimulatedWorkers equal{{1000.0, 1000.0}, 0.0};
  const auto back = equal.run(balancer, 30);
  EXPECT_NEAR(static_cast<double>(back[0]), 128.0, 3.0);
}

// A per-step cost that does not depend on the rows must not push a worker
// with fewer rows to ever fewer (as rows-per-second estimates do): equal
// workers whose steps are mostly overhead stay at an even split.
TEST(BatchBalancerTest, AFixedPerStepCostDoesNotStarveAWorker) {
  BatchBalancer balancer(256, 1, {true, true, true});
  const SimulatedWorkers slow_start{{1000.0, 250.0, 1000.0}, 0.0};
  slow_start.run(balancer, 30);
  EXPECT_LT(balancer.shares()[1], 60u);
  // Equal again, with steps that are mostly overhead (0.3 s against
  // ~0.09 s of rows): the starved worker climbs back to an even share.
  const SimulatedWorkers overhead{{1000.0, 1000.0, 1000.0}, 0.3};
  const auto shares = overhead.run(balancer, 300);
  for (const std::size_t share : shares) EXPECT_NEAR(static_cast<double>(share), 85.3, 4.0);
}

TEST(BatchBalancerTest, TheFloorHoldsAndIdleWorkersGetNothing) {
  BatchBalancer balancer(256, 16, {true, false, true});
  EXPECT_EQ(balancer.shares(), (std::vector<std::size_t>{128, 0, 128}));
  const SimulatedWorkers very_uneven{{100000.0, 0.0, 10.0}, 0.0};
  const auto shares = very_uneven.run(balancer, 40);
  EXPECT_EQ(shares, (std::vector<std::size_t>{240, 0, 16}));
  // A short batch (the end of a pass) counts as the time a full share
  // would have taken: no change for a worker as fast as the others.
  BatchBalancer even(256, 16, {true, true});
  even.update(std::vector<double>{0.128, 0.064}, std::vector<double>{128, 64});
  EXPECT_EQ(even.shares(), (std::vector<std::size_t>{128, 128}));
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
