// The synchronisation strategies end to end, through train() on the threads
// backend: master-worker BSP against peer-to-peer BSP, the SSP staleness
// bound with a straggler, every strategy's convergence to the least-squares
// optimum of the diabetes data, gossip's consensus, the parameter servers'
// share of the traffic, and Fashion-MNIST accuracy under every strategy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dtrain/comm/threads.h"
#include "dtrain/data/datasets.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/train/trainer.h"

namespace dtrain {
namespace {

const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

// Training MSE of the ordinary least-squares fit of the diabetes data (the
// minimum any linear model can reach on its training rows; see
// tests/train/test_train.cpp, which checks the OLS fit against scikit-learn).
constexpr double kDiabetesOptimalMse = 2859.6963475867506;

Dataset diabetes() {
  CsvOptions o;
  o.label = "target";
  return read_csv(kData + "diabetes.csv", o);
}

// The ranks besides the workers: parameter servers under master-worker.
int servers_of(const TrainConfig& config) {
  return config.schedule == Schedule::kMasterWorker ? config.servers : 0;
}

// Trains on threads: `workers` training ranks split `data` by range; under
// master-worker they are ranks [servers, servers + workers) and the server
// ranks before them hold no rows. Worker w gets the same rows (and, the
// shuffle being seeded by the worker index, the same batches) whatever the
// schedule. Returns rank 0's result.
TrainResult train_on(const Dataset& data, int workers, const TrainConfig& config) {
  const int servers = servers_of(config);
  const auto owners =
      RangePartitioner{}.assign(data, data.rows(), static_cast<std::uint32_t>(workers));
  std::vector<Dataset> shards;
  for (int r = 0; r < servers + workers; ++r) {
    shards.push_back(
        r < servers ? data.subset({})
                    : data.subset(rows_of_part(owners, static_cast<std::uint32_t>(r - servers))));
  }
  TrainResult result;
  ThreadsOptions opts;
  opts.workers = servers + workers;
  opts.timeout = std::chrono::seconds(60);
  run_threads(opts, [&](Communicator& comm) {
    auto r = train(comm, shards[static_cast<std::size_t>(comm.rank())], config);
    if (comm.rank() == 0) result = std::move(r);
  });
  return result;
}

// One way of synchronising: the schedule, the sync spec and (gossip) the
// neighbours.
struct Strategy {
  std::string label;
  Schedule schedule = Schedule::kPeerToPeer;
  int servers = 1;
  std::string sync = "bsp";
  Topology topology = Topology::kRing;
};

TrainConfig with_strategy(TrainConfig config, const Strategy& s) {
  config.schedule = s.schedule;
  config.servers = s.servers;
  config.sync = SyncSpec::parse(s.sync);
  config.topology = s.topology;
  return config;
}

Strategy master_worker(int servers, const std::string& sync) {
  return {"master-worker/" + std::to_string(servers) + "/" + sync, Schedule::kMasterWorker, servers,
          sync};
}

Strategy peer_to_peer(const std::string& sync, Topology topology = Topology::kRing) {
  return {"p2p/" + sync + (sync == "gossip" ? std::string("/") + to_string(topology) : ""),
          Schedule::kPeerToPeer, 1, sync, topology};
}

// Mini-batch momentum SGD of a linear model on the standardised diabetes
// data.
TrainConfig diabetes_sgd(int epochs) {
  TrainConfig c;
  c.model = ModelKind::kLinear;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 16;
  c.standardize = true;
  c.epochs = epochs;
  c.eval_every = epochs;
  c.lr.base = 0.01;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  return c;
}

// Gaussian blobs: `classes` classes in `features` dimensions, class k
// centred at 2 on feature k % features, uniform noise in [-1, 1) elsewhere.
Dataset blobs(std::size_t rows, std::size_t features, std::size_t classes, std::uint64_t seed) {
  Dataset d = Dataset::dense(features);
  std::uint64_t state = seed;
  const auto uniform = [&state] {
    state = mix64(state + 0x9e3779b97f4a7c15ULL);
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  std::vector<float> x(features);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t label = r % classes;
    for (std::size_t j = 0; j < features; ++j) {
      const double center = j == label % features ? 2.0 : 0.0;
      x[j] = static_cast<float>(center + (uniform() - 0.5) * 2.0);
    }
    d.add_dense_row(x, static_cast<float>(label), r);
  }
  return d;
}

void expect_relative(const std::vector<double>& got, const std::vector<double>& want, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(std::abs(got[i] - want[i]), tol * std::max(std::abs(got[i]), std::abs(want[i])))
        << what << " [" << i << "]: " << got[i] << " vs " << want[i];
  }
}

double train_mse(const TrainResult& r) { return r.history.back().train.value().at("mse"); }

// Mean disagreement of the training ranks' replicas in one report.
double mean_disagreement(const EpochReport& report) {
  double sum = 0.0;
  int count = 0;
  for (const WorkerStats& w : report.workers) {
    if (w.server) continue;
    sum += w.disagreement;
    ++count;
  }
  return sum / count;
}

// ---- master-worker BSP = peer-to-peer BSP -----------------------------------

TEST(MasterWorkerBsp, EqualsPeerToPeerBspOnDiabetes) {
  const Dataset data = diabetes();
  const TrainConfig c = diabetes_sgd(3);
  for (const int workers : {1, 2, 4}) {
    const TrainResult p2p = train_on(data, workers, c);
    // Not the starting point: the comparison below compares trained models.
    EXPECT_LT(train_mse(p2p), 4000.0);
    for (const int servers : {1, 2}) {
      const std::string what =
          std::to_string(workers) + " workers, " + std::to_string(servers) + " servers";
      const TrainResult mw =
          train_on(data, workers, with_strategy(c, master_worker(servers, "bsp")));
      expect_relative(mw.params, p2p.params, 1e-6, "bsp, " + what);
      EXPECT_NEAR(mw.history.back().loss, p2p.history.back().loss, 1e-9 * p2p.history.back().loss)
          << what;
      EXPECT_EQ(mw.train_rows, 442u);
      // SSP with no staleness allowed is BSP.
      const TrainResult ssp0 =
          train_on(data, workers, with_strategy(c, master_worker(servers, "ssp:0")));
      expect_relative(ssp0.params, p2p.params, 1e-6, "ssp:0, " + what);
    }
  }
}

TEST(MasterWorkerBsp, EqualsPeerToPeerBspForFloatNetworks) {
  const Dataset data = blobs(240, 4, 3, 3);
  for (const ModelKind kind : {ModelKind::kSoftmax, ModelKind::kMlp}) {
    TrainConfig c;
    c.model = kind;
    if (kind == ModelKind::kMlp) c.hidden = {8, 6};
    c.activation = Activation::kTanh;
    c.batch_mode = BatchMode::kMiniBatch;
    c.batch_size = 16;
    c.epochs = 4;
    c.eval_every = 4;
    c.lr.base = 0.1;
    c.optimizer.kind = OptimizerKind::kMomentum;
    c.optimizer.momentum = 0.9;
    c.seed = 7;
    for (const int workers : {1, 2, 4}) {
      const TrainResult p2p = train_on(data, workers, c);
      EXPECT_GT(p2p.history.back().train->at("accuracy"), 0.8) << to_string(kind);
      for (const int servers : {1, 2}) {
        const std::string what = std::string(to_string(kind)) + ", " + std::to_string(workers) +
                                 " workers, " + std::to_string(servers) + " servers";
        const TrainResult mw =
            train_on(data, workers, with_strategy(c, master_worker(servers, "bsp")));
        expect_relative(mw.params, p2p.params, 1e-6, "bsp, " + what);
        const TrainResult ssp0 =
            train_on(data, workers, with_strategy(c, master_worker(servers, "ssp:0")));
        expect_relative(ssp0.params, p2p.params, 1e-6, "ssp:0, " + what);
      }
    }
  }
}

// ---- peer-to-peer bsp: the sharded update -----------------------------------

// A mini-batch MLP of 115 parameters on blobs: no worker count from 2 to 4
// divides it, so 1, 1 and 3 values are left past the workers' slices.
TrainConfig sharded_mlp_config(Activation activation, int epochs, double lr, std::uint64_t seed) {
  TrainConfig c;
  c.model = ModelKind::kMlp;
  c.hidden = {8, 6};
  c.activation = activation;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 16;
  c.epochs = epochs;
  c.eval_every = epochs;
  c.lr.base = lr;
  c.seed = seed;
  return c;
}

// Each worker updates only its slice of the parameters (and keeps optimizer
// state for it), the P mod N values past the last slice on every worker.
// With a stateful optimizer, L2 on the weights only and a parameter count
// that no worker count divides, the result is still the servers' (who do
// the whole update in one place), for every split.
TEST(ShardedBsp, StatefulOptimizerAndL2MatchTheServers) {
  const Dataset data = blobs(240, 4, 3, 5);
  TrainConfig c = sharded_mlp_config(Activation::kTanh, /*epochs=*/3, /*lr=*/0.01, /*seed=*/3);
  c.l2 = 0.05;
  for (const OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kRmsProp}) {
    c.optimizer.kind = kind;
    for (const int workers : {2, 3, 4}) {
      const std::string what = std::string(to_string(kind)) + ", " + std::to_string(workers);
      const TrainResult p2p = train_on(data, workers, c);
      const TrainResult mw = train_on(data, workers, with_strategy(c, master_worker(1, "bsp")));
      ASSERT_EQ(p2p.params.size(), 115u);
      expect_relative(p2p.params, mw.params, 1e-6, what);
      EXPECT_NEAR(p2p.history.back().loss, mw.history.back().loss, 1e-6 * mw.history.back().loss)
          << what;
    }
  }
}

