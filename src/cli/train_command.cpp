// dtrain train: load, partition, train on N workers, save the model.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
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
#include "dtrain/train/trainer.h"
#include "dtrain/util/atomic_file.h"

namespace dtrain::cli {

namespace {

struct TrainOptions {
  DataRequest data;
  std::string delimiter = ",";
  std::string model = "linear";
  int workers = 1;
  bool workers_given = false;
  std::string backend = "auto";
  std::string partition = "range";
  std::vector<double> weights;
  std::string optimizer = "gd";
  int epochs = 100;
  std::size_t batch_size = 32;
  double lr = 0.01;
  std::string lr_schedule = "constant";
  int lr_step = 10;
  double lr_gamma = 0.5;
  std::optional<double> momentum;
  bool nesterov = false;
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
  line += "  train " + metrics_to_text(r.train);
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
  j["train_rows"] = r.train.rows;
  for (const auto& [name, value] : r.train.values) j["train_" + name] = value;
  if (r.test) {
    j["test_rows"] = r.test->rows;
    for (const auto& [name, value] : r.test->values) j["test_" + name] = value;
  }
  return j;
}

TrainConfig make_config(const TrainOptions& o) {
  TrainConfig config;
  config.model = parse_model_kind(o.model);
  if (o.optimizer == "gd") {
    config.batch_mode = BatchMode::kFullBatch;
  } else if (o.optimizer == "sgd") {
    config.batch_mode = BatchMode::kMiniBatch;
  } else {
    throw ConfigError("unknown optimizer '" + o.optimizer + "' (expected gd or sgd)");
  }
  config.epochs = o.epochs;
  config.batch_size = o.batch_size;
  config.lr.kind = parse_lr_schedule(o.lr_schedule);
  config.lr.base = o.lr;
  config.lr.step_epochs = o.lr_step;
  config.lr.gamma = o.lr_gamma;
  // Mini-batch SGD without momentum is rarely what anyone wants; full-batch
  // GD keeps the textbook update unless asked.
  config.momentum = o.momentum.value_or(config.batch_mode == BatchMode::kMiniBatch ? 0.9 : 0.0);
  config.nesterov = o.nesterov;
  config.l2 = o.l2;
  config.standardize = o.standardize;
  config.seed = o.seed;
  config.test_fraction = o.test_fraction;
  config.tol = o.tol;
  config.eval_every = o.eval_every;
  return config;
}

// Everything decided before any worker starts, identical on every worker.
struct Job {
  TrainConfig config;
  std::unique_ptr<Partitioner> partitioner;
  LoadOptions load;
  bool from_shards = false;
  std::string backend;
  int workers = 1;
};

Job plan_job(TrainOptions& o, int workers, std::string backend) {
  Job job;
  job.config = make_config(o);
  if (!(o.comm_timeout_s > 0)) throw ConfigError("--comm-timeout must be positive");
  job.partitioner = make_partitioner(o.partition, o.seed, o.weights);
  job.backend = std::move(backend);
  job.workers = workers;
  o.data.delimiter = parse_delimiter(o.delimiter);
  o.data.label_kind = label_kind_for(job.config.model);
  if (const auto* hash = dynamic_cast<const HashPartitioner*>(job.partitioner.get())) {
    o.data.key_column = hash->key_column();
  }
  job.from_shards = is_shard_directory(o.data.path);
  if (job.from_shards) {
    const ShardManifest manifest = read_manifest(o.data.path);
    job.load.format = parse_format(manifest.format);
  } else {
    job.load.format = resolve_format(o.data);
  }
  job.load.csv.delimiter = o.data.delimiter;
  job.load.csv.label = o.data.label;
  job.load.csv.key_column = o.data.key_column;
  job.load.csv.label_kind = o.data.label_kind;
  job.load.libsvm.label_kind = o.data.label_kind;
  return job;
}

std::chrono::milliseconds timeout_of(const TrainOptions& o) {
  return std::chrono::milliseconds(static_cast<long long>(o.comm_timeout_s * 1000));
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
    AtomicFile{o.out, /*binary=*/true};
  }

