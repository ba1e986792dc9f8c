#include "dtrain/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>

#include "dtrain/data/partition.h"
#include "dtrain/error.h"
#include "dtrain/sync/gradient_sync.h"

namespace dtrain {

bool is_test_row(std::uint64_t row_id, std::uint64_t seed, double test_fraction) {
  if (test_fraction <= 0.0) return false;
  // 53 uniformly distributed bits -> [0, 1).
  const std::uint64_t h = mix64(seed ^ mix64(row_id));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return u < test_fraction;
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
  if (c.lr.kind == LrSchedule::Kind::kStep && (c.lr.step_epochs < 1 || !(c.lr.gamma > 0.0))) {
    throw ConfigError("step schedule needs --lr-step >= 1 and --lr-gamma > 0");
  }
  if (!(c.l2 >= 0.0) || !std::isfinite(c.l2)) throw ConfigError("--l2 must be >= 0");
  if (!(c.test_fraction >= 0.0 && c.test_fraction < 1.0)) {
    throw ConfigError("--test-fraction must be in [0, 1)");
  }
  if (!(c.tol >= 0.0)) throw ConfigError("--tol must be >= 0");
  if (c.eval_every < 1) throw ConfigError("--eval-every must be at least 1");
}

double l2_norm_squared(std::span<const double> w) {
  double s = 0.0;
  for (const double v : w) s += v * v;
  return s;
}

}  // namespace

TrainResult train(Communicator& comm, const Dataset& shard, const TrainConfig& config,
                  const std::function<void(const EpochReport&)>& on_report) {
  validate(config);
  const auto start = Clock::now();

  // ---- split this worker's rows into train and test ----------------------
  std::vector<std::size_t> train_rows;
  std::vector<std::size_t> test_rows;
  const auto ids = shard.row_ids();
  for (std::size_t r = 0; r < shard.rows(); ++r) {
    (is_test_row(ids[r], config.seed, config.test_fraction) ? test_rows : train_rows).push_back(r);
  }
  // [train rows, test rows, feature count] over all workers; the widest
  // feature count wins (LibSVM shards need not mention the last column).
  std::vector<std::uint64_t> counts{train_rows.size(), test_rows.size()};
  comm.allreduce(std::span<std::uint64_t>(counts), ReduceOp::kSum);
  std::uint64_t cols = shard.cols();
  comm.allreduce(std::span<std::uint64_t>(&cols, 1), ReduceOp::kMax);
  if (cols != shard.cols() && !shard.is_sparse()) {
    throw InputError("rank " + std::to_string(comm.rank()) + ": shard has " +
                     std::to_string(shard.cols()) + " features, others have " +
                     std::to_string(cols));
  }
  if (counts[0] == 0)
    throw ConfigError("no training rows (empty data or --test-fraction too high)");

  TrainResult result;
  result.train_rows = counts[0];
  result.test_rows = counts[1];

  // ---- features: optionally standardised with global statistics ----------
  Dataset standardized;
  const Dataset* data = &shard;
  if (config.standardize) {
    result.standardizer = Standardizer::fit(comm, shard, train_rows);
    standardized = result.standardizer.apply(shard);
    data = &standardized;
  }

  const auto model = make_linear_model(config.model, cols);
  const std::size_t num_params = model->num_params();
  // Convex models: zeros are as good a start as any, and keep every worker
  // (and every run) identical without a broadcast.
  result.params.assign(num_params, 0.0);
  auto params = std::span<double>(result.params);
  auto weights = params.first(cols);
  const auto optimizer = make_optimizer(config.momentum, config.nesterov);
  AllreduceSync sync;

  // One buffer per step: [gradient sums (P), loss sum, row count].
  std::vector<double> sums(num_params + 2);
  auto grad = std::span<double>(sums).first(num_params);

  // Mini-batch: every worker takes the same number of steps per epoch (the
  // largest shard decides); a worker whose rows run out contributes empty
  // batches, so each row is still seen exactly once per epoch.
  std::uint64_t steps_per_epoch = 1;
  if (config.batch_mode == BatchMode::kMiniBatch) {
    steps_per_epoch = (train_rows.size() + config.batch_size - 1) / config.batch_size;
    comm.allreduce(std::span<std::uint64_t>(&steps_per_epoch, 1), ReduceOp::kMax);
  }

  std::vector<std::size_t> order = train_rows;
  double previous_loss = std::numeric_limits<double>::quiet_NaN();
  for (int epoch = 0; epoch < config.epochs; ++epoch) {
    const double lr = config.lr.at(epoch);
    const auto epoch_start = Clock::now();
    if (config.batch_mode == BatchMode::kMiniBatch) {
      order = train_rows;
      seeded_shuffle(order, mix64(config.seed) ^ mix64((static_cast<std::uint64_t>(epoch) << 20) +
                                                       static_cast<std::uint64_t>(comm.rank())));
    }
    double weighted_loss = 0.0;
    double rows_seen = 0.0;
    for (std::uint64_t step = 0; step < steps_per_epoch; ++step) {
      std::span<const std::size_t> batch(order);
      if (config.batch_mode == BatchMode::kMiniBatch) {
        const std::size_t begin = std::min(order.size(), step * config.batch_size);
        const std::size_t end = std::min(order.size(), begin + config.batch_size);
        batch = batch.subspan(begin, end - begin);
      }
      std::fill(sums.begin(), sums.end(), 0.0);
      sums[num_params] = model->accumulate_gradient(params, *data, batch, grad);
      sums[num_params + 1] = static_cast<double>(batch.size());
      sync.combine(comm, sums);
      const double n = sums[num_params + 1];
      if (n == 0) continue;
      for (double& g : grad) g /= n;
      // Objective = mean loss + l2/2 ||w||^2; the intercept is not penalised.
      const double objective = sums[num_params] / n + 0.5 * config.l2 * l2_norm_squared(weights);
      for (std::size_t j = 0; j < cols; ++j) grad[j] += config.l2 * weights[j];
      optimizer->step(params, grad, lr);
      weighted_loss += objective * n;
      rows_seen += n;
    }
    const double step_seconds = seconds_since(epoch_start);
    const double loss = weighted_loss / rows_seen;
    result.epochs_run = epoch + 1;

    const bool converged =
        config.tol > 0 && std::isfinite(previous_loss) &&
        std::abs(loss - previous_loss) <= config.tol * std::max(1.0, std::abs(previous_loss));
    if (!std::isfinite(loss)) {
      throw Error("training diverged at epoch " + std::to_string(epoch + 1) + " (loss is " +
                  std::to_string(loss) + "); lower --lr or --standardize");
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
      report.train = evaluate(comm, *model, params, *data, train_rows);
      if (counts[1] > 0) report.test = evaluate(comm, *model, params, *data, test_rows);
      report.elapsed_seconds = seconds_since(start);
      if (comm.rank() == 0 && on_report) on_report(report);
      result.history.push_back(std::move(report));
    }
    if (converged) {
      result.stopped_early = true;
      break;
    }
  }
  return result;
}

}  // namespace dtrain