// Without L2 or clipping each worker's optimizer reads the reduce-scatter's
// sums where they lie (the threads backend passes the peers' blocks) and
// averages them as it reads; otherwise the slice is reduced into a buffer
// and scaled in place first. A clip that never binds takes the second path
// with the same arithmetic, so the two must agree bit for bit, for every
// optimizer and for worker counts that fold 0, 2 or 3 blocks into scratch.
TEST(ShardedBsp, UpdateFromTheReduceScatterInPlaceEqualsTheTwoPassUpdate) {
  const Dataset data = blobs(240, 4, 3, 9);
  TrainConfig c = sharded_mlp_config(Activation::kRelu, /*epochs=*/2, /*lr=*/0.02, /*seed=*/4);
  for (const OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
        OptimizerKind::kAdam, OptimizerKind::kAdamW, OptimizerKind::kAdaGrad,
        OptimizerKind::kRmsProp}) {
    c.optimizer.kind = kind;
    for (const int workers : {2, 3, 4}) {
      const std::string what = std::string(to_string(kind)) + ", " + std::to_string(workers);
      c.clip_norm = 0.0;
      const TrainResult read_in_place = train_on(data, workers, c);
      c.clip_norm = 1e30;
      const TrainResult two_pass = train_on(data, workers, c);
      EXPECT_EQ(read_in_place.params, two_pass.params) << what;
      EXPECT_EQ(read_in_place.history.back().loss, two_pass.history.back().loss) << what;
    }
  }
}

