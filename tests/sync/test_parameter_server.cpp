// The parameter server on the threads backend, checked on a least-squares
// problem whose gradient the test computes itself: BSP against an allreduce
// reference loop (bit for bit), SSP's staleness bound, ASP's convergence, and
// the traffic each server sees.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/comm/threads.h"
#include "dtrain/error.h"
#include "dtrain/sync/parameter_server.h"

namespace dtrain {
namespace {

// y = x . w_true + b_true, noise-free, so that the least-squares optimum is
// (w_true, b_true). Parameters: [w (features) | b].
struct Problem {
  std::size_t rows = 0;
  std::size_t features = 0;
  std::vector<double> x;  // row-major
  std::vector<double> y;
  std::vector<double> w_true;
  double b_true = 0.0;

  std::size_t num_params() const { return features + 1; }
};

Problem make_problem(std::size_t rows, std::size_t features, std::uint64_t seed) {
  Problem p;
  p.rows = rows;
  p.features = features;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  for (std::size_t j = 0; j < features; ++j) p.w_true.push_back(unit(rng));
  p.b_true = 0.5;
  for (std::size_t i = 0; i < rows; ++i) {
    double target = p.b_true;
    for (std::size_t j = 0; j < features; ++j) {
      p.x.push_back(unit(rng));
      target += p.x.back() * p.w_true[j];
    }
    p.y.push_back(target);
  }
  return p;
}

// Rows of worker w of `workers`: i % workers == w (uneven when rows is not a
// multiple of workers).
std::vector<std::size_t> shard_of(const Problem& p, int w, int workers) {
  std::vector<std::size_t> rows;
  for (std::size_t i = static_cast<std::size_t>(w); i < p.rows;
       i += static_cast<std::size_t>(workers))
    rows.push_back(i);
  return rows;
}

std::span<const std::size_t> batch_of(const std::vector<std::size_t>& shard, std::size_t step,
                                      std::size_t batch) {
  const std::size_t begin = std::min(shard.size(), step * batch);
  const std::size_t end = std::min(shard.size(), begin + batch);
  return std::span<const std::size_t>(shard).subspan(begin, end - begin);
}

std::size_t steps_of(const std::vector<std::size_t>& shard, std::size_t batch) {
  return (shard.size() + batch - 1) / batch;
}

// grad += sum over the rows of (x.w + b - y) [x | 1]; returns the summed loss
// 0.5 r^2. Arithmetic in T, as a model's accumulate_gradient.
template <class T>
double accumulate(const Problem& p, std::span<const std::size_t> rows, std::span<const T> params,
                  std::span<T> grad) {
  double loss = 0.0;
  const std::size_t d = p.features;
  for (std::size_t i : rows) {
    T pred = params[d];
    for (std::size_t j = 0; j < d; ++j) pred += params[j] * static_cast<T>(p.x[i * d + j]);
    const T r = pred - static_cast<T>(p.y[i]);
    for (std::size_t j = 0; j < d; ++j) grad[j] += r * static_cast<T>(p.x[i * d + j]);
    grad[d] += r;
    loss += 0.5 * static_cast<double>(r) * static_cast<double>(r);
  }
  return loss;
}

template <class T>
std::vector<T> initial_params(std::size_t n) {
  std::vector<T> params(n);
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> unit(-0.1, 0.1);
  for (T& v : params) v = static_cast<T>(unit(rng));
  return params;
}

// A learning rate that changes every step, so that a server using the wrong
// step's rate is caught.
double lr_at(std::uint64_t global_step) {
  return 0.1 / (1.0 + 0.01 * static_cast<double>(global_step));
}

ThreadsOptions world(int ranks) {
  ThreadsOptions o;
  o.workers = ranks;
  o.timeout = std::chrono::seconds(60);
  return o;
}

struct Scenario {
  Problem problem;
  std::size_t batch = 4;
  int epochs = 2;
  PsConfig config;  // servers and mode are set per run
};

Scenario make_scenario(std::size_t rows, std::size_t features, OptimizerKind kind, double l2) {
  Scenario s;
  s.problem = make_problem(rows, features, 7);
  s.config.optimizer.kind = kind;
  s.config.l2 = l2;
  s.config.penalized = {{0, features}};  // the bias (last) is not penalised
  s.config.num_params = s.problem.num_params();
  return s;
}

// The trainer's BSP step on W workers with the threads allreduce: every worker
// pads its epoch with empty batches up to the longest shard. Returns the
// parameters after each epoch.
template <class T>
std::vector<std::vector<T>> allreduce_reference(const Scenario& s, int workers) {
  std::vector<std::vector<T>> per_epoch;
  const std::size_t num_params = s.problem.num_params();
  run_threads(world(workers), [&](Communicator& comm) {
    const auto shard = shard_of(s.problem, comm.rank(), workers);
    std::uint64_t steps = steps_of(shard, s.batch);
    comm.allreduce(std::span<std::uint64_t>(&steps, 1), ReduceOp::kMax);
    std::vector<T> params = initial_params<T>(num_params);
    auto optimizer = make_optimizer<T>(s.config.optimizer);
    std::vector<T> sums(num_params + 2);
    auto grad = std::span<T>(sums).first(num_params);
    std::uint64_t global_step = 0;
    for (int epoch = 0; epoch < s.epochs; ++epoch) {
      for (std::uint64_t step = 0; step < steps; ++step, ++global_step) {
        const auto rows = batch_of(shard, step, s.batch);
        std::fill(sums.begin(), sums.end(), T{0});
        sums[num_params] = static_cast<T>(accumulate<T>(s.problem, rows, params, grad));
        sums[num_params + 1] = static_cast<T>(rows.size());
        comm.allreduce(std::span<T>(sums));
        const double n = static_cast<double>(sums[num_params + 1]);
        if (n == 0) continue;
        const T inv_n = static_cast<T>(1.0 / n);
        for (T& g : grad) g *= inv_n;
        const T factor = static_cast<T>(s.config.l2);
        for (const auto& [begin, end] : s.config.penalized)
          for (std::size_t j = begin; j < end; ++j) grad[j] += factor * params[j];
        optimizer->step(params, grad, lr_at(global_step));
      }
      if (comm.rank() == 0) per_epoch.push_back(params);
    }
  });
  return per_epoch;
}

template <class T>
struct PsRun {
  // [worker][epoch]: the parameters end_epoch gave.
  std::vector<std::vector<std::vector<T>>> params;
  // [server]: the final range, and its bounds.
  std::vector<std::vector<T>> ranges;
  std::vector<std::pair<std::size_t, std::size_t>> bounds;
  std::vector<SyncCounters> counters;  // per rank, over all epochs
  // [worker]: push_pull calls made.
  std::vector<std::uint64_t> pushes;
  // Largest lead (steps completed) of worker 0 over the last worker, sampled
  // by worker 0 after each of its steps.
  int max_lead = 0;
};

struct RunOptions {
  int servers = 1;
  int workers = 1;
  PsMode mode = PsMode::kBsp;
  int staleness = 0;
  // The last worker sleeps this long before each push (0: nobody does).
  std::chrono::microseconds slow_worker_delay{0};
};

template <class T>
PsRun<T> run_ps(const Scenario& s, const RunOptions& opt) {
  PsConfig config = s.config;
  config.servers = opt.servers;
  config.mode = opt.mode;
  config.staleness = opt.staleness;
  const int ranks = opt.servers + opt.workers;
  const std::size_t num_params = s.problem.num_params();
  PsRun<T> run;
  run.params.resize(static_cast<std::size_t>(opt.workers));
  run.ranges.resize(static_cast<std::size_t>(opt.servers));
  run.bounds.resize(static_cast<std::size_t>(opt.servers));
  run.counters.resize(static_cast<std::size_t>(ranks));
  run.pushes.assign(static_cast<std::size_t>(opt.workers), 0);
  std::vector<std::atomic<int>> completed(static_cast<std::size_t>(opt.workers));
  std::atomic<int> max_lead{0};

  run_threads(world(ranks), [&](Communicator& comm) {
    const auto rank = static_cast<std::size_t>(comm.rank());
    SyncCounters& counters = run.counters[rank];
    const std::vector<T> init = initial_params<T>(num_params);
    if (comm.rank() < opt.servers) {
      PsServer<T> server(comm, config, init);
      for (int epoch = 0; epoch < s.epochs; ++epoch) server.serve_epoch(counters);
      run.ranges[rank] = std::vector<T>(server.range().begin(), server.range().end());
      run.bounds[rank] = server.bounds();
      return;
    }
    const int w = comm.rank() - opt.servers;
    const bool slow = opt.slow_worker_delay.count() > 0 && w == opt.workers - 1;
    const auto shard = shard_of(s.problem, w, opt.workers);
    // Each worker takes only its own steps: one whose shard is shorter ends
    // its epoch early instead of pushing empty batches.
    const std::size_t steps = steps_of(shard, s.batch);
    PsClient<T> client(comm, config);
    std::vector<T> params = init;
    std::vector<T> grad(num_params);
    std::uint64_t global_step = 0;
    for (int epoch = 0; epoch < s.epochs; ++epoch) {
      for (std::size_t step = 0; step < steps; ++step, ++global_step) {
        if (slow) std::this_thread::sleep_for(opt.slow_worker_delay);
        const auto rows = batch_of(shard, step, s.batch);
        std::fill(grad.begin(), grad.end(), T{0});
        const double loss = accumulate<T>(s.problem, rows, params, grad);
        client.push_pull(grad, static_cast<double>(rows.size()), loss, lr_at(global_step), params,
                         counters);
        ++run.pushes[static_cast<std::size_t>(w)];
        completed[static_cast<std::size_t>(w)].fetch_add(1);
        if (w == 0 && opt.workers > 1) {
          const int lead =
              completed[0].load() - completed[static_cast<std::size_t>(opt.workers - 1)].load();
          if (lead > max_lead.load()) max_lead.store(lead);
        }
      }
      client.end_epoch(params, counters);
      run.params[static_cast<std::size_t>(w)].push_back(params);
    }
  });
  run.max_lead = max_lead.load();
  return run;
}

template <class T>
testing::AssertionResult bit_identical(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      return testing::AssertionFailure() << "index " << i << ": " << static_cast<double>(a[i])
                                         << " vs " << static_cast<double>(b[i]);
    }
  }
  return testing::AssertionSuccess();
}

