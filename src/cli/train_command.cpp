// dtrain train: load, partition, train on N workers, save the model; and
// dtrain compare: one job under several synchronisation strategies.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>

#include "commands.h"
#include "common.h"
#include "dtrain/comm/mpi.h"
#include "dtrain/comm/threads.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/shards.h"
#include "dtrain/error.h"
#include "dtrain/kernels/gemm.h"
#include "dtrain/train/trainer.h"
#include "dtrain/util/atomic_file.h"

namespace dtrain::cli {

namespace {

struct TrainOptions {
  DataRequest data;
  std::string test_data;
  std::string delimiter = ",";
  std::string model = "linear";
  std::vector<std::size_t> hidden;
  std::string activation = "relu";
  std::string loss = "cross-entropy";
  std::string init = "auto";
  std::size_t classes = 0;
  int workers = 1;
  bool workers_given = false;
  std::string backend = "auto";
  std::string partition = "range";
  std::vector<double> weights;
  bool measure_speed = false;
  std::string optimizer = "gd";
  int epochs = 100;
  std::size_t batch_size = 32;
  double lr = 0.01;
  std::string lr_schedule = "constant";
  int lr_step = 10;
  double lr_gamma = 0.5;
  double lr_min_factor = 0.0;
  double warmup_epochs = 0.0;
  std::string lr_scaling = "none";
  std::optional<double> momentum;
  bool nesterov = false;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double rmsprop_alpha = 0.99;
  double clip_norm = 0.0;
  std::optional<bool> train_metrics;
  std::size_t top_k = 5;
  int gemm_threads = 1;
  std::string schedule = "p2p";
  int servers = 1;
  std::string sync = "bsp";
  std::string topology = "ring";
  std::vector<std::string> slow;
  bool balance = false;
  double random_delay_ms = 0.0;
  // Called on rank 0 after each evaluation (dtrain compare collects them).
  std::function<void(const EpochReport&)> observer;
  double l2 = 0.0;
  bool standardize = false;
  std::uint64_t seed = 1;
  double test_fraction = 0.0;
  double tol = 0.0;
  int eval_every = 1;
  double comm_timeout_s = 300;
  std::string out;
  std::string metrics_out;
  bool quiet = false;
};

std::string format_line(const EpochReport& r, int epochs) {
  char head[128];
  std::snprintf(head, sizeof head, "epoch %*d/%d  loss %.6g",
                static_cast<int>(std::to_string(epochs).size()), r.epoch, epochs, r.loss);
  std::string line = head;
  if (r.train) line += "  train " + metrics_to_text(*r.train);
  if (r.test) line += "  test " + metrics_to_text(*r.test);
  char tail[64];
  std::snprintf(tail, sizeof tail, "  %.3g samples/s", r.samples_per_s);
  return line + tail;
}

nlohmann::json report_to_json(const EpochReport& r) {
  nlohmann::json j;
  j["epoch"] = r.epoch;
  j["loss"] = r.loss;
  j["lr"] = r.lr;
  j["samples_per_s"] = r.samples_per_s;
  j["epoch_s"] = r.epoch_seconds;
  j["elapsed_s"] = r.elapsed_seconds;
  // Flat keys ("test_accuracy") keep the file easy to plot; the confusion
  // matrix and per-class figures ride along as arrays.
  const auto add = [&j](const std::string& prefix, const Metrics& m) {
    j[prefix + "rows"] = m.rows;
    for (const auto& [name, value] : m.values) j[prefix + name] = json_number(value);
    if (m.classes > 0) {
      j[prefix + "confusion"] = m.confusion;
      j[prefix + "precision"] = json_numbers(m.precision);
      j[prefix + "recall"] = json_numbers(m.recall);
    }
  };
  if (r.train) add("train_", *r.train);
  if (r.test) add("test_", *r.test);
  // Per rank: where the time went, the bytes moved, the staleness seen and
  // (local SGD, gossip) how far the replica is from the replicas' mean.
  nlohmann::json workers = nlohmann::json::array();
  std::uint64_t max_staleness = 0;
  for (const WorkerStats& w : r.workers) {
    workers.push_back({{"rank", w.rank},
                       {"role", w.server ? "server" : "worker"},
                       {"rows", w.rows},
                       {"compute_s", w.compute_s},
                       {"comm_s", w.comm_s},
                       {"wait_s", w.wait_s},
                       {"bytes_sent", w.bytes_sent},
                       {"bytes_received", w.bytes_received},
                       {"max_staleness", w.max_staleness},
                       {"mean_staleness", w.mean_staleness},
                       {"disagreement", json_number(w.disagreement)}});
    max_staleness = std::max(max_staleness, w.max_staleness);
  }
  j["max_staleness"] = max_staleness;
  j["workers"] = std::move(workers);
  return j;
}

// --optimizer: "gd" is full-batch gradient descent (with --momentum, heavy
// ball; with --nesterov, Nesterov); every other name is an update rule
// applied to mini-batches of --batch-size rows per worker.
OptimizerConfig make_optimizer_config(const TrainOptions& o, BatchMode& batch_mode) {
  OptimizerConfig opt;
  const double momentum = o.momentum.value_or(0.0);
  if (o.optimizer == "gd") {
    batch_mode = BatchMode::kFullBatch;
    opt.kind = o.nesterov ? OptimizerKind::kNesterov
                          : (momentum > 0 ? OptimizerKind::kMomentum : OptimizerKind::kSgd);
    opt.momentum = o.nesterov ? o.momentum.value_or(0.9) : momentum;
  } else {
    batch_mode = BatchMode::kMiniBatch;
    try {
      opt.kind = parse_optimizer_kind(o.optimizer);
    } catch (const ConfigError&) {
      throw ConfigError(
          "unknown optimizer '" + o.optimizer +
          "' (expected gd, sgd, momentum, nesterov, adam, adamw, adagrad or rmsprop)");
    }
    if (opt.kind == OptimizerKind::kSgd && (momentum > 0 || o.nesterov)) {
      opt.kind = o.nesterov ? OptimizerKind::kNesterov : OptimizerKind::kMomentum;
    } else if (opt.kind == OptimizerKind::kMomentum && o.nesterov) {
      opt.kind = OptimizerKind::kNesterov;
    }
    opt.momentum = o.momentum.value_or(0.9);
  }
  opt.beta1 = o.beta1;
  opt.beta2 = o.beta2;
  opt.eps = o.eps;
  opt.weight_decay = o.weight_decay;
  opt.rmsprop_alpha = o.rmsprop_alpha;
  if (opt.weight_decay > 0 && opt.kind != OptimizerKind::kAdamW) {
    throw ConfigError("--weight-decay is AdamW's decoupled decay; use --l2 with " +
                      std::string(to_string(opt.kind)));
  }
  return opt;
}

// "WORKER:FACTOR", e.g. "2:3" (worker 2 three times slower).
std::pair<int, double> parse_slow(const std::string& text) {
  const auto colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument(text);
    std::size_t used = 0;
    const int worker = std::stoi(text.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument(text);
    const std::string factor_text = text.substr(colon + 1);
    const double factor = std::stod(factor_text, &used);
    if (used != factor_text.size()) throw std::invalid_argument(text);
    return {worker, factor};
  } catch (const std::logic_error&) {
    throw ConfigError("--slow '" + text + "': expected WORKER:FACTOR, e.g. 1:3");
  }
}

TrainConfig make_config(const TrainOptions& o) {
  TrainConfig config;
  config.model = parse_model_kind(o.model);
  config.hidden = o.hidden;
  config.activation = parse_activation(o.activation);
  config.loss = parse_network_loss(o.loss);
  config.init = parse_init_scheme(o.init);
  config.classes = o.classes;
  config.optimizer = make_optimizer_config(o, config.batch_mode);
  config.epochs = o.epochs;
  config.batch_size = o.batch_size;
  config.lr.kind = parse_lr_schedule(o.lr_schedule);
  config.lr.base = o.lr;
  config.lr.step_epochs = o.lr_step;
  config.lr.gamma = o.lr_gamma;
  config.lr.total_epochs = o.epochs;
  config.lr.min_factor = o.lr_min_factor;
  config.lr.warmup_epochs = o.warmup_epochs;
  config.lr_scaling = parse_lr_scaling(o.lr_scaling);
  config.clip_norm = o.clip_norm;
  config.l2 = o.l2;
  config.standardize = o.standardize;
  config.seed = o.seed;
  config.test_fraction = o.test_fraction;
  config.tol = o.tol;
  config.eval_every = o.eval_every;
  // A network's pass over the whole training set costs a third of an epoch;
  // linear models' is cheap and their train metrics are the usual report.
  const bool network = config.model == ModelKind::kSoftmax || config.model == ModelKind::kMlp;
  config.train_metrics = o.train_metrics.value_or(!network);
  config.top_k = o.top_k;
  config.schedule = parse_schedule(o.schedule);
  config.servers = o.servers;
  config.sync = SyncSpec::parse(o.sync);
  config.sync.check_schedule(config.schedule);
  config.topology = parse_topology(o.topology);
  for (const std::string& item : o.slow) config.slow.push_back(parse_slow(item));
  config.random_delay_ms = o.random_delay_ms;
  config.balance = o.balance;
  return config;
}

// Everything decided before any worker starts, identical on every worker.
struct Job {
  TrainConfig config;
  std::unique_ptr<Partitioner> partitioner;
  std::string data_path;  // the file, once a shortcut is resolved
  LoadOptions load;
  std::string test_path;  // empty: no separate test set
  LoadOptions test_load;
  bool from_shards = false;
  std::string backend;
  int workers = 1;
};

Job plan_job(TrainOptions& o, int workers, std::string backend) {
  Job job;
  job.config = make_config(o);
  if (!(o.comm_timeout_s > 0)) throw ConfigError("--comm-timeout must be positive");
  if (o.gemm_threads < 1) throw ConfigError("--gemm-threads must be at least 1");
  if (o.measure_speed && (o.partition != "range" || !o.weights.empty())) {
    throw ConfigError(
        "--measure-speed sizes range partitions itself: use it with --partition "
        "range and without --weights");
  }
  job.partitioner = make_partitioner(o.partition, o.seed, o.weights);
  if (job.config.schedule == Schedule::kMasterWorker) {
    if (o.servers < 1) throw ConfigError("--servers must be at least 1");
    if (o.data.key_column.empty()) {
      if (const auto* hash = dynamic_cast<const HashPartitioner*>(job.partitioner.get())) {
        o.data.key_column = hash->key_column();
      }
    }
    job.partitioner = std::make_unique<OffsetPartitioner>(std::move(job.partitioner),
                                                          static_cast<std::uint32_t>(o.servers));
  }
  job.backend = std::move(backend);
  job.workers = workers;
  o.data.delimiter = parse_delimiter(o.delimiter);
  o.data.label_kind = label_kind_for(job.config.model);
  if (const auto* hash = dynamic_cast<const HashPartitioner*>(job.partitioner.get())) {
    o.data.key_column = hash->key_column();
  }
  job.from_shards = is_shard_directory(o.data.path);
  if (job.from_shards && o.measure_speed) {
    throw ConfigError(
        "--measure-speed partitions the data itself; a shard directory is split "
        "already");
  }
  if (job.from_shards) {
    const ShardManifest manifest = read_manifest(o.data.path);
    job.data_path = o.data.path;
    job.load = load_options_for(o.data);
    job.load.format = parse_format(manifest.format);
  } else {
    DataRequest resolved = resolve_request(o.data);
    job.data_path = resolved.path;
    job.load = load_options_for(resolved);
  }
  if (!o.test_data.empty()) {
    if (o.test_fraction > 0) {
      throw ConfigError("--test-data and --test-fraction exclude each other");
    }
    // The test file is read like the training data (same columns and
    // format unless its name says otherwise), without a partitioning key.
    DataRequest test = o.data;
    test.path = o.test_data;
    test.key_column.clear();
    if (!o.data.format.empty() && resolve_dataset_shortcut(o.test_data)) test.format.clear();
    test.labels_path.clear();
    DataRequest resolved = resolve_request(test);
    job.test_path = resolved.path;
    job.test_load = load_options_for(resolved);
  }
  return job;
}

std::chrono::milliseconds timeout_of(const TrainOptions& o) {
  return std::chrono::milliseconds(static_cast<long long>(o.comm_timeout_s * 1000));
}

// Relative speed of every training rank, measured: each times a fixed
// amount of dense arithmetic (the kernels training runs on), stretched by
// its --slow factor as its training steps will be. Collective.
std::vector<double> measure_worker_speeds(Communicator& comm, const Job& job) {
  const int servers = job.config.schedule == Schedule::kMasterWorker ? job.config.servers : 0;
  double speed = 0.0;
  if (comm.rank() >= servers) {
    constexpr std::size_t n = 128;
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 40; ++i) {
      kernels::sgemm(kernels::Transpose::kNo, kernels::Transpose::kNo, n, n, n, 1.0f, a, n, b, n,
                     0.0f, c, n);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seconds *= slow_factor(job.config, comm.rank() - servers);
    speed = 1.0 / std::max(seconds, 1e-9);
  }
  std::vector<double> all(static_cast<std::size_t>(comm.size()));
  comm.allgather(std::span<const double>(&speed, 1), std::span<double>(all));
  return {all.begin() + servers, all.end()};
}

// One worker's whole job (SPMD): load its part of the data, train, and — on
// rank 0 — report progress and write the outputs.
void run_worker(Communicator& comm, const TrainOptions& o, const Job& job) {
  const bool lead = comm.rank() == 0;
  const auto t0 = std::chrono::steady_clock::now();

  // Check that the outputs can be written before the (possibly long) work,
  // so a bad path fails fast. Nothing stays open meanwhile: a job killed
  // mid-training (mpirun ends every rank when one dies) leaves no temporary
  // files behind. Metrics are kept in memory and written with the model.
  std::string metrics_lines;
  if (lead) {
    if (!o.metrics_out.empty()) AtomicFile{o.metrics_out};
    if (!o.out.empty()) AtomicFile{o.out, /*binary=*/true};
  }

  // --measure-speed: range shards sized by the speeds measured now.
  std::unique_ptr<Partitioner> measured;
  std::vector<double> speeds;
  if (o.measure_speed) {
    speeds = measure_worker_speeds(comm, job);
    measured = std::make_unique<RangePartitioner>(speeds);
    if (job.config.schedule == Schedule::kMasterWorker) {
      measured = std::make_unique<OffsetPartitioner>(
          std::move(measured), static_cast<std::uint32_t>(job.config.servers));
    }
  }
  const Partitioner& partitioner = measured ? *measured : *job.partitioner;
  // Master-worker: the servers (the first ranks) hold no rows, so shard k
  // goes to worker rank servers + k.
  const auto first_worker = static_cast<std::uint32_t>(
      job.config.schedule == Schedule::kMasterWorker ? job.config.servers : 0);
  const Dataset shard = job.from_shards
                            ? load_shard(comm, job.data_path, job.load, first_worker)
                            : load_partitioned(comm, job.data_path, job.load, partitioner);
  // The test set is only evaluated: contiguous ranges balance it best.
  std::optional<Dataset> test_shard;
  if (!job.test_path.empty()) {
    test_shard = load_partitioned(comm, job.test_path, job.test_load, RangePartitioner{});
  }
  std::uint64_t rows = shard.rows();
  comm.allreduce(std::span<std::uint64_t>(&rows, 1));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (lead && !o.quiet) {
    const bool master_worker = job.config.schedule == Schedule::kMasterWorker;
    const int servers = master_worker ? job.config.servers : 0;
    const std::string sync = master_worker
                                 ? "master-worker " + job.config.sync.to_string() + " with " +
                                       std::to_string(servers) + " server(s)"
                                 : "p2p " + job.config.sync.to_string() +
                                       (takes_sparse_steps(job.config) ? " (sparse steps)" : "");
    std::printf(
        "dtrain: %s model, %llu rows x %zu features from %s (loaded in %.3f s), %d "
        "worker(s) on %s, %s, %s, %s\n",
        to_string(job.config.model), static_cast<unsigned long long>(rows), shard.cols(),
        o.data.path.c_str(), load_seconds, comm.size() - servers, comm.backend().c_str(),
        job.from_shards ? "shard directory" : (job.partitioner->name() + " partitioning").c_str(),
        o.optimizer == "gd" ? "full-batch gd" : to_string(job.config.optimizer.kind), sync.c_str());
    std::fflush(stdout);
  }
  const auto on_report = [&](const EpochReport& r) {
    if (!o.quiet) {
      std::printf("%s\n", format_line(r, job.config.epochs).c_str());
      std::fflush(stdout);
    }
    if (!o.metrics_out.empty()) metrics_lines += report_to_json(r).dump() + '\n';
    if (o.observer) o.observer(r);
  };
  const TrainResult result =
      train(comm, shard, test_shard ? &*test_shard : nullptr, job.config, on_report);
  if (!lead || o.out.empty()) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  SavedModel model;
  const ModelArchitecture& arch = result.architecture;
  model.spec.kind = arch.kind;
  model.spec.num_features = arch.features;
  model.spec.classes = arch.classes;
  model.spec.hidden = arch.hidden;
  model.spec.activation = arch.activation;
  model.spec.loss = arch.loss;
  model.spec.feature_names = shard.feature_names();
  // Hashed CSV data names its columns; a narrower shard of a LibSVM file
  // does not know the widest's.
  // Hashed columns' bucket names ("hash[i]") say nothing a reader needs.
  if (model.spec.feature_names.size() != arch.features || job.load.csv.hash_dimension > 0) {
    model.spec.feature_names.clear();
  }
  model.spec.label_name = shard.label_name();
  model.spec.input_format = format_name(job.load.format);
  model.spec.hashed_columns = job.load.csv.hashed_columns;
  model.spec.hash_dimension = job.load.csv.hash_dimension;
  model.spec.l2 = job.config.l2;
  nlohmann::json training;
  training["data"] = o.data.path;
  training["backend"] = comm.backend();
  training["workers"] =
      comm.size() - (job.config.schedule == Schedule::kMasterWorker ? job.config.servers : 0);
  training["partition"] = job.from_shards ? "shards" : job.partitioner->name();
  if (!speeds.empty()) training["measured_speeds"] = speeds;
  training["optimizer"] = to_string(job.config.optimizer.kind);
  training["schedule"] = to_string(job.config.schedule);
  training["sync"] = job.config.sync.to_string();
  if (job.config.balance) training["balance"] = true;
  if (job.config.schedule == Schedule::kMasterWorker) training["servers"] = job.config.servers;
  training["batch_mode"] = job.config.batch_mode == BatchMode::kFullBatch ? "full" : "mini-batch";
  training["epochs_run"] = result.epochs_run;
  training["batch_size"] = o.batch_size;
  training["lr"] = o.lr;
  training["lr_schedule"] = o.lr_schedule;
  // Only the rules that read it: sgd, Adam and the others carry a default.
  const OptimizerKind rule = job.config.optimizer.kind;
  if (rule == OptimizerKind::kMomentum || rule == OptimizerKind::kNesterov) {
    training["momentum"] = job.config.optimizer.momentum;
  }
  training["lr_scaling"] = o.lr_scaling;
  training["warmup_epochs"] = o.warmup_epochs;
  training["clip_norm"] = o.clip_norm;
  if (!job.test_path.empty()) training["test_data"] = o.test_data;
  training["standardize"] = o.standardize;
  training["seed"] = o.seed;
  training["test_fraction"] = o.test_fraction;
  training["train_rows"] = result.train_rows;
  training["test_rows"] = result.test_rows;
  model.spec.training_json = training.dump();
  model.params = result.params;
  model.standardizer = result.standardizer;
  save_model(o.out, model);
  if (!o.metrics_out.empty()) {
    AtomicFile metrics(o.metrics_out);
    metrics.stream() << metrics_lines;
    metrics.commit();
  }

  if (!o.quiet) {
    const EpochReport& last = result.history.back();
    std::printf("done: %d epoch(s)%s in %.3f s; final loss %.9g\n", result.epochs_run,
                result.stopped_early ? " (converged: --tol reached)" : "", seconds, last.loss);
    if (last.train) {
      std::printf("train (%llu rows): %s\n", static_cast<unsigned long long>(last.train->rows),
                  metrics_to_text(*last.train).c_str());
    }
    if (last.test) {
      std::printf("test  (%llu rows): %s\n", static_cast<unsigned long long>(last.test->rows),
                  metrics_to_text(*last.test).c_str());
    }
    std::printf("model written to %s\n", o.out.c_str());
    if (!o.metrics_out.empty()) std::printf("metrics written to %s\n", o.metrics_out.c_str());
  }
}

void run_train_mpi(TrainOptions& o) {
  // Validate the options on every rank before MPI starts: a bad option then
  // gives each rank the same one-line error instead of an MPI abort.
  if (o.workers_given && o.workers < 1) throw ConfigError("--workers must be at least 1");
  MpiSession session;
  // Master-worker: mpirun starts the servers too (the first --servers ranks).
  const bool master_worker = o.schedule == "master-worker";
  const int trainers = session.world_size() - (master_worker ? o.servers : 0);
  if (o.workers_given && o.workers != trainers) {
    session.abort_job(
        "dtrain: --workers " + std::to_string(o.workers) +
            " (from the command line or config file) but mpirun started " +
            std::to_string(session.world_size()) + " processes" +
            (master_worker ? " for " + std::to_string(o.servers) + " server(s)" : std::string()) +
            " (leave --workers out under MPI)",
        2);
  }
  std::unique_ptr<Communicator> comm;
  try {
    const Job job = plan_job(o, session.world_size(), "mpi");
    MpiOptions mpi;
    mpi.timeout = timeout_of(o);
    comm = make_mpi_communicator(session, mpi);
    run_worker(*comm, o, job);
  } catch (const std::exception& e) {
    // The other ranks may be blocked in a collective, waiting for this one:
    // end the whole job rather than leave them to their timeout.
    session.abort_job("dtrain: rank " + std::to_string(session.world_rank()) + ": " + e.what(),
                      dynamic_cast<const ConfigError*>(&e) ? 2 : 1);
  }
  comm.reset();
}

void run_train_threads(TrainOptions& o) {
  if (o.workers < 1) throw ConfigError("--workers must be at least 1");
  const Job job = plan_job(o, o.workers, "threads");
  ThreadsOptions threads;
  // Master-worker: the servers are ranks of their own, besides the workers.
  threads.workers = o.workers + (job.config.schedule == Schedule::kMasterWorker ? o.servers : 0);
  threads.timeout = timeout_of(o);
  run_threads(threads, [&](Communicator& comm) { run_worker(comm, o, job); });
}

void run_train(TrainOptions& o) {
  if (o.gemm_threads < 1) throw ConfigError("--gemm-threads must be at least 1");
  kernels::set_gemm_threads(o.gemm_threads);
  if (o.backend == "mpi" || (o.backend == "auto" && launched_by_mpi())) {
    run_train_mpi(o);
  } else if (o.backend == "threads" || o.backend == "auto") {
    run_train_threads(o);
  } else {
    throw ConfigError("unknown backend '" + o.backend + "' (expected auto, threads or mpi)");
  }
}

// The options of train, which compare shares (all but the outputs).
void add_train_options(CLI::App* cmd, TrainOptions& o, bool outputs) {
  cmd->add_option("--data", o.data.path,
                  "Training data: a CSV (with header), LibSVM, IDX (optionally gzipped) or .npy "
                  "file, a directory written by dtrain partition (one shard per worker), or "
                  "fashion-mnist (Debian's dataset-fashion-mnist, train split)")
      ->required();
  cmd->add_option("--format", o.data.format,
                  "csv | libsvm | idx | npy (default: from the file name)");
  cmd->add_option("--labels", o.data.labels_path,
                  "IDX/npy: the labels file (IDX default: the images file's name with "
                  "labels-idx1 for images-idx3; npy default: the last column)");
  cmd->add_option("--test-data", o.test_data,
                  "A separate test set evaluated after each epoch (e.g. fashion-mnist:test)");
  cmd->add_option("--label", o.data.label,
                  "CSV label column: header name or 0-based index (default: last column)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter (one character or 'tab')")
      ->capture_default_str();
  cmd->add_option("--hash-columns", o.data.hashed_columns,
                  "CSV: categorical columns to feature-hash (makes the data sparse)")
      ->delimiter(',');
  cmd->add_option("--hash-dim", o.data.hash_dimension,
                  "Feature hashing: buckets shared by the hashed columns")
      ->capture_default_str();
  cmd->add_option("--model", o.model,
                  "linear (squared loss) | logistic (binary) | sparse-logistic (binary, CSR) | "
                  "softmax (multiclass) | mlp")
      ->required();
  cmd->add_option("--hidden", o.hidden, "mlp: hidden layer widths, e.g. 256,128")->delimiter(',');
  cmd->add_option("--activation", o.activation, "mlp hidden layers: relu | tanh | sigmoid")
      ->capture_default_str();
  cmd->add_option("--loss", o.loss,
                  "softmax/mlp: cross-entropy | squared (one output, or one-hot with --classes)")
      ->capture_default_str();
  cmd->add_option("--init", o.init,
                  "softmax/mlp weights: auto (He for relu, Xavier otherwise) | he | xavier | zero")
      ->capture_default_str();
  cmd->add_option("--classes", o.classes, "softmax/mlp: class count (default: largest label + 1)");
  cmd->add_option("--workers", o.workers,
                  "Number of workers (threads backend; under MPI one worker per process)")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.workers_given = true; });
  cmd->add_option("--backend", o.backend,
                  "auto (mpi when started by mpirun/srun, else threads) | threads | mpi")
      ->capture_default_str();
  cmd->add_option("--partition", o.partition,
                  "range | hash (by row id) | hash:COLUMN (by a CSV column's text) | shuffle")
      ->capture_default_str();
  cmd->add_option("--weights", o.weights,
                  "Range partitioning: relative capacity of each worker (one per worker)")
      ->delimiter(',');
  cmd->add_flag("--measure-speed", o.measure_speed,
                "Range partitioning weighted by each worker's measured speed (a short timing of "
                "the dense kernels, --slow included)");
  cmd->add_option("--optimizer", o.optimizer,
                  "gd (full-batch gradient descent) | mini-batch: sgd | momentum | nesterov | "
                  "adam | adamw | adagrad | rmsprop")
      ->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Passes over the training data")->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "Rows per worker per step (mini-batch)")
      ->capture_default_str();
  cmd->add_option("--lr", o.lr, "Learning rate")->capture_default_str();
  cmd->add_option("--lr-schedule", o.lr_schedule,
                  "constant | step (x gamma every --lr-step epochs) | inverse-sqrt "
                  "(lr/sqrt(1+epoch)) | cosine (to --lr-min-factor x lr at the last epoch)")
      ->capture_default_str();
  cmd->add_option("--lr-step", o.lr_step, "Epochs between decays (step schedule)")
      ->capture_default_str();
  cmd->add_option("--lr-gamma", o.lr_gamma, "Decay factor (step schedule)")->capture_default_str();
  cmd->add_option("--lr-min-factor", o.lr_min_factor, "Cosine schedule: final lr / lr")
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", o.warmup_epochs,
                  "Ramp the rate up linearly over this many epochs (fractions allowed)")
      ->capture_default_str();
  cmd->add_option("--lr-scaling", o.lr_scaling,
                  "none | linear (lr x workers: the global batch grows with the workers)")
      ->capture_default_str();
  cmd->add_option("--momentum", o.momentum,
                  "Momentum (momentum/nesterov: default 0.9; gd/sgd: default 0, >0 adds it)");
  cmd->add_flag("--nesterov", o.nesterov, "Nesterov momentum (with gd, sgd or momentum)");
  cmd->add_option("--beta1", o.beta1, "Adam/AdamW first-moment decay")->capture_default_str();
  cmd->add_option("--beta2", o.beta2, "Adam/AdamW second-moment decay")->capture_default_str();
  cmd->add_option("--eps", o.eps, "Adam/AdamW/RMSProp denominator epsilon")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      ->capture_default_str();
  cmd->add_option("--rmsprop-alpha", o.rmsprop_alpha, "RMSProp smoothing constant")
      ->capture_default_str();
  cmd->add_option("--clip-norm", o.clip_norm, "Clip the gradient's global L2 norm to this (0: off)")
      ->capture_default_str();
  cmd->add_option("--l2", o.l2,
                  "L2 strength X: objective = mean loss + X/2 * ||w||^2 (intercept not penalised)")
      ->capture_default_str();
  cmd->add_flag("--standardize", o.standardize,
                "Standardise features with statistics over all workers' training rows (stored "
                "with the model; sparse data is scaled, not centred)");
  cmd->add_option("--seed", o.seed, "Seed for the split, shuffling and partitioning")
      ->capture_default_str();
  cmd->add_option("--test-fraction", o.test_fraction,
                  "Fraction of rows held out for testing (chosen by a hash of seed and row id)")
      ->capture_default_str();
  cmd->add_option(
         "--tol", o.tol,
         "Stop early when the loss changes by <= tol * max(1, |loss|) between epochs (0: off)")
      ->capture_default_str();
  cmd->add_option("--eval-every", o.eval_every, "Evaluate and report every K epochs")
      ->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "Multiclass: report top-k accuracy for this k")
      ->capture_default_str();
  cmd->add_option("--train-metrics", o.train_metrics,
                  "Evaluate on the training rows too (default: true for linear models, false "
                  "for softmax/mlp, where it costs a forward pass over the data)");
  cmd->add_option("--schedule", o.schedule,
                  "p2p (no coordinator) | master-worker (--servers ranks own the model)")
      ->capture_default_str();
  cmd->add_option("--servers", o.servers,
                  "master-worker: parameter servers, extra ranks besides the workers")
      ->capture_default_str();
  cmd->add_option("--sync", o.sync,
                  "bsp | asp | ssp:S (master-worker) | local:H | local:inf | gossip (p2p)")
      ->capture_default_str();
  cmd->add_option("--topology", o.topology, "gossip neighbours: ring | random")
      ->capture_default_str();
  cmd->add_flag("--balance", o.balance,
                "p2p bsp: split each step's global batch between the workers by their measured "
                "speed (not reproducible bit for bit)");
  cmd->add_option("--slow", o.slow,
                  "WORKER:FACTOR: make a worker FACTOR times slower (repeatable)");
  cmd->add_option("--random-delay", o.random_delay_ms,
                  "Milliseconds: each worker sleeps a seeded uniform [0, ms) every step")
      ->capture_default_str();
  cmd->add_option("--gemm-threads", o.gemm_threads,
                  "Threads inside each worker's dense kernels (1: one core per worker)")
      ->capture_default_str();
  cmd->add_option("--comm-timeout", o.comm_timeout_s,
                  "Seconds a worker waits on its peers before the job fails")
      ->capture_default_str();
  if (outputs) {
    cmd->add_option("--out", o.out, "Model file to write")->required();
    cmd->add_option("--metrics-out", o.metrics_out,
                    "JSON-lines file: one object per evaluated epoch");
  }
  cmd->add_flag("--quiet", o.quiet, "No progress output");
}