// Clipping needs the norm of the whole gradient, which no worker holds: the
// slices' sums of squares are added first. Full-batch descent with a clip
// that binds at every step gives the same model on 1, 2, 3 and 12 workers.
TEST(ShardedBsp, ClipsByTheNormOfTheWholeGradient) {
  const Dataset data = diabetes();
  TrainConfig c;
  c.model = ModelKind::kLinear;
  c.batch_mode = BatchMode::kFullBatch;
  c.standardize = true;
  c.epochs = 30;
  c.eval_every = 30;
  c.lr.base = 0.5;
  c.clip_norm = 1.0;  // the initial gradient's norm is in the thousands
  const TrainResult one = train_on(data, 1, c);
  // 12 workers: fewer parameters (11) than workers, so no slices, only the
  // tail that every worker updates.
  for (const int workers : {2, 3, 12}) {
    const TrainResult many = train_on(data, workers, c);
    expect_relative(many.params, one.params, 1e-9, std::to_string(workers) + " workers");
  }
  // Clipped steps of length lr * clip_norm: 30 of them move the weights a
  // distance of at most 15 from zero.
  double norm2 = 0.0;
  for (const double w : one.params) norm2 += w * w;
  EXPECT_LE(std::sqrt(norm2), 15.0 + 1e-9);
  EXPECT_GT(std::sqrt(norm2), 1.0);
}

// ---- staleness ---------------------------------------------------------------

// Three workers and two servers on diabetes, worker 0 a straggler.
TrainConfig straggler_config() {
  TrainConfig c = diabetes_sgd(3);
  c.eval_every = 1;
  c.slow = {{0, 30.0}};
  return c;
}