// The final params are the servers' ranges laid end to end.
template <class T>
void expect_ranges_match(const PsRun<T>& run, const std::vector<T>& params) {
  for (std::size_t s = 0; s < run.ranges.size(); ++s) {
    const auto [lo, hi] = run.bounds[s];
    ASSERT_EQ(run.ranges[s].size(), hi - lo);
    EXPECT_TRUE(bit_identical(run.ranges[s],
                              std::vector<T>(params.begin() + static_cast<std::ptrdiff_t>(lo),
                                             params.begin() + static_cast<std::ptrdiff_t>(hi))))
        << "server " << s;
  }
}

template <class T>
double distance_to_optimum(const Problem& p, const std::vector<T>& params) {
  double d2 = 0.0;
  for (std::size_t j = 0; j < p.features; ++j) {
    const double e = static_cast<double>(params[j]) - p.w_true[j];
    d2 += e * e;
  }
  const double e = static_cast<double>(params[p.features]) - p.b_true;
  return std::sqrt(d2 + e * e);
}

// ---------------------------------------------------------------------------

TEST(KeyRanges, ContiguousAndBalanced) {
  for (std::size_t n : {0u, 1u, 2u, 7u, 10u, 101u, 1000u}) {
    for (int servers = 1; servers <= 7; ++servers) {
      const auto b = key_range_bounds(n, servers);
      ASSERT_EQ(b.size(), static_cast<std::size_t>(servers) + 1);
      EXPECT_EQ(b.front(), 0u);
      EXPECT_EQ(b.back(), n);
      std::size_t smallest = n, largest = 0;
      for (int s = 0; s < servers; ++s) {
        ASSERT_LE(b[s], b[s + 1]);
        smallest = std::min(smallest, b[s + 1] - b[s]);
        largest = std::max(largest, b[s + 1] - b[s]);
      }
      EXPECT_LE(largest - smallest, 1u) << n << " params, " << servers << " servers";
      // Balanced means every size is floor or ceil of n / servers.
      EXPECT_EQ(smallest, n / static_cast<std::size_t>(servers));
    }
  }
  EXPECT_EQ(key_range_bounds(10, 3), (std::vector<std::size_t>{0, 4, 7, 10}));
  EXPECT_THROW(key_range_bounds(10, 0), ConfigError);
}

