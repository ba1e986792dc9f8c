// Shared by the train-layer tests: one training run on N worker threads,
// each holding its partition of a dataset.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dtrain/comm/threads.h"
#include "dtrain/data/partition.h"
#include "dtrain/train/trainer.h"

namespace dtrain {

// Trains on `workers` threads, each holding its part of `data` as
// `partition` assigns it; returns rank 0's result.
inline TrainResult train_on(const Dataset& data, int workers, const std::string& partition,
                            const TrainConfig& config) {
  const auto partitioner = make_partitioner(partition, config.seed);
  const auto owners = partitioner->assign(data, data.rows(), static_cast<std::uint32_t>(workers));
  std::vector<Dataset> shards;
  for (int w = 0; w < workers; ++w) {
    shards.push_back(data.subset(rows_of_part(owners, static_cast<std::uint32_t>(w))));
  }
  TrainResult result;
  ThreadsOptions opts;
  opts.workers = workers;
  run_threads(opts, [&](Communicator& comm) {
    auto r = train(comm, shards[static_cast<std::size_t>(comm.rank())], config);
    if (comm.rank() == 0) result = std::move(r);
  });
  return result;
}

}  // namespace dtrain