TEST(StaleSynchronous, ObservedStalenessNeverExceedsTheBound) {
  const Dataset data = diabetes();
  for (const int bound : {1, 3}) {
    const TrainResult r = train_on(
        data, 3,
        with_strategy(straggler_config(), master_worker(2, "ssp:" + std::to_string(bound))));
    ASSERT_EQ(r.history.size(), 3u);
    std::uint64_t observed = 0;
    for (const EpochReport& report : r.history) {
      ASSERT_EQ(report.workers.size(), 5u);
      for (const WorkerStats& w : report.workers) {
        EXPECT_EQ(w.server, w.rank < 2);
        EXPECT_LE(w.max_staleness, static_cast<std::uint64_t>(bound))
            << "ssp:" << bound << ", rank " << w.rank << ", epoch " << report.epoch;
        EXPECT_LE(w.mean_staleness, static_cast<double>(w.max_staleness));
        observed = std::max(observed, w.max_staleness);
      }
    }
    // The fast workers ran ahead of the straggler: the bound was reached at
    // least once, so the check above was not vacuous.
    EXPECT_GT(observed, 0u) << "ssp:" << bound;
    RecordProperty("max_staleness_ssp" + std::to_string(bound), static_cast<int>(observed));
    // Stale but still learning (the targets' mean square is about 29000).
    EXPECT_LT(train_mse(r), 6000.0) << "ssp:" << bound;
  }
}

TEST(AsynchronousParallel, StragglerSeesStaleParameters) {
  const TrainResult r =
      train_on(diabetes(), 3, with_strategy(straggler_config(), master_worker(2, "asp")));
  std::uint64_t observed = 0;
  for (const EpochReport& report : r.history) {
    for (const WorkerStats& w : report.workers) observed = std::max(observed, w.max_staleness);
  }
  EXPECT_GT(observed, 0u);
  RecordProperty("max_staleness", static_cast<int>(observed));
}

TEST(BulkSynchronous, NoStalenessEvenWithAStraggler) {
  const TrainResult r =
      train_on(diabetes(), 3, with_strategy(straggler_config(), master_worker(2, "bsp")));
  for (const EpochReport& report : r.history) {
    for (const WorkerStats& w : report.workers) EXPECT_EQ(w.max_staleness, 0u) << w.rank;
  }
}

// ---- convergence of every strategy --------------------------------------------

class DiabetesConvergence : public ::testing::TestWithParam<Strategy> {};

TEST_P(DiabetesConvergence, ReachesTheLeastSquaresOptimumWithinOnePercent) {
  TrainConfig c = diabetes_sgd(100);
  c.lr.kind = LrSchedule::Kind::kCosine;
  c.lr.total_epochs = c.epochs;
  const TrainResult r = train_on(diabetes(), 4, with_strategy(c, GetParam()));
  const double mse = train_mse(r);
  EXPECT_LE(mse, 1.01 * kDiabetesOptimalMse) << GetParam().label;
  RecordProperty("train_mse", std::to_string(mse));
  // No linear model does better than least squares on its training rows.
  EXPECT_GE(mse, kDiabetesOptimalMse * (1 - 1e-9)) << GetParam().label;
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, DiabetesConvergence,
                         ::testing::Values(peer_to_peer("bsp"), master_worker(2, "bsp"),
                                           master_worker(2, "asp"), master_worker(2, "ssp:2"),
                                           peer_to_peer("local:4"), peer_to_peer("local:inf"),
                                           peer_to_peer("gossip", Topology::kRing),
                                           peer_to_peer("gossip", Topology::kRandom)),
                         [](const ::testing::TestParamInfo<Strategy>& param_info) {
                           std::string name;
                           for (const char ch : param_info.param.label)
                             name += std::isalnum(ch) != 0 ? ch : '_';
                           return name;
                         });

// ---- replicas' disagreement ---------------------------------------------------