TEST(PsConfigTest, RejectsBadSettings) {
  PsConfig c;
  c.num_params = 4;
  EXPECT_NO_THROW(c.validate(2));
  c.servers = 2;
  EXPECT_THROW(c.validate(2), ConfigError);  // no worker left
  c.servers = 1;
  c.staleness = -1;
  EXPECT_THROW(c.validate(2), ConfigError);
  c.staleness = 0;
  c.l2 = -1;
  EXPECT_THROW(c.validate(2), ConfigError);
  c.l2 = 0;
  c.penalized = {{0, 5}};
  EXPECT_THROW(c.validate(2), ConfigError);
}

TEST(PsConfigTest, RolesAreChecked) {
  PsConfig c;
  c.num_params = 3;
  const std::vector<double> init(3, 0.0);
  EXPECT_THROW(run_threads(world(2),
                           [&](Communicator& comm) {
                             if (comm.rank() == 1) PsServer<double> server(comm, c, init);
                           }),
               ConfigError);
  EXPECT_THROW(run_threads(world(2),
                           [&](Communicator& comm) {
                             if (comm.rank() == 0) PsClient<double> client(comm, c);
                           }),
               ConfigError);
}

template <class T>
class ParameterServerTyped : public testing::Test {};
using Scalars = testing::Types<float, double>;
TYPED_TEST_SUITE(ParameterServerTyped, Scalars);