// ---- dtrain compare ----------------------------------------------------------

// One entry of --strategies: "bsp" (peer-to-peer), "bsp-balance"
// (peer-to-peer bsp with --balance), "mw-bsp" (master-worker bsp), "asp"
// and "ssp:S" (master-worker), "local:H", "local:inf", "gossip" (ring) and
// "gossip-random".
struct StrategyChoice {
  std::string label;
  std::string schedule;
  std::string sync;
  std::string topology = "ring";
  bool balance = false;
};

StrategyChoice parse_strategy_choice(const std::string& item) {
  StrategyChoice c;
  c.label = item;
  if (item == "mw-bsp") {
    c.schedule = "master-worker";
    c.sync = "bsp";
  } else if (item == "bsp-balance") {
    c.schedule = "p2p";
    c.sync = "bsp";
    c.balance = true;
  } else if (item == "gossip-random") {
    c.schedule = "p2p";
    c.sync = "gossip";
    c.topology = "random";
  } else {
    c.sync = item;
    const SyncSpec spec = SyncSpec::parse(item);
    c.schedule = spec.kind == SyncSpec::Kind::kAsp || spec.kind == SyncSpec::Kind::kSsp
                     ? "master-worker"
                     : "p2p";
  }
  return c;
}

struct CompareOptions {
  TrainOptions train;
  std::vector<std::string> strategies;
  std::optional<double> target_loss;
  std::optional<double> target_accuracy;
  std::string curves_out;
};