  const Dataset shard = job.from_shards
                            ? load_shard(comm, o.data.path, job.load)
                            : load_partitioned(comm, o.data.path, job.load, *job.partitioner);
  std::uint64_t rows = shard.rows();
  comm.allreduce(std::span<std::uint64_t>(&rows, 1));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (lead && !o.quiet) {
    std::printf(
        "dtrain: %s model, %llu rows x %zu features from %s (loaded in %.3f s), %d "
        "worker(s) on %s, %s, %s\n",
        to_string(job.config.model), static_cast<unsigned long long>(rows), shard.cols(),
        o.data.path.c_str(), load_seconds, comm.size(), comm.backend().c_str(),
        job.from_shards ? "shard directory" : (job.partitioner->name() + " partitioning").c_str(),
        o.optimizer.c_str());
    std::fflush(stdout);
  }
  const auto on_report = [&](const EpochReport& r) {
    if (!o.quiet) {
      std::printf("%s\n", format_line(r, job.config.epochs).c_str());
      std::fflush(stdout);
    }
    if (!o.metrics_out.empty()) metrics_lines += report_to_json(r).dump() + '\n';
  };
  const TrainResult result = train(comm, shard, job.config, on_report);
  if (!lead) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  SavedModel model;
  model.spec.kind = job.config.model;
  model.spec.num_features = result.params.size() - 1;
  model.spec.feature_names = shard.feature_names();
  model.spec.label_name = shard.label_name();
  model.spec.input_format = job.load.format == FileFormat::kLibsvm ? "libsvm" : "csv";
  model.spec.l2 = job.config.l2;
  nlohmann::json training;
  training["data"] = o.data.path;
  training["backend"] = comm.backend();
  training["workers"] = comm.size();
  training["partition"] = job.from_shards ? "shards" : job.partitioner->name();
  training["optimizer"] = o.optimizer;
  training["epochs_run"] = result.epochs_run;
  training["batch_size"] = o.batch_size;
  training["lr"] = o.lr;
  training["lr_schedule"] = o.lr_schedule;
  training["momentum"] = job.config.momentum;
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
    std::printf("train (%llu rows): %s\n", static_cast<unsigned long long>(last.train.rows),
                metrics_to_text(last.train).c_str());
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
  if (o.workers_given && o.workers != session.world_size()) {
    session.abort_job("dtrain: --workers " + std::to_string(o.workers) +
                          " (from the command line or config file) but mpirun started " +
                          std::to_string(session.world_size()) +
                          " processes (leave --workers out "
                          "under MPI)",
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
  threads.workers = o.workers;
  threads.timeout = timeout_of(o);
  run_threads(threads, [&](Communicator& comm) { run_worker(comm, o, job); });
}

void run_train(TrainOptions& o) {
  if (o.backend == "mpi" || (o.backend == "auto" && launched_by_mpi())) {
    run_train_mpi(o);
  } else if (o.backend == "threads" || o.backend == "auto") {
    run_train_threads(o);
  } else {
    throw ConfigError("unknown backend '" + o.backend + "' (expected auto, threads or mpi)");
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
  cmd->add_option("--data", o.data.path,
                  "Training data: a CSV (with header) or LibSVM file, or a directory written by "
                  "dtrain partition (one shard per worker)")
      ->required();
  cmd->add_option("--format", o.data.format, "csv | libsvm (default: from the file name)");
  cmd->add_option("--label", o.data.label,
                  "CSV label column: header name or 0-based index (default: last column)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter (one character or 'tab')")
      ->capture_default_str();
  cmd->add_option("--model", o.model, "linear (squared loss) | logistic (binary log-loss)")
      ->required();
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
  cmd->add_option("--optimizer", o.optimizer,
                  "gd (full-batch gradient descent) | sgd (mini-batch SGD with momentum)")
      ->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Passes over the training data")->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "Rows per worker per step (sgd)")
      ->capture_default_str();
  cmd->add_option("--lr", o.lr, "Learning rate")->capture_default_str();
  cmd->add_option(
         "--lr-schedule", o.lr_schedule,
         "constant | step (x gamma every --lr-step epochs) | inverse-sqrt (lr/sqrt(1+epoch))")
      ->capture_default_str();
  cmd->add_option("--lr-step", o.lr_step, "Epochs between decays (step schedule)")
      ->capture_default_str();
  cmd->add_option("--lr-gamma", o.lr_gamma, "Decay factor (step schedule)")->capture_default_str();
  cmd->add_option("--momentum", o.momentum, "Momentum (default 0 for gd, 0.9 for sgd)");
  cmd->add_flag("--nesterov", o.nesterov, "Nesterov momentum");
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
  cmd->add_option("--comm-timeout", o.comm_timeout_s,
                  "Seconds a worker waits on its peers before the job fails")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Model file to write")->required();
  cmd->add_option("--metrics-out", o.metrics_out,
                  "JSON-lines file: one object per evaluated epoch");
  cmd->add_flag("--quiet", o.quiet, "No progress output");
  return [opts] { run_train(*opts); };
}

}  // namespace dtrain::cli