// BSP through the servers is the trainer's allreduce step, bit for bit, for
// every split of the keys; several epochs in a row, every worker ending each
// with the same parameters.
TYPED_TEST(ParameterServerTyped, BspMatchesAllreduceBitForBit) {
  using T = TypeParam;
  Scenario s = make_scenario(/*rows=*/37, /*features=*/6, OptimizerKind::kMomentum, /*l2=*/0.01);
  s.epochs = 3;
  for (int workers = 1; workers <= 4; ++workers) {
    const auto reference = allreduce_reference<T>(s, workers);
    ASSERT_EQ(reference.size(), 3u);
    for (int servers = 1; servers <= 3; ++servers) {
      SCOPED_TRACE(std::to_string(workers) + " workers, " + std::to_string(servers) + " servers");
      RunOptions opt;
      opt.servers = servers;
      opt.workers = workers;
      const PsRun<T> run = run_ps<T>(s, opt);
      for (int w = 0; w < workers; ++w) {
        ASSERT_EQ(run.params[static_cast<std::size_t>(w)].size(), 3u);
        for (std::size_t e = 0; e < 3; ++e) {
          EXPECT_TRUE(bit_identical(run.params[static_cast<std::size_t>(w)][e], reference[e]))
              << "worker " << w << ", epoch " << e;
        }
      }
      expect_ranges_match(run, reference.back());
      // One update per step of the longest shard, on every server.
      const std::uint64_t steps = steps_of(shard_of(s.problem, 0, workers), s.batch);
      std::uint64_t pushes = 0;
      for (auto p : run.pushes) pushes += p;
      for (int r = 0; r < servers; ++r) {
        EXPECT_EQ(run.counters[static_cast<std::size_t>(r)].updates, pushes);
        EXPECT_EQ(run.counters[static_cast<std::size_t>(r)].max_staleness, 0u);
      }
      EXPECT_EQ(
          pushes, static_cast<std::uint64_t>(s.epochs) * [&] {
            std::uint64_t total = 0;
            for (int w = 0; w < workers; ++w)
              total += steps_of(shard_of(s.problem, w, workers), s.batch);
            return total;
          }());
      EXPECT_GT(steps, 0u);
    }
  }
  // The reference itself moves towards the optimum: the comparison is not
  // between two runs that do nothing.
  const auto reference = allreduce_reference<T>(s, 2);
  EXPECT_LT(distance_to_optimum(s.problem, reference.back()),
            distance_to_optimum(s.problem, initial_params<T>(s.problem.num_params())));
}

