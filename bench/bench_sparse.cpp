// bench_sparse: sparse logistic regression over hashed features (2^20
// weights, a few dozen non-zeros per row), mini-batch SGD and AdaGrad on 1
// and 2 worker threads, with dense steps (every step clears, allreduces and
// updates all weights) against sparse steps (only the weights the batches
// touch). Both are measured in the same run, in alternating order, and must
// end with the same weights bit for bit; the ratio is sparse over dense
// training throughput.
//
// The rows are synthetic (synthetic_sparse_rows), drawn as hashed
// categorical data looks: half of each row's features from 1,024 common
// values, half spread over the whole hash space, labelled by a hidden weight
// vector with 10% noise.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "dtrain/comm/threads.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/synthetic.h"
#include "dtrain/train/trainer.h"

namespace {

using namespace dtrain;

struct Run {
  double samples_per_s = 0.0;   // harmonic mean over the epochs
  double bytes_per_step = 0.0;  // sent by one worker
  std::vector<double> params;
  double accuracy = 0.0;
};

Run train_once(const std::vector<Dataset>& shards, TrainConfig config) {
  Run run;
  ThreadsOptions opts;
  opts.workers = static_cast<int>(shards.size());
  TrainResult result;
  std::vector<EpochReport> reports;
  run_threads(opts, [&](Communicator& comm) {
    auto r = train(comm, shards[static_cast<std::size_t>(comm.rank())], config,
                   [&](const EpochReport& e) { reports.push_back(e); });
    if (comm.rank() == 0) result = std::move(r);
  });
  double seconds = 0.0;
  double samples = 0.0;
  double bytes = 0.0;
  for (const EpochReport& e : reports) {
    seconds += e.epoch_seconds;
    samples += e.samples_per_s * e.epoch_seconds;
    bytes += static_cast<double>(e.workers.front().bytes_sent);
  }
  const double steps_per_epoch =
      static_cast<double>((shards.front().rows() + config.batch_size - 1) / config.batch_size);
  run.samples_per_s = samples / seconds;
  run.bytes_per_step = bytes / (steps_per_epoch * static_cast<double>(reports.size()));
  run.params = std::move(result.params);
  run.accuracy = result.history.back().train->at("accuracy");
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sparse logistic regression: sparse steps against dense steps"};
  std::size_t rows = 60'000;
  std::size_t cols = std::size_t{1} << 20;
  std::size_t nnz = 40;
  int epochs = 2;
  int repeats = 3;
  bool quick = false;
  app.add_option("--rows", rows, "training rows")->check(CLI::PositiveNumber);
  app.add_option("--dim", cols, "hashed feature dimension (weights)")->check(CLI::PositiveNumber);
  app.add_option("--nnz", nnz, "non-zeros per row")->check(CLI::PositiveNumber);
  app.add_option("--epochs", epochs, "epochs per run")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "runs of each variant (best kept)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "smoke run: small data, one run");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    rows = 3000;
    cols = std::size_t{1} << 16;
    epochs = 1;
    repeats = 1;
  }
  nnz = std::min(nnz, cols);

  SyntheticSparseSpec spec;
  spec.rows = rows;
  spec.cols = cols;
  spec.nnz = nnz;
  spec.common = 1024;
  spec.one_hot = true;
  spec.seed = 7;
  const Dataset data = synthetic_sparse_rows(spec);
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  std::printf("# command: %s\n", command.c_str());
  std::printf("# machine: %s, nproc=%u\n", bench::cpu_model().c_str(),
              std::thread::hardware_concurrency());
  std::printf(
      "# data: %zu rows, %zu hashed features, %zu non-zeros per row; batch 128 per worker, %d "
      "epoch(s), best of %d runs per variant\n",
      rows, cols, nnz, epochs, repeats);
  std::printf("%-8s %7s %14s %14s %9s %16s %16s %9s %9s\n", "rule", "workers", "dense rows/s",
              "sparse rows/s", "speedup", "dense B/step", "sparse B/step", "accuracy", "same bits");
  bool all_same = true;
  for (const OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdaGrad}) {
    for (const int workers : {1, 2}) {
      const auto partitioner = make_partitioner("range", 1);
      const auto owners =
          partitioner->assign(data, data.rows(), static_cast<std::uint32_t>(workers));
      std::vector<Dataset> shards;
      for (int w = 0; w < workers; ++w) {
        shards.push_back(data.subset(rows_of_part(owners, static_cast<std::uint32_t>(w))));
      }
      TrainConfig config;
      config.model = ModelKind::kSparseLogistic;
      config.batch_mode = BatchMode::kMiniBatch;
      config.batch_size = 128;
      config.epochs = epochs;
      config.eval_every = epochs;
      config.optimizer.kind = kind;
      config.lr.base = kind == OptimizerKind::kAdaGrad ? 0.1 : 0.5;
      Run best_dense, best_sparse;
      for (int rep = 0; rep < repeats; ++rep) {
        for (const bool sparse : {rep % 2 == 0, rep % 2 != 0}) {
          config.sparse_steps = sparse;
          Run run = train_once(shards, config);
          Run& best = sparse ? best_sparse : best_dense;
          if (run.samples_per_s > best.samples_per_s) best = std::move(run);
        }
      }
      const bool same = best_dense.params == best_sparse.params;
      all_same = all_same && same;
      std::printf("%-8s %7d %14.0f %14.0f %8.1fx %16.0f %16.0f %9.4f %9s\n", to_string(kind),
                  workers, best_dense.samples_per_s, best_sparse.samples_per_s,
                  best_sparse.samples_per_s / best_dense.samples_per_s, best_dense.bytes_per_step,
                  best_sparse.bytes_per_step, best_sparse.accuracy, same ? "yes" : "NO");
      std::fflush(stdout);
    }
  }
  if (!all_same) {
    std::fprintf(stderr, "bench_sparse: sparse and dense steps trained different weights\n");
    return 1;
  }
  return 0;
}
