// Synchronous data-parallel training (BSP).
//
// Every worker runs train() on its own shard (SPMD). Each step it computes the
// gradient of its rows, the sync strategy sums gradients over workers, and
// every worker applies the identical update, so replicas never diverge.
// Linear models train in double precision; networks (softmax, MLP) in float32,
// with their gradient moved by one float allreduce per step.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/data/dataset.h"
#include "dtrain/model/model.h"
#include "dtrain/model/standardizer.h"
#include "dtrain/model/trainable.h"
#include "dtrain/optim/optimizer.h"
#include "dtrain/sync/strategy.h"
#include "dtrain/train/metrics.h"

namespace dtrain {

enum class BatchMode {
  kFullBatch,  // "gd": one step per epoch over every training row
  kMiniBatch,  // "sgd": steps of batch_size rows per worker
};

struct TrainConfig {
  ModelKind model = ModelKind::kLinear;
  // Networks: hidden layer widths (mlp), their activation, the loss, the
  // initialisation and the class count (0: one more than the largest label
  // over all workers).
  std::vector<std::size_t> hidden;
  Activation activation = Activation::kRelu;
  NetworkLoss loss = NetworkLoss::kSoftmaxCrossEntropy;
  InitScheme init = InitScheme::kAuto;
  std::size_t classes = 0;
  BatchMode batch_mode = BatchMode::kFullBatch;
  int epochs = 100;
  std::size_t batch_size = 32;  // per worker, mini-batch only
  // The rate moves every step: lr.at(epoch + fraction of the epoch done).
  LrSchedule lr;
  // kLinear multiplies lr.base by the number of workers in mini-batch mode:
  // the global batch is workers x batch_size and the rate was tuned for one.
  LrScaling lr_scaling = LrScaling::kNone;
  OptimizerConfig optimizer;  // kind kSgd: plain (stochastic) gradient descent
  // Who coordinates and how updates combine (see dtrain/sync/strategy.h).
  // Master-worker: ranks [0, servers) are parameter servers and must hold no
  // training rows; the others train.
  Schedule schedule = Schedule::kPeerToPeer;
  int servers = 1;
  SyncSpec sync;
  Topology topology = Topology::kRing;  // gossip
  // Injected slowness: (worker index among the training ranks, factor >= 1)
  // stretches that worker's compute time by the factor; random_delay_ms adds
  // a uniform [0, ms) sleep to every worker's every step (seeded).
  std::vector<std::pair<int, double>> slow;
  double random_delay_ms = 0.0;
  double clip_norm = 0.0;  // > 0: clip the global gradient norm to this
  double l2 = 0.0;         // objective = mean loss + l2/2 * ||w||^2 (biases unpenalised)
  bool standardize = false;
  std::uint64_t seed = 1;
  double test_fraction = 0.0;
  // Stop when the training objective changes by at most tol * max(1, |loss|)
  // from one epoch to the next; 0 disables early stopping.
  double tol = 0.0;
  // Evaluate (and report) every this many epochs, and always at the last.
  int eval_every = 1;
  // Whether evaluations include metrics over the training rows (a forward
  // pass over the whole training set: cheap for linear models, a third of an
  // epoch's work for a network).
  bool train_metrics = true;
  // Multiclass metrics: top-k accuracy for this k (reported as "top<k>").
  std::size_t top_k = 5;
  // Sparse steps: when the model's gradient is sparse (sparse-logistic), the
  // batches are mini-batches, and the sync strategy takes sparse steps (p2p
  // bsp with sgd or adagrad, no L2, no clipping), each step clears, moves
  // and updates only the parameters its batches touch, with the same result
  // as a dense step bit for bit. false: always dense (for comparisons).
  bool sparse_steps = true;
  // Speed-balanced mini-batches (balance.h): p2p bsp only. An epoch is then
  // the global row count over workers x batch_size steps, and runs are not
  // reproducible bit for bit.
  bool balance = false;
};

// One rank's share of an epoch (see SyncCounters).
struct WorkerStats {
  int rank = 0;
  bool server = false;  // a master-worker parameter server
  double compute_s = 0.0;
  double comm_s = 0.0;
  double wait_s = 0.0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t rows = 0;  // training rows of this rank's batches
  std::uint64_t max_staleness = 0;
  double mean_staleness = 0.0;
  // Local SGD and gossip: distance of this replica from the replicas' mean,
  // relative to the mean's norm; NaN for strategies whose replicas agree.
  double disagreement = 0.0;
};

struct EpochReport {
  int epoch = 0;      // 1-based
  double loss = 0.0;  // training objective (mean over the epoch's steps for SGD)
  double lr = 0.0;
  double samples_per_s = 0.0;        // training rows per second of step time, all workers
  double epoch_seconds = 0.0;        // training steps only, evaluation excluded
  double elapsed_seconds = 0.0;      // since train() started, evaluations included
  std::optional<Metrics> train;      // when TrainConfig::train_metrics
  std::optional<Metrics> test;       // when there are test rows
  std::vector<WorkerStats> workers;  // every rank, in rank order
};

struct TrainResult {
  ModelArchitecture architecture;  // with the class count found in the labels
  // Networks' float32 parameters are widened (exactly) to double.
  std::vector<double> params;  // in the standardised space if standardize
  Standardizer standardizer;
  std::vector<EpochReport> history;  // evaluated epochs only
  int epochs_run = 0;
  bool stopped_early = false;
  std::uint64_t train_rows = 0;  // global
  std::uint64_t test_rows = 0;   // global
};

// How many times slower `worker` (an index among the training ranks) is
// made by config.slow: the last entry naming it, or 1.
double slow_factor(const TrainConfig& config, int worker);

// Whether train() takes sparse steps under this configuration (see
// TrainConfig::sparse_steps).
bool takes_sparse_steps(const TrainConfig& config);

// Whether the row with this global id belongs to the test split: decided by a
// hash of (seed, row id) alone, so the split is the same whatever the number
// of workers or the partitioning.
bool is_test_row(std::uint64_t row_id, std::uint64_t seed, double test_fraction);

// Collective. `on_report` is called on rank 0 only, after each evaluation.
TrainResult train(Communicator& comm, const Dataset& shard, const TrainConfig& config,
                  const std::function<void(const EpochReport&)>& on_report = {});

// The same with a separate test set (each worker passes its part; it may be
// empty on some): all of `test_shard`'s rows are test rows, and
// config.test_fraction must be 0.
TrainResult train(Communicator& comm, const Dataset& shard, const Dataset* test_shard,
                  const TrainConfig& config,
                  const std::function<void(const EpochReport&)>& on_report = {});

}  // namespace dtrain
