#include "dtrain/train/trainer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <thread>
#include <type_traits>

#include "dtrain/data/partition.h"
#include "dtrain/error.h"
#include "dtrain/sync/parameter_server.h"
#include "dtrain/sync/strategy.h"
#include "dtrain/train/balance.h"
#include "dtrain/util/aligned_vector.h"

namespace dtrain {

bool is_test_row(std::uint64_t row_id, std::uint64_t seed, double test_fraction) {
  if (test_fraction <= 0.0) return false;
  // 53 uniformly distributed bits -> [0, 1).
  const std::uint64_t h = mix64(seed ^ mix64(row_id));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return u < test_fraction;
}

double slow_factor(const TrainConfig& config, int worker) {
  double factor = 1.0;
  for (const auto& [slowed, f] : config.slow) {
    if (slowed == worker) factor = f;
  }
  return factor;
}

bool takes_sparse_steps(const TrainConfig& config) {
  return config.sparse_steps && config.model == ModelKind::kSparseLogistic &&
         config.batch_mode == BatchMode::kMiniBatch && config.schedule == Schedule::kPeerToPeer &&
         config.sync.kind == SyncSpec::Kind::kBsp &&
         Updater<double>(config.optimizer, config.l2, {}, config.clip_norm).skips_zero_gradients();
}

// Row indices are shuffled by the shared seeded_shuffle, which takes 64-bit
// items.
static_assert(std::is_same_v<std::size_t, std::uint64_t>);

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void validate(const TrainConfig& c) {
  if (c.epochs < 1) throw ConfigError("--epochs must be at least 1");
  if (c.batch_mode == BatchMode::kMiniBatch && c.batch_size < 1) {
    throw ConfigError("--batch-size must be at least 1");
  }
  if (!(c.lr.base > 0.0) || !std::isfinite(c.lr.base)) {
    throw ConfigError("--lr must be a positive number");
  }
  c.lr.validate();
  c.optimizer.validate();
  if (!(c.clip_norm >= 0.0) || !std::isfinite(c.clip_norm)) {
    throw ConfigError("--clip-norm must be >= 0");
  }
  if (!(c.l2 >= 0.0) || !std::isfinite(c.l2)) throw ConfigError("--l2 must be >= 0");
  if (!(c.test_fraction >= 0.0 && c.test_fraction < 1.0)) {
    throw ConfigError("--test-fraction must be in [0, 1)");
  }
  if (!(c.tol >= 0.0)) throw ConfigError("--tol must be >= 0");
  if (c.eval_every < 1) throw ConfigError("--eval-every must be at least 1");
  if (c.top_k < 1) throw ConfigError("--top-k must be at least 1");
  if (c.balance && (c.batch_mode != BatchMode::kMiniBatch || c.schedule != Schedule::kPeerToPeer ||
                    c.sync.kind != SyncSpec::Kind::kBsp)) {
    throw ConfigError(
        "--balance splits the mini-batches of p2p bsp; it needs a mini-batch optimizer, "
        "--schedule p2p and --sync bsp");
  }
}

// The model's metrics over `rows` of every worker.
template <class T>
Metrics evaluate_rows(Communicator& comm, TrainableModel<T>& model, std::span<const T> params,
                      const Dataset& data, std::span<const std::size_t> rows, std::size_t top_k) {
  const ModelArchitecture& arch = model.architecture();
  const std::size_t width = arch.output_width();
  std::vector<double> outputs(rows.size() * width);
  model.predict(params, data, rows, outputs);
  std::vector<float> labels(rows.size());
  const auto all_labels = data.labels();
  for (std::size_t i = 0; i < rows.size(); ++i) labels[i] = all_labels[rows[i]];
  return compute_metrics(comm, task_for(arch.output_kind()), width, outputs, labels, top_k);
}

// The same rows in CSR form, zeros dropped.
Dataset to_csr(const Dataset& dense) {
  Dataset sparse = Dataset::sparse(dense.cols());
  sparse.set_feature_names(dense.feature_names());
  sparse.set_label_name(dense.label_name());
  const auto labels = dense.labels();
  const auto ids = dense.row_ids();
  std::vector<std::uint32_t> indices;
  std::vector<float> values;
  for (std::size_t r = 0; r < dense.rows(); ++r) {
    const auto x = dense.row(r).dense;
    indices.clear();
    values.clear();
    for (std::size_t j = 0; j < x.size(); ++j) {
      if (x[j] != 0.0f) {
        indices.push_back(static_cast<std::uint32_t>(j));
        values.push_back(x[j]);
      }
    }
    sparse.add_sparse_row(indices, values, labels[r], ids[r]);
  }
  return sparse;
}

// What train() prepares before the loop, independent of the parameter type.
struct Setup {
  const Dataset* data = nullptr;  // standardised if asked
  const Dataset* test_data = nullptr;
  std::vector<std::size_t> train_rows;
  std::vector<std::size_t> test_rows;  // rows of *test_data
  std::uint64_t global_train_rows = 0;
  std::uint64_t global_test_rows = 0;
  int servers = 0;  // master-worker: ranks [0, servers) are parameter servers
};

// Sleeps for `seconds` (nothing for <= 0).
void sleep_for_seconds(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

// Gathers every rank's counters (and disagreement) on every rank, in rank
// order.
std::vector<WorkerStats> gather_worker_stats(Communicator& comm, const SyncCounters& c, bool server,
                                             double disagreement, double rows) {
  constexpr std::size_t kFields = 10;
  const std::vector<double> mine{server ? 1.0 : 0.0,
                                 c.compute_s,
                                 c.comm_s,
                                 c.wait_s,
                                 static_cast<double>(c.bytes_sent),
                                 static_cast<double>(c.bytes_received),
                                 static_cast<double>(c.max_staleness),
                                 c.mean_staleness(),
                                 disagreement,
                                 rows};
  std::vector<double> all(kFields * static_cast<std::size_t>(comm.size()));
  comm.allgather(std::span<const double>(mine), std::span<double>(all));
  std::vector<WorkerStats> stats(static_cast<std::size_t>(comm.size()));
  for (std::size_t r = 0; r < stats.size(); ++r) {
    const double* f = all.data() + r * kFields;
    WorkerStats& w = stats[r];
    w.rank = static_cast<int>(r);
    w.server = f[0] != 0.0;
    w.compute_s = f[1];
    w.comm_s = f[2];
    w.wait_s = f[3];
    w.bytes_sent = static_cast<std::uint64_t>(f[4]);
    w.bytes_received = static_cast<std::uint64_t>(f[5]);
    w.max_staleness = static_cast<std::uint64_t>(f[6]);
    w.mean_staleness = f[7];
    w.disagreement = f[8];
    w.rows = static_cast<std::uint64_t>(f[9]);
  }
  return stats;
}

// The mean of the replicas into `mean`, and this replica's distance from it
// relative to the mean's norm. Collective over every rank.
template <class T>
double mean_and_disagreement(Communicator& comm, std::span<const T> params, std::vector<T>& mean) {
  mean.assign(params.begin(), params.end());
  comm.allreduce(std::span<T>(mean), ReduceOp::kSum);
  const T inv = static_cast<T>(1.0 / comm.size());
  double distance2 = 0.0;
  double norm2 = 0.0;
  for (std::size_t j = 0; j < mean.size(); ++j) {
    mean[j] *= inv;
    const double d = static_cast<double>(params[j]) - static_cast<double>(mean[j]);
    distance2 += d * d;
    norm2 += static_cast<double>(mean[j]) * static_cast<double>(mean[j]);
  }
  return std::sqrt(distance2) / std::max(std::sqrt(norm2), 1e-300);
}

template <class T>
void run_loop(Communicator& comm, const TrainConfig& config, const Setup& setup,
              TrainableModel<T>& model, TrainResult& result, Clock::time_point start,
              const std::function<void(const EpochReport&)>& on_report) {
  const Dataset& data = *setup.data;
  const std::size_t num_params = model.num_params();
  AlignedVector<T> params(num_params);
  model.init(params, config.seed, config.init);

  // Roles: under master-worker the first `servers` ranks own the
  // parameters; every other rank trains.
  const int servers = setup.servers;
  const bool is_server = comm.rank() < servers;
  const int worker_index = comm.rank() - servers;
  std::unique_ptr<PsServer<T>> server;
  std::unique_ptr<SyncStrategy<T>> strategy;
  if (config.schedule == Schedule::kMasterWorker) {
    PsConfig ps;
    ps.servers = servers;
    ps.mode = config.sync.kind == SyncSpec::Kind::kAsp   ? PsMode::kAsp
              : config.sync.kind == SyncSpec::Kind::kSsp ? PsMode::kSsp
                                                         : PsMode::kBsp;
    ps.staleness = config.sync.staleness;
    ps.optimizer = config.optimizer;
    ps.l2 = config.l2;
    ps.penalized = model.penalized_ranges();
    ps.num_params = num_params;
    if (is_server) {
      server = std::make_unique<PsServer<T>>(comm, ps, std::span<const T>(params));
    } else {
      strategy = make_ps_worker_strategy<T>(comm, ps);
    }
  } else {
    strategy = make_peer_strategy<T>(
        config.sync, config.topology, config.seed,
        std::make_unique<Updater<T>>(config.optimizer, config.l2, model.penalized_ranges(),
                                     config.clip_norm));
  }
  const bool replicas_differ = strategy != nullptr && strategy->replicas_differ();
  const double slowness = is_server ? 1.0 : slow_factor(config, worker_index);

  // One buffer per step: [gradient sums (P), two slots for the strategy].
  AlignedVector<T> sums(num_params + 2);
  auto grad = std::span<T>(sums).first(num_params);
  // Sparse steps touch O(non-zeros of the batch) entries of it, not O(P).
  const bool sparse_steps = takes_sparse_steps(config) && model.sparse_gradient() &&
                            strategy != nullptr && strategy->takes_sparse_steps();
  std::vector<std::size_t> touched;

  // Mini-batch: every worker takes the same number of steps per epoch (the
  // largest shard decides); a worker whose rows run out contributes empty
  // batches, so each row is still seen exactly once per epoch.
  std::uint64_t steps_per_epoch = 1;
  const auto workers = static_cast<std::size_t>(comm.size() - servers);
  if (config.batch_mode == BatchMode::kMiniBatch) {
    steps_per_epoch = (setup.train_rows.size() + config.batch_size - 1) / config.batch_size;
    comm.allreduce(std::span<std::uint64_t>(&steps_per_epoch, 1), ReduceOp::kMax);
  }
  // Balanced batches: an epoch is as many global batches as the global rows
  // fill, and each step's global batch is split so that the workers' compute
  // times even out (balance.h). Every worker gets every worker's time and
  // row count of each step, so all agree on the split.
  std::optional<RowStream> stream;
  std::optional<BatchBalancer> balancer;
  std::vector<double> step_times(2 * workers, 0.0);  // [seconds, rows] per worker
  std::vector<double> worker_seconds(workers, 0.0);
  std::vector<double> worker_rows(workers, 0.0);
  if (config.balance) {
    const std::size_t global_batch = config.batch_size * workers;
    steps_per_epoch = (setup.global_train_rows + global_batch - 1) / global_batch;
    stream.emplace(setup.train_rows, config.seed, static_cast<std::uint64_t>(worker_index));
    const double mine = setup.train_rows.empty() ? 0.0 : 1.0;
    std::vector<double> holds(workers, 0.0);
    comm.allgather(std::span<const double>(&mine, 1), std::span<double>(holds));
    std::vector<bool> has_rows(workers);
    for (std::size_t r = 0; r < workers; ++r) has_rows[r] = holds[r] != 0.0;
    // A quarter of a worker's batch at least: a slow worker keeps taking
    // part, and keeps being measured.
    balancer.emplace(global_batch, std::max<std::size_t>(1, config.batch_size / 4),
                     std::move(has_rows));
  }
  LrSchedule schedule = config.lr;
  if (config.batch_mode == BatchMode::kMiniBatch) {
    schedule.base = scaled_learning_rate(config.lr.base, config.lr_scaling,
                                         config.batch_size * workers, config.batch_size);
  }

  std::vector<std::size_t> order = setup.train_rows;
  std::vector<T> eval_params;
  double previous_loss = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t global_step = 0;
  for (int epoch = 0; epoch < config.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    SyncCounters counters;
    if (config.batch_mode == BatchMode::kMiniBatch && !stream) {
      order = setup.train_rows;
      seeded_shuffle(order, pass_seed(config.seed, static_cast<std::uint64_t>(epoch),
                                      static_cast<std::uint64_t>(worker_index)));
    }
    // [loss sum, penalty x rows, rows] of this worker's steps.
    std::vector<double> totals(3, 0.0);
    double lr = schedule.at_step(epoch, 0, steps_per_epoch);
    if (is_server) {
      server->serve_epoch(counters);
    } else {
      for (std::uint64_t step = 0; step < steps_per_epoch; ++step, ++global_step) {
        std::span<const std::size_t> batch(order);
        if (stream) {
          batch = stream->take(balancer->shares()[static_cast<std::size_t>(worker_index)]);
        } else if (config.batch_mode == BatchMode::kMiniBatch) {
          const std::size_t begin = std::min(order.size(), step * config.batch_size);
          const std::size_t end = std::min(order.size(), begin + config.batch_size);
          batch = batch.subspan(begin, end - begin);
        }
        const auto compute_start = Clock::now();
        double local_loss = 0.0;
        if (sparse_steps) {
          // The strategy wrote nothing; the last step's batch set only these.
          for (const std::size_t j : touched) sums[j] = T{0};
          model.touched_params(data, batch, touched);
          local_loss = model.accumulate_gradient(params, data, batch, grad);
        } else {
          local_loss = model.compute_gradient(params, data, batch, grad);
        }
        // Injected slowness stretches this worker's compute time.
        sleep_for_seconds((slowness - 1.0) * seconds_since(compute_start));
        if (config.random_delay_ms > 0) {
          const std::uint64_t h =
              mix64(config.seed ^
                    mix64(global_step * 0x10001ULL + static_cast<std::uint64_t>(worker_index)));
          sleep_for_seconds(static_cast<double>(h >> 11) * 0x1.0p-53 * config.random_delay_ms *
                            1e-3);
        }
        const double compute_seconds = seconds_since(compute_start);
        counters.compute_s += compute_seconds;
        if (balancer) {
          auto t0 = Clock::now();
          const std::array<double, 2> mine{compute_seconds, static_cast<double>(batch.size())};
          comm.allgather(std::span<const double>(mine), std::span<double>(step_times));
          counters.wait_s += seconds_since(t0);
          for (std::size_t r = 0; r < workers; ++r) {
            worker_seconds[r] = step_times[2 * r];
            worker_rows[r] = step_times[2 * r + 1];
          }
          balancer->update(worker_seconds, worker_rows);
        }
        lr = schedule.at_step(epoch, step, steps_per_epoch);
        LocalStep<T> local;
        local.grad = std::span<T>(sums);
        local.loss = local_loss;
        local.rows = static_cast<double>(batch.size());
        local.lr = lr;
        local.step = global_step;
        local.sparse = sparse_steps;
        local.touched = touched;
        const double penalty = strategy->step(comm, params, local, counters);
        totals[0] += local_loss;
        totals[1] += penalty * static_cast<double>(batch.size());
        totals[2] += static_cast<double>(batch.size());
      }
      strategy->end_epoch(comm, params, counters);
    }
    // Master-worker: the servers' ranges, gathered by every worker at the
    // end of the epoch, reach the servers too (for evaluation and the model).
    if (servers > 0) comm.broadcast(std::span<T>(params), servers);
    const double step_seconds = seconds_since(epoch_start);
    const double my_rows = totals[2];
    comm.allreduce(std::span<double>(totals), ReduceOp::kSum);
    const double rows_seen = totals[2];
    const double loss = (totals[0] + totals[1]) / rows_seen;
    result.epochs_run = epoch + 1;

    const bool converged =
        config.tol > 0 && std::isfinite(previous_loss) &&
        std::abs(loss - previous_loss) <= config.tol * std::max(1.0, std::abs(previous_loss));
    if (!std::isfinite(loss)) {
      throw Error("training diverged at epoch " + std::to_string(epoch + 1) + " (loss is " +
                  std::to_string(loss) + "); lower --lr" +
                  (config.standardize ? "" : " or --standardize"));
    }
    previous_loss = loss;
    const bool last = converged || epoch + 1 == config.epochs;
    if ((epoch + 1) % config.eval_every == 0 || last) {
      EpochReport report;
      report.epoch = epoch + 1;
      report.loss = loss;
      report.lr = lr;
      report.epoch_seconds = step_seconds;
      report.samples_per_s = step_seconds > 0 ? rows_seen / step_seconds : 0.0;
      // Replicas that may differ are evaluated as their mean, the model a
      // final averaging would give.
      std::span<const T> p(params);
      double disagreement = std::numeric_limits<double>::quiet_NaN();
      if (replicas_differ) {
        disagreement = mean_and_disagreement<T>(comm, params, eval_params);
        p = eval_params;
      }
      if (config.train_metrics) {
        report.train = evaluate_rows<T>(comm, model, p, data, setup.train_rows, config.top_k);
      }
      if (setup.global_test_rows > 0) {
        report.test =
            evaluate_rows<T>(comm, model, p, *setup.test_data, setup.test_rows, config.top_k);
      }
      report.workers = gather_worker_stats(comm, counters, is_server, disagreement, my_rows);
      report.elapsed_seconds = seconds_since(start);
      if (comm.rank() == 0 && on_report) on_report(report);
      result.history.push_back(std::move(report));
    }
    if (converged) {
      result.stopped_early = true;
      break;
    }
  }
  if (strategy) {
    SyncCounters ignored;
    strategy->finish(comm, params, ignored);
  }
  result.params.assign(params.begin(), params.end());
}

}  // namespace

TrainResult train(Communicator& comm, const Dataset& shard, const TrainConfig& config,
                  const std::function<void(const EpochReport&)>& on_report) {
  return train(comm, shard, nullptr, config, on_report);
}

TrainResult train(Communicator& comm, const Dataset& shard, const Dataset* test_shard,
                  const TrainConfig& config,
                  const std::function<void(const EpochReport&)>& on_report) {
  validate(config);
  if (test_shard != nullptr && config.test_fraction > 0) {
    throw ConfigError("a separate test set and --test-fraction exclude each other");
  }
  const auto start = Clock::now();
  Setup setup;
  config.sync.check_schedule(config.schedule);
  if (config.schedule == Schedule::kMasterWorker) {
    setup.servers = config.servers;
    if (config.servers < 1 || config.servers >= comm.size()) {
      throw ConfigError("master-worker needs 1 <= --servers < ranks (" +
                        std::to_string(comm.size()) + " ranks, " + std::to_string(config.servers) +
                        " servers)");
    }
    if (config.clip_norm > 0) {
      throw ConfigError(
          "--clip-norm needs the whole gradient, which master-worker servers never "
          "see (each holds a slice); use --schedule p2p");
    }
    if (comm.rank() < config.servers && shard.rows() > 0) {
      throw ConfigError("rank " + std::to_string(comm.rank()) +
                        " is a parameter server but holds " + std::to_string(shard.rows()) +
                        " training rows");
    }
  }
  for (const auto& [worker, factor] : config.slow) {
    if (worker < 0 || worker >= comm.size() - setup.servers || !(factor >= 1.0)) {
      throw ConfigError("--slow " + std::to_string(worker) + ":" + std::to_string(factor) +
                        ": needs a worker index below " +
                        std::to_string(comm.size() - setup.servers) + " and a factor >= 1");
    }
  }
  if (!(config.random_delay_ms >= 0.0)) throw ConfigError("--random-delay must be >= 0");

  // ---- split this worker's rows into train and test ----------------------
  const auto ids = shard.row_ids();
  for (std::size_t r = 0; r < shard.rows(); ++r) {
    (is_test_row(ids[r], config.seed, config.test_fraction) ? setup.test_rows : setup.train_rows)
        .push_back(r);
  }
  if (test_shard != nullptr) {
    setup.test_rows.resize(test_shard->rows());
    std::iota(setup.test_rows.begin(), setup.test_rows.end(), std::size_t{0});
  }
  // [train rows, test rows] over all workers, and the widest feature count
  // (LibSVM shards need not mention the last column) and the largest label.
  std::vector<std::uint64_t> counts{setup.train_rows.size(), setup.test_rows.size()};
  comm.allreduce(std::span<std::uint64_t>(counts), ReduceOp::kSum);
  std::uint64_t cols = shard.cols();
  if (test_shard != nullptr) cols = std::max<std::uint64_t>(cols, test_shard->cols());
  comm.allreduce(std::span<std::uint64_t>(&cols, 1), ReduceOp::kMax);
  if (cols != shard.cols() && !shard.is_sparse()) {
    throw InputError("rank " + std::to_string(comm.rank()) + ": shard has " +
                     std::to_string(shard.cols()) + " features, others have " +
                     std::to_string(cols));
  }
  if (counts[0] == 0)
    throw ConfigError("no training rows (empty data or --test-fraction too high)");
  setup.global_train_rows = counts[0];
  setup.global_test_rows = counts[1];

  TrainResult result;
  result.train_rows = counts[0];
  result.test_rows = counts[1];
  ModelArchitecture& arch = result.architecture;
  arch.kind = config.model;
  arch.features = cols;
  arch.hidden = config.hidden;
  arch.activation = config.activation;
  arch.loss = config.loss;
  if (arch.is_network()) {
    // Cross-entropy: as many classes as the largest label says, unless
    // given. Squared loss: one regression output unless a class count asks
    // for one-hot targets.
    arch.classes = config.classes;
    if (arch.classes == 0 && arch.loss == NetworkLoss::kSquared) arch.classes = 1;
    // Class labels: the largest training and test labels, in one allreduce,
    // give the class count when it is not given, and catch a label past it
    // (given by --classes, or derived from the training labels while the
    // test set has more) before training rather than in the loss or the
    // first evaluation. The readers have checked they are integers >= 0.
    if (arch.loss == NetworkLoss::kSoftmaxCrossEntropy || arch.classes >= 2) {
      std::array<double, 2> largest{0.0, 0.0};  // training, test
      for (const float y : shard.labels()) largest[0] = std::max(largest[0], double{y});
      if (test_shard != nullptr) {
        for (const float y : test_shard->labels()) largest[1] = std::max(largest[1], double{y});
      }
      comm.allreduce(std::span<double>(largest), ReduceOp::kMax);
      if (arch.classes == 0) arch.classes = static_cast<std::size_t>(largest[0]) + 1;
      const auto classes = static_cast<double>(arch.classes);
      const char* source = config.classes > 0 ? "--classes" : "the training labels";
      if (largest[0] >= classes || largest[1] >= classes) {
        const bool train_bad = largest[0] >= classes;
        char label[32];
        std::snprintf(label, sizeof label, "%g", train_bad ? largest[0] : largest[1]);
        throw InputError(std::string(train_bad ? "training" : "test") + " data: label " + label +
                         " is not a class id in [0, " + std::to_string(arch.classes) +
                         ") (the class count comes from " + source + ")");
      }
    }
  }
  arch.validate();

  // ---- features: optionally standardised with global statistics, and in
  // CSR form for the sparse model ------------------------------------------
  Dataset prepared;
  Dataset prepared_test;
  setup.data = &shard;
  setup.test_data = test_shard != nullptr ? test_shard : &shard;
  if (config.standardize) {
    result.standardizer = Standardizer::fit(comm, shard, setup.train_rows);
    prepared = result.standardizer.apply(shard);
    setup.data = &prepared;
    if (test_shard != nullptr) {
      prepared_test = result.standardizer.apply(*test_shard);
      setup.test_data = &prepared_test;
    } else {
      setup.test_data = &prepared;
    }
  }
  if (arch.kind == ModelKind::kSparseLogistic) {
    if (!setup.data->is_sparse()) {
      prepared = to_csr(*setup.data);
      setup.data = &prepared;
    }
    if (test_shard == nullptr) {
      setup.test_data = setup.data;
    } else if (!setup.test_data->is_sparse()) {
      prepared_test = to_csr(*setup.test_data);
      setup.test_data = &prepared_test;
    }
  }

  if (arch.is_network()) {
    const auto model = make_network_trainable<float>(arch);
    run_loop<float>(comm, config, setup, *model, result, start, on_report);
  } else {
    const auto model = make_linear_trainable(arch);
    run_loop<double>(comm, config, setup, *model, result, start, on_report);
  }
  return result;
}

}  // namespace dtrain
