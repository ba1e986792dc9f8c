// dtrain train: load, partition, train on N workers, save the model.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "common.h"
#include "dtrain/comm/threads.h"
#include "dtrain/data/partition.h"
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

void run_train(TrainOptions& o) {
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
  if (o.workers < 1) throw ConfigError("--workers must be at least 1");
  if (!(o.comm_timeout_s > 0)) throw ConfigError("--comm-timeout must be positive");
  // Validate everything cheap before touching the data.
  const auto partitioner = make_partitioner(o.partition, o.seed, o.weights);

  o.data.delimiter = parse_delimiter(o.delimiter);
  o.data.label_kind = label_kind_for(config.model);
  if (const auto* hash = dynamic_cast<const HashPartitioner*>(partitioner.get())) {
    o.data.key_column = hash->key_column();
  }
  const FileFormat format = resolve_format(o.data);
  const Dataset data = load_data(o.data);

  const auto owners = partitioner->assign(data, data.rows(), static_cast<std::uint32_t>(o.workers));
  std::vector<Dataset> shards;
  shards.reserve(static_cast<std::size_t>(o.workers));
  for (int w = 0; w < o.workers; ++w) {
    const auto rows = rows_of_part(owners, static_cast<std::uint32_t>(w));
    shards.push_back(data.subset(rows));
  }

  // Open outputs before the (possibly long) training so a bad path fails
  // fast; nothing appears under the final names unless training succeeds.
  std::optional<AtomicFile> metrics_file;
  if (!o.metrics_out.empty()) metrics_file.emplace(o.metrics_out);
  AtomicFile model_probe(o.out, /*binary=*/true);

  if (!o.quiet) {
    std::cout << "dtrain: " << to_string(config.model) << " model, " << data.rows() << " rows x "
              << data.cols() << " features from " << o.data.path << ", " << o.workers
              << " worker(s), " << partitioner->name() << " partitioning, " << o.optimizer
              << std::endl;
  }
  const auto on_report = [&](const EpochReport& r) {
    if (!o.quiet) std::cout << format_line(r, config.epochs) << std::endl;
    if (metrics_file) metrics_file->stream() << report_to_json(r).dump() << '\n';
  };

  ThreadsOptions threads;
  threads.workers = o.workers;
  threads.timeout = std::chrono::milliseconds(static_cast<long long>(o.comm_timeout_s * 1000));
  std::optional<TrainResult> result;
  const auto t0 = std::chrono::steady_clock::now();
  run_threads(threads, [&](Communicator& comm) {
    auto r = train(comm, shards[static_cast<std::size_t>(comm.rank())], config, on_report);
    if (comm.rank() == 0) result = std::move(r);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  SavedModel model;
  model.spec.kind = config.model;
  model.spec.num_features = result->params.size() - 1;
  model.spec.feature_names = data.feature_names();
  model.spec.label_name = data.label_name();
  model.spec.input_format = format == FileFormat::kLibsvm ? "libsvm" : "csv";
  model.spec.l2 = config.l2;
  nlohmann::json training;
  training["data"] = o.data.path;
  training["workers"] = o.workers;
  training["partition"] = partitioner->name();
  training["optimizer"] = o.optimizer;
  training["epochs_run"] = result->epochs_run;
  training["batch_size"] = o.batch_size;
  training["lr"] = o.lr;
  training["lr_schedule"] = o.lr_schedule;
  training["momentum"] = config.momentum;
  training["standardize"] = o.standardize;
  training["seed"] = o.seed;
  training["test_fraction"] = o.test_fraction;
  training["train_rows"] = result->train_rows;
  training["test_rows"] = result->test_rows;
  model.spec.training_json = training.dump();
  model.params = result->params;
  model.standardizer = result->standardizer;
  // The probe only reserved the name; the real write is atomic on its own.
  model_probe.stream().close();
  save_model(o.out, model);
  if (metrics_file) metrics_file->commit();

  if (!o.quiet) {
    const EpochReport& last = result->history.back();
    std::printf("done: %d epoch(s)%s in %.3f s; final loss %.9g\n", result->epochs_run,
                result->stopped_early ? " (converged: --tol reached)" : "", seconds, last.loss);
    std::printf("train (%llu rows): %s\n", static_cast<unsigned long long>(last.train.rows),
                metrics_to_text(last.train).c_str());
    if (last.test) {
      std::printf("test  (%llu rows): %s\n", static_cast<unsigned long long>(last.test->rows),
                  metrics_to_text(*last.test).c_str());
    }
    std::printf("model written to %s\n", o.out.c_str());
    if (metrics_file) std::printf("metrics written to %s\n", o.metrics_out.c_str());
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
  cmd->add_option("--data", o.data.path, "Training data file (CSV with header, or LibSVM)")
      ->required();
  cmd->add_option("--format", o.data.format, "csv | libsvm (default: from the file name)");
  cmd->add_option("--label", o.data.label,
                  "CSV label column: header name or 0-based index (default: last column)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter (one character or 'tab')")
      ->capture_default_str();
  cmd->add_option("--model", o.model, "linear (squared loss) | logistic (binary log-loss)")
      ->required();
  cmd->add_option("--workers", o.workers, "Number of workers")->capture_default_str();
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