struct StrategyRun {
  StrategyChoice choice;
  std::vector<EpochReport> reports;
  double wall_s = 0.0;
};

// The metric a run is judged by: test accuracy, else train accuracy, else
// train MSE (whichever the reports carry first).
std::pair<std::string, double> headline_metric(const EpochReport& r) {
  for (const auto* m : {r.test ? &*r.test : nullptr, r.train ? &*r.train : nullptr}) {
    if (m == nullptr) continue;
    for (const char* name : {"accuracy", "mse"}) {
      for (const auto& [key, value] : m->values) {
        if (key == name) return {std::string(m == &*r.test ? "test_" : "train_") + key, value};
      }
    }
  }
  return {"", std::numeric_limits<double>::quiet_NaN()};
}

// The loss a strategy is judged by: that of the evaluated model on the
// training rows (for local SGD and gossip, the replicas' mean, which is the
// model training ends with), not the running objective of the epoch, which
// for those strategies is each replica's loss on its own shard. MSE / 2 for
// regression, log-loss for classification; the running objective when
// training metrics are off.
double evaluated_loss(const EpochReport& r) {
  if (r.train) {
    for (const auto& [key, value] : r.train->values) {
      if (key == "mse") return value / 2;
      if (key == "logloss") return value;
    }
  }
  return r.loss;
}