TEST(Gossip, DisagreementShrinksAsTheRateDecays) {
  TrainConfig c = diabetes_sgd(20);
  c.eval_every = 1;
  c.lr.kind = LrSchedule::Kind::kCosine;
  c.lr.total_epochs = c.epochs;
  const TrainResult r = train_on(diabetes(), 4, with_strategy(c, peer_to_peer("gossip")));
  ASSERT_EQ(r.history.size(), 20u);
  const double first = mean_disagreement(r.history.front());
  const double last = mean_disagreement(r.history.back());
  EXPECT_GT(first, 0.0);
  EXPECT_LT(last, first / 100) << "first " << first << ", last " << last;
  RecordProperty("disagreement_first", std::to_string(first));
  RecordProperty("disagreement_last", std::to_string(last));
  for (const WorkerStats& w : r.history.back().workers) EXPECT_TRUE(std::isfinite(w.disagreement));
}

TEST(LocalSgd, ReplicasDriftApartOnlyWithoutAveraging) {
  TrainConfig c = diabetes_sgd(5);
  c.eval_every = 1;
  const TrainResult every_step = train_on(diabetes(), 4, with_strategy(c, peer_to_peer("local:1")));
  const TrainResult never = train_on(diabetes(), 4, with_strategy(c, peer_to_peer("local:inf")));
  const double averaged = mean_disagreement(every_step.history.back());
  const double drifting = mean_disagreement(never.history.back());
  // local:1 averages after every step: the replicas are one model.
  RecordProperty("disagreement_local1", std::to_string(averaged));
  RecordProperty("disagreement_local_inf", std::to_string(drifting));
  EXPECT_LT(averaged, 1e-12);
  EXPECT_GT(drifting, 1e-3);
  EXPECT_GT(drifting, 1000 * averaged);
  // local:1 is bsp with the averaging after the update instead of before:
  // with plain SGD (linear in the gradient) and equal batches on every
  // worker (221 rows each on two workers) the mean of the updated replicas
  // is the bsp update.
  c.optimizer.kind = OptimizerKind::kSgd;
  const TrainResult local1 = train_on(diabetes(), 2, with_strategy(c, peer_to_peer("local:1")));
  const TrainResult bsp = train_on(diabetes(), 2, c);
  expect_relative(local1.params, bsp.params, 1e-9, "local:1 vs bsp, plain SGD");
}

// ---- parameter-server traffic ---------------------------------------------------

TEST(ParameterServerTraffic, EachServerReceivesItsShareOfTheGradientBytes) {
  constexpr std::size_t kFeatures = 200, kClasses = 10, kWorkers = 4, kBatch = 32, kSteps = 10;
  const Dataset data = blobs(kWorkers * kBatch * kSteps, kFeatures, kClasses, 5);
  TrainConfig c;
  c.model = ModelKind::kSoftmax;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = kBatch;
  c.epochs = 2;
  c.eval_every = 1;
  c.lr.base = 0.05;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.train_metrics = false;
  constexpr std::size_t kParams = kFeatures * kClasses + kClasses;
  // Each worker pushes every step and once more to end the epoch (a message
  // as long as a push): float gradients, plus a small header per message.
  const double gradient_bytes =
      static_cast<double>(kWorkers * (kSteps + 1) * kParams * sizeof(float));
  for (const int servers : {1, 2, 4}) {
    const TrainResult r = train_on(data, kWorkers, with_strategy(c, master_worker(servers, "bsp")));
    EXPECT_EQ(r.params.size(), kParams);
    ASSERT_EQ(r.history.size(), 2u);
    for (const EpochReport& report : r.history) {
      double received_by_servers = 0.0;
      double sent_by_workers = 0.0;
      for (const WorkerStats& w : report.workers) {
        (w.server ? received_by_servers : sent_by_workers) +=
            static_cast<double>(w.server ? w.bytes_received : w.bytes_sent);
      }
      EXPECT_EQ(received_by_servers, sent_by_workers) << servers << " servers";
      EXPECT_GE(received_by_servers, gradient_bytes) << servers << " servers";
      EXPECT_LE(received_by_servers, 1.1 * gradient_bytes) << servers << " servers";
      for (const WorkerStats& w : report.workers) {
        if (!w.server) continue;
        const double share = static_cast<double>(w.bytes_received) / received_by_servers;
        RecordProperty("share_" + std::to_string(servers) + "_servers_rank" +
                           std::to_string(w.rank) + "_epoch" + std::to_string(report.epoch),
                       std::to_string(share));
        EXPECT_NEAR(share, 1.0 / servers, 0.1 / servers)
            << "server " << w.rank << " of " << servers << ", epoch " << report.epoch;
      }
    }
  }
}