TYPED_TEST(ParameterServerTyped, SspWithZeroStalenessIsBsp) {
  using T = TypeParam;
  Scenario s = make_scenario(41, 5, OptimizerKind::kAdam, 0.02);
  RunOptions opt;
  opt.servers = 2;
  opt.workers = 3;
  const PsRun<T> bsp = run_ps<T>(s, opt);
  opt.mode = PsMode::kSsp;
  opt.staleness = 0;
  const PsRun<T> ssp = run_ps<T>(s, opt);
  for (std::size_t w = 0; w < 3; ++w) {
    for (std::size_t e = 0; e < bsp.params[w].size(); ++e) {
      EXPECT_TRUE(bit_identical(ssp.params[w][e], bsp.params[w][e])) << w << " " << e;
    }
  }
  EXPECT_TRUE(bit_identical(bsp.params[0].back(), allreduce_reference<T>(s, 3).back()));
}

TEST(ParameterServer, SspBoundsStalenessAndLetsFastWorkersRunAhead) {
  Scenario s = make_scenario(/*rows=*/120, /*features=*/4, OptimizerKind::kSgd, 0.0);
  s.batch = 2;  // 30 steps per worker and epoch
  s.epochs = 2;
  RunOptions opt;
  opt.servers = 2;
  opt.workers = 2;
  opt.mode = PsMode::kSsp;
  opt.staleness = 2;
  opt.slow_worker_delay = std::chrono::milliseconds(3);
  const PsRun<double> run = run_ps<double>(s, opt);

  for (int r = 0; r < opt.servers; ++r) {
    const SyncCounters& c = run.counters[static_cast<std::size_t>(r)];
    EXPECT_LE(c.max_staleness, 2u) << "server " << r;
    EXPECT_GT(c.max_staleness, 0u) << "server " << r;
    EXPECT_EQ(c.staleness_count, run.pushes[0] + run.pushes[1]);
    EXPECT_GT(c.mean_staleness(), 0.0);
  }
  const SyncCounters& fast = run.counters[static_cast<std::size_t>(opt.servers)];
  const SyncCounters& slow = run.counters[static_cast<std::size_t>(opt.servers + 1)];
  EXPECT_GT(fast.max_staleness, 0u);
  EXPECT_LE(fast.max_staleness, 2u);
  EXPECT_LE(slow.max_staleness, 2u);
  // BSP keeps the fast worker at most one completed step ahead; SSP(2) lets
  // it get up to three ahead (it may finish step t once step t - 2 of the
  // slow worker is in).
  EXPECT_GE(run.max_lead, 2);
  EXPECT_LE(run.max_lead, 3);
  EXPECT_TRUE(bit_identical(run.params[0].back(), run.params[1].back()));
  EXPECT_LT(distance_to_optimum(s.problem, run.params[0].back()),
            distance_to_optimum(s.problem, initial_params<double>(s.problem.num_params())));
}

TEST(ParameterServer, BspKeepsWorkersInLockstep) {
  Scenario s = make_scenario(120, 4, OptimizerKind::kSgd, 0.0);
  s.batch = 2;
  s.epochs = 1;
  RunOptions opt;
  opt.servers = 1;
  opt.workers = 2;
  opt.slow_worker_delay = std::chrono::milliseconds(1);
  const PsRun<double> run = run_ps<double>(s, opt);
  EXPECT_LE(run.max_lead, 1);
  EXPECT_EQ(run.counters[0].max_staleness, 0u);
}