bool reached_target(const CompareOptions& o, const EpochReport& r) {
  if (o.target_loss && evaluated_loss(r) <= *o.target_loss) return true;
  if (o.target_accuracy) {
    const auto [name, value] = headline_metric(r);
    if (name.ends_with("accuracy") && value >= *o.target_accuracy) return true;
  }
  return false;
}

void run_compare(CompareOptions& o) {
  if (o.strategies.empty()) throw ConfigError("--strategies needs at least one strategy");
  if (o.train.balance) {
    throw ConfigError("dtrain compare: list bsp-balance in --strategies rather than --balance");
  }
  if (!o.target_loss && !o.target_accuracy) {
    throw ConfigError("dtrain compare needs --target-loss or --target-accuracy");
  }
  if (o.train.backend == "mpi" || launched_by_mpi()) {
    throw ConfigError(
        "dtrain compare runs every strategy on threads in one process; start it "
        "without mpirun");
  }
  std::vector<StrategyChoice> choices;
  for (const auto& item : o.strategies) choices.push_back(parse_strategy_choice(item));
  // Fail on the curves path before the (long) runs.
  if (!o.curves_out.empty()) AtomicFile{o.curves_out};

  std::vector<StrategyRun> runs;
  for (const StrategyChoice& choice : choices) {
    TrainOptions t = o.train;
    t.schedule = choice.schedule;
    t.sync = choice.sync;
    t.topology = choice.topology;
    t.balance = choice.balance;
    t.backend = "threads";
    t.quiet = true;
    StrategyRun run;
    run.choice = choice;
    t.observer = [&run](const EpochReport& r) { run.reports.push_back(r); };
    std::printf("running %-12s ...", choice.label.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    run_train_threads(t);
    run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(" %.2f s\n", run.wall_s);
    runs.push_back(std::move(run));
  }

  std::string target = o.target_loss ? "loss <= " + std::to_string(*o.target_loss) : "";
  if (o.target_accuracy) {
    target += (target.empty() ? "" : " or ") + std::string("accuracy >= ") +
              std::to_string(*o.target_accuracy);
  }
  std::printf("\n%d worker(s)%s, target: %s\n\n", o.train.workers,
              o.train.slow.empty() ? "" : ", slowed workers given by --slow", target.c_str());
  std::printf("%-14s %-14s %9s %12s %12s %18s %14s %11s %9s\n", "strategy", "schedule", "epochs",
              "time_to_s", "final_loss", "final_metric", "bytes_moved", "wait_s", "max_stale");
  std::string curves = "strategy,epoch,elapsed_s,loss,metric_name,metric,bytes_moved,wait_s\n";
  for (const StrategyRun& run : runs) {
    std::optional<double> time_to;
    std::optional<int> epochs_to;
    double bytes = 0.0;
    double wait = 0.0;
    std::uint64_t stale = 0;
    for (const EpochReport& r : run.reports) {
      for (const WorkerStats& w : r.workers) {
        bytes += static_cast<double>(w.bytes_sent);
        wait += w.wait_s;
        stale = std::max(stale, w.max_staleness);
      }
      if (!time_to && reached_target(o, r)) {
        time_to = r.elapsed_seconds;
        epochs_to = r.epoch;
      }
      const auto [name, value] = headline_metric(r);
      char line[256];
      std::snprintf(line, sizeof line, "%s,%d,%.6f,%.10g,%s,%.10g,%.0f,%.6f\n",
                    run.choice.label.c_str(), r.epoch, r.elapsed_seconds, evaluated_loss(r),
                    name.c_str(), value, bytes, wait);
      curves += line;
    }
    const EpochReport* last = run.reports.empty() ? nullptr : &run.reports.back();
    const auto [name, value] = last ? headline_metric(*last) : std::pair<std::string, double>{};
    char metric[64];
    std::snprintf(metric, sizeof metric, "%s %.4g", name.c_str(), value);
    char time_text[32] = "not reached";
    if (time_to) std::snprintf(time_text, sizeof time_text, "%.3f", *time_to);
    char epochs_text[16] = "-";
    if (epochs_to) std::snprintf(epochs_text, sizeof epochs_text, "%d", *epochs_to);
    std::printf("%-14s %-14s %9s %12s %12.6g %18s %14.0f %11.3f %9llu\n", run.choice.label.c_str(),
                run.choice.schedule.c_str(), epochs_text, time_text,
                last ? evaluated_loss(*last) : 0.0, metric, bytes, wait,
                static_cast<unsigned long long>(stale));
  }
  std::printf(
      "\nfinal_loss: the evaluated model's loss on the training rows (MSE/2 or log-loss; for "
      "local SGD and gossip the replicas' mean), or the epoch's running objective when training "
      "metrics are off; time_to_s: wall time from the start of training "
      "to the first evaluation at the target; bytes_moved, wait_s: summed over ranks and "
      "epochs\n");
  if (!o.curves_out.empty()) {
    AtomicFile file(o.curves_out);
    file.stream() << curves;
    file.commit();
    std::printf("curves written to %s\n", o.curves_out.c_str());
  }
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto opts = std::make_shared<TrainOptions>();
  auto& o = *opts;
  CLI::App* cmd =
      app.add_subcommand("train", "Train a model on N workers (threads in this process)");
  // --config belongs to the main app (see main.cpp); train lets it through.
  cmd->fallthrough();
  cmd->footer(
      "Options can also come from a TOML file: --config FILE, whose keys are the option names\n"
      "without dashes (epochs = 100, eval-every = 10, standardize = true); flags given on the\n"
      "command line win over the file. Example: examples/diabetes.toml.");
  add_train_options(cmd, o, /*outputs=*/true);
  return [opts] { run_train(*opts); };
}

Action add_compare_command(CLI::App& app) {
  auto opts = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Train one job under several synchronisation strategies (threads) and compare them");
  add_train_options(cmd, opts->train, /*outputs=*/false);
  cmd->add_option("--strategies", opts->strategies,
                  "Comma-separated: bsp, bsp-balance, mw-bsp, asp, ssp:S, local:H, local:inf, "
                  "gossip, gossip-random")
      ->delimiter(',')
      ->required();
  cmd->add_option("--target-loss", opts->target_loss,
                  "Target training loss (objective) for time-to-target");
  cmd->add_option("--target-accuracy", opts->target_accuracy,
                  "Target accuracy (test if there is a test set, else train)");
  cmd->add_option("--curves-out", opts->curves_out,
                  "CSV file: strategy, epoch, elapsed_s, loss, metric, bytes, wait per evaluation");
  return [opts] { run_compare(*opts); };
}

}  // namespace dtrain::cli