// ---- Fashion-MNIST -------------------------------------------------------------

struct FashionRun {
  Strategy strategy;
  double lr = 0.05;
  int epochs = 15;
};

// Loads Fashion-MNIST once on `workers` training ranks (plus `servers`
// parameter servers) as `dtrain train` does, then trains every run in turn.
// Returns each run's final test accuracy.
std::vector<double> fashion_mnist_accuracies(int workers, int servers,
                                             const std::vector<FashionRun>& runs) {
  const auto train_files = resolve_dataset_shortcut("fashion-mnist:train");
  const auto test_files = resolve_dataset_shortcut("fashion-mnist:test");
  std::vector<double> accuracies(runs.size(), 0.0);
  ThreadsOptions opts;
  opts.workers = workers + servers;
  run_threads(opts, [&](Communicator& comm) {
    LoadOptions load;
    load.format = FileFormat::kIdx;
    load.labels_path = train_files->labels;
    const Dataset shard = load_partitioned(comm, train_files->features, load,
                                           OffsetPartitioner(std::make_unique<RangePartitioner>(),
                                                             static_cast<std::uint32_t>(servers)));
    load.labels_path = test_files->labels;
    const Dataset test = load_partitioned(comm, test_files->features, load, RangePartitioner{});
    for (std::size_t i = 0; i < runs.size(); ++i) {
      TrainConfig c;
      c.model = ModelKind::kSoftmax;
      c.batch_mode = BatchMode::kMiniBatch;
      c.batch_size = 128;
      c.epochs = runs[i].epochs;
      c.eval_every = runs[i].epochs;
      c.lr.base = runs[i].lr;
      c.lr.kind = LrSchedule::Kind::kCosine;
      c.lr.total_epochs = c.epochs;
      c.optimizer.kind = OptimizerKind::kMomentum;
      c.optimizer.momentum = 0.9;
      c.train_metrics = false;
      const TrainResult r = train(comm, shard, &test, with_strategy(c, runs[i].strategy));
      if (comm.rank() == 0) {
        EXPECT_EQ(r.test_rows, 10000u);
        EXPECT_EQ(r.train_rows, 60000u);
        accuracies[i] = r.history.back().test.value().at("accuracy");
      }
    }
  });
  return accuracies;
}

TEST(FashionMnist, SoftmaxReaches84PercentUnderEveryStrategy) {
  const std::vector<FashionRun> peer_runs{
      {peer_to_peer("bsp")},
      {peer_to_peer("local:4")},
      {peer_to_peer("local:inf")},
      {peer_to_peer("gossip", Topology::kRing)},
      {peer_to_peer("gossip", Topology::kRandom)},
  };
  // ASP applies each worker's batch as an update of its own: twice the
  // updates of BSP on two workers, so half the rate. Stale gradients slow
  // the asynchronous runs down: they get more epochs (measured: asp
  // 0.8448-0.8449, ssp:1 0.8449-0.8452; ssp:2 reaches only 0.8419-0.8431 in
  // 25 epochs, too close to the bar for a reliable assertion, since the
  // asynchronous runs vary with thread timing).
  const std::vector<FashionRun> server_runs{
      {master_worker(1, "bsp")},
      {master_worker(1, "asp"), 0.025, 25},
      {master_worker(1, "ssp:1"), 0.05, 25},
  };
  const auto peer = fashion_mnist_accuracies(2, 0, peer_runs);
  const auto server = fashion_mnist_accuracies(2, 1, server_runs);
  for (std::size_t i = 0; i < peer_runs.size(); ++i) {
    EXPECT_GE(peer[i], 0.84) << peer_runs[i].strategy.label;
    RecordProperty("accuracy_" + peer_runs[i].strategy.label, std::to_string(peer[i]));
  }
  for (std::size_t i = 0; i < server_runs.size(); ++i) {
    EXPECT_GE(server[i], 0.84) << server_runs[i].strategy.label;
    RecordProperty("accuracy_" + server_runs[i].strategy.label, std::to_string(server[i]));
  }
  // Master-worker BSP is peer-to-peer BSP: the same model, the same accuracy.
  EXPECT_EQ(server[0], peer[0]);
}

}  // namespace
}  // namespace dtrain