TYPED_TEST(ParameterServerTyped, AspConvergesAndSeesStaleness) {
  using T = TypeParam;
  Scenario s = make_scenario(/*rows=*/64, /*features=*/4, OptimizerKind::kSgd, 0.0);
  s.batch = 4;
  s.epochs = 12;
  s.config.penalized.clear();
  RunOptions opt;
  opt.servers = 2;
  opt.workers = 2;
  opt.mode = PsMode::kAsp;
  opt.slow_worker_delay = std::chrono::microseconds(500);
  const PsRun<T> run = run_ps<T>(s, opt);

  const std::uint64_t pushes = run.pushes[0] + run.pushes[1];
  std::uint64_t server_max = 0;
  for (int r = 0; r < opt.servers; ++r) {
    const SyncCounters& c = run.counters[static_cast<std::size_t>(r)];
    EXPECT_EQ(c.updates, pushes) << "every push is its own update";
    EXPECT_EQ(c.staleness_count, pushes);
    server_max = std::max(server_max, c.max_staleness);
  }
  // While the slow worker computes, the fast one's pushes move the servers on.
  EXPECT_GT(server_max, 0u);
  const SyncCounters& slow = run.counters[static_cast<std::size_t>(opt.servers + 1)];
  EXPECT_GT(slow.max_staleness, 0u);
  // end_epoch leaves every worker with the same parameters, every epoch.
  for (int e = 0; e < s.epochs; ++e) {
    EXPECT_TRUE(bit_identical(run.params[0][static_cast<std::size_t>(e)],
                              run.params[1][static_cast<std::size_t>(e)]));
  }
  expect_ranges_match(run, run.params[0].back());
  const double start = distance_to_optimum(s.problem, initial_params<T>(s.problem.num_params()));
  const double end = distance_to_optimum(s.problem, run.params[0].back());
  EXPECT_LT(end, 0.05 * start) << "start " << start << ", end " << end;
}

TEST(ParameterServer, EachServerReceivesItsShareOfTheGradientBytes) {
  Scenario s = make_scenario(/*rows=*/40, /*features=*/2000, OptimizerKind::kSgd, 0.0);
  s.batch = 1;  // 20 steps per worker and epoch
  s.epochs = 2;
  RunOptions opt;
  opt.servers = 3;
  opt.workers = 2;
  const PsRun<float> run = run_ps<float>(s, opt);
  const std::size_t num_params = s.problem.num_params();  // 2001: ranges 667 each
  const std::uint64_t pushes = run.pushes[0] + run.pushes[1];
  const double gradient_bytes = static_cast<double>(pushes * num_params * sizeof(float));
  // One message per push, plus one end-of-epoch message per worker and epoch;
  // a message's header is small next to a range.
  const double messages = static_cast<double>(pushes + 2u * 2u);
  std::uint64_t received = 0;
  for (int r = 0; r < opt.servers; ++r) {
    const SyncCounters& c = run.counters[static_cast<std::size_t>(r)];
    const auto [lo, hi] = run.bounds[static_cast<std::size_t>(r)];
    const double range_bytes = static_cast<double>(hi - lo) * sizeof(float);
    const auto got = static_cast<double>(c.bytes_received);
    EXPECT_GE(got, static_cast<double>(pushes) * range_bytes) << "server " << r;
    EXPECT_LE(got, messages * (range_bytes + 64.0)) << "server " << r;
    // About a third of the gradient (within 10%: the ranges differ by at most
    // one parameter, and headers and end-of-epoch messages add a little).
    EXPECT_NEAR(got / (gradient_bytes / 3.0), 1.0, 0.1) << "server " << r;
    received += c.bytes_received;
  }
  // What the servers received is what the workers sent, and vice versa.
  std::uint64_t sent_by_workers = 0, received_by_workers = 0, sent_by_servers = 0;
  for (int r = opt.servers; r < opt.servers + opt.workers; ++r) {
    sent_by_workers += run.counters[static_cast<std::size_t>(r)].bytes_sent;
    received_by_workers += run.counters[static_cast<std::size_t>(r)].bytes_received;
  }
  for (int r = 0; r < opt.servers; ++r)
    sent_by_servers += run.counters[static_cast<std::size_t>(r)].bytes_sent;
  EXPECT_EQ(received, sent_by_workers);
  EXPECT_EQ(sent_by_servers, received_by_workers);
  for (const SyncCounters& c : run.counters) {
    EXPECT_GE(c.comm_s, 0.0);
    EXPECT_GE(c.wait_s, 0.0);
  }
}

}  // namespace
}  // namespace dtrain
