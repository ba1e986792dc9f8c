// The peer-to-peer synchronisation strategies: bsp, local SGD, gossip.
#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <numeric>

#include "dtrain/data/partition.h"
#include "dtrain/error.h"
#include "dtrain/sync/strategy.h"
#include "dtrain/util/aligned_vector.h"
#include "dtrain/util/distinct_indices.h"

namespace dtrain {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Parses a non-negative integer argument of a sync spec ("ssp:3").
int parse_count(std::string_view text, std::string_view whole) {
  int value = 0;
  if (text.empty()) throw ConfigError("--sync " + std::string(whole) + ": missing number");
  for (const char c : text) {
    if (c < '0' || c > '9' || value > 1'000'000) {
      throw ConfigError("--sync " + std::string(whole) + ": '" + std::string(text) +
                        "' is not a non-negative integer");
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

Schedule parse_schedule(std::string_view name) {
  if (name == "p2p") return Schedule::kPeerToPeer;
  if (name == "master-worker") return Schedule::kMasterWorker;
  throw ConfigError("unknown schedule '" + std::string(name) + "' (expected p2p or master-worker)");
}

const char* to_string(Schedule schedule) {
  return schedule == Schedule::kPeerToPeer ? "p2p" : "master-worker";
}

Topology parse_topology(std::string_view name) {
  if (name == "ring") return Topology::kRing;
  if (name == "random") return Topology::kRandom;
  throw ConfigError("unknown topology '" + std::string(name) + "' (expected ring or random)");
}

const char* to_string(Topology topology) { return topology == Topology::kRing ? "ring" : "random"; }

SyncSpec SyncSpec::parse(std::string_view text) {
  SyncSpec spec;
  const auto colon = text.find(':');
  const std::string_view head = text.substr(0, colon);
  const std::string_view arg = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  const bool has_arg = colon != std::string_view::npos;
  if (head == "bsp" && !has_arg) {
    spec.kind = Kind::kBsp;
  } else if (head == "asp" && !has_arg) {
    spec.kind = Kind::kAsp;
  } else if (head == "gossip" && !has_arg) {
    spec.kind = Kind::kGossip;
  } else if (head == "ssp" && has_arg) {
    spec.kind = Kind::kSsp;
    spec.staleness = parse_count(arg, text);
  } else if (head == "local" && has_arg) {
    spec.kind = Kind::kLocal;
    if (arg != "inf") {
      spec.local_steps = parse_count(arg, text);
      if (*spec.local_steps < 1) throw ConfigError("--sync local:H needs H >= 1");
    }
  } else {
    throw ConfigError("unknown sync strategy '" + std::string(text) +
                      "' (expected bsp, asp, ssp:S, local:H, local:inf or gossip)");
  }
  return spec;
}

std::string SyncSpec::to_string() const {
  switch (kind) {
    case Kind::kBsp:
      return "bsp";
    case Kind::kAsp:
      return "asp";
    case Kind::kSsp:
      return "ssp:" + std::to_string(staleness);
    case Kind::kLocal:
      return local_steps ? "local:" + std::to_string(*local_steps) : "local:inf";
    case Kind::kGossip:
      return "gossip";
  }
  return "?";
}

void SyncSpec::check_schedule(Schedule schedule) const {
  const bool needs_servers = kind == Kind::kAsp || kind == Kind::kSsp;
  const bool needs_peers = kind == Kind::kLocal || kind == Kind::kGossip;
  if (needs_servers && schedule != Schedule::kMasterWorker) {
    throw ConfigError("--sync " + to_string() +
                      " is a parameter-server strategy: use --schedule master-worker");
  }
  if (needs_peers && schedule != Schedule::kPeerToPeer) {
    throw ConfigError("--sync " + to_string() + " has no coordinator: use --schedule p2p");
  }
}

std::uint64_t allreduce_bytes_per_rank(std::uint64_t bytes, int ranks) {
  if (ranks <= 1) return 0;
  const auto n = static_cast<std::uint64_t>(ranks);
  return 2 * (n - 1) * bytes / n;
}

namespace {

// Counts an allreduce of `bytes` (or a reduce-scatter plus allgather of them)
// in and out of this rank.
void count_allreduce(std::size_t bytes, int ranks, SyncCounters& counters) {
  const auto moved = allreduce_bytes_per_rank(bytes, ranks);
  counters.bytes_sent += moved;
  counters.bytes_received += moved;
}

// ---- bsp: sharded update between a reduce-scatter and an allgather ----------
//
// An allreduce is a reduce-scatter followed by an allgather. Every replica
// would then apply the same update to the whole model; instead each rank
// updates only the slice whose gradient sum the reduce-scatter left it, and
// the allgather moves updated parameters rather than summed gradients
// (weight-update sharding, as in ZeRO stage 1). The bytes moved are those of
// one allreduce, the update costs 1/N of the full one per rank, and each rank
// keeps optimizer state for its slice only. The sums are the same, in rank
// order, and the update is elementwise, so the result equals every replica
// updating everything, bit for bit (clipping aside: its norm is summed per
// slice).
//
// The P parameters split into N slices of floor(P / N) plus a tail of
// P mod N (< N) values. The tail's gradient sums travel with the batch's
// loss and row count in one small allreduce that comes first, so they sit in
// the spare slots after the gradient without copying; every rank updates the
// tail itself. That first collective is also where a rank waits for the
// slowest peer, so its time is counted as waiting.

template <class T>
class ShardedBsp final : public SyncStrategy<T> {
 public:
  explicit ShardedBsp(std::unique_ptr<Updater<T>> updater) : updater_(std::move(updater)) {}
  std::string name() const override { return "bsp"; }
  bool takes_sparse_steps() const override { return updater_->skips_zero_gradients(); }

  double step(Communicator& comm, std::span<T> params, LocalStep<T> local,
              SyncCounters& counters) override {
    const std::size_t p = params.size();
    assert(local.grad.size() == p + 2);
    if (local.sparse) return sparse_step(comm, params, local, counters);
    const auto n = static_cast<std::size_t>(comm.size());
    if (n == 1) {
      auto t0 = Clock::now();
      const double penalty = updater_->apply(params, local.grad.first(p), local.rows, local.lr);
      counters.compute_s += seconds_since(t0);
      return penalty;
    }
    const std::size_t slice = p / n;
    const std::size_t sliced = slice * n;
    const std::size_t begin = static_cast<std::size_t>(comm.rank()) * slice;
    if (!slice_updater_) {
      slice_updater_ = updater_->for_slice(begin, begin + slice);
      tail_updater_ = updater_->for_slice(sliced, p);
      slice_grad_.resize(slice);
    }
    local.grad[p] = static_cast<T>(local.loss);
    local.grad[p + 1] = static_cast<T>(local.rows);
    const std::span<T> small = local.grad.subspan(sliced);  // tail, loss, rows

    auto t0 = Clock::now();
    comm.allreduce(small, ReduceOp::kSum);
    counters.wait_s += seconds_since(t0);
    count_allreduce(small.size_bytes(), comm.size(), counters);
    const double rows = static_cast<double>(local.grad[p + 1]);
    if (rows <= 0) return 0.0;  // every rank sees the same count

    t0 = Clock::now();
    const double penalty = updater_->penalty(params);  // before the step
    counters.compute_s += seconds_since(t0);
    const std::span<T> my_params = params.subspan(begin, slice);
    const std::span<T> tail_params = params.subspan(sliced);
    const std::span<T> tail_grad = local.grad.subspan(sliced, p - sliced);
    if (updater_->takes_sums_as_read()) {
      // The optimizer reads the reduced sums where the reduce-scatter leaves
      // them (on the threads backend, in the ranks' own gradient buffers),
      // so the slice's gradient is neither written nor scaled in a pass of
      // its own. Same sums, same rounding: the parameters are the two-pass
      // path's, bit for bit.
      t0 = Clock::now();
      double update_seconds = 0.0;
      comm.reduce_scatter_sum_to(
          std::span<const T>(local.grad.first(sliced)), std::span<T>(slice_grad_),
          [&](std::span<const T> sums, std::span<const T> addend) {
            const auto u0 = Clock::now();
            slice_updater_->apply_sum(my_params, sums, addend, rows, local.lr);
            update_seconds = seconds_since(u0);
          });
      counters.comm_s += seconds_since(t0) - update_seconds;
      t0 = Clock::now();
      tail_updater_->apply(tail_params, tail_grad, rows, local.lr);
      counters.compute_s += update_seconds + seconds_since(t0);
    } else {
      t0 = Clock::now();
      comm.reduce_scatter(std::span<const T>(local.grad.first(sliced)), std::span<T>(slice_grad_),
                          ReduceOp::kSum);
      counters.comm_s += seconds_since(t0);
      descend_in_place(comm, local, rows, my_params, tail_params, tail_grad, counters);
    }

    t0 = Clock::now();
    comm.allgather(std::span<const T>(my_params), params.first(sliced));
    counters.comm_s += seconds_since(t0);
    // A reduce-scatter and an allgather move what one allreduce would.
    count_allreduce(sliced * sizeof(T), comm.size(), counters);
    return penalty;
  }

 private:
  // The update of the slice from slice_grad_, which holds the reduced sums,
  // and of the tail: the mean and the L2 term in place, then clipping by the
  // norm of the whole gradient (one more allreduce), then the step.
  void descend_in_place(Communicator& comm, const LocalStep<T>& local, double rows,
                        std::span<T> my_params, std::span<T> tail_params, std::span<T> tail_grad,
                        SyncCounters& counters) {
    auto t0 = Clock::now();
    slice_updater_->prepare(my_params, slice_grad_, rows);
    tail_updater_->prepare(tail_params, tail_grad, rows);
    double norm = 0.0;
    if (updater_->clips()) {
      double sum = sum_of_squares<T>(slice_grad_);
      counters.compute_s += seconds_since(t0);
      t0 = Clock::now();
      comm.allreduce(std::span<double>(&sum, 1), ReduceOp::kSum);
      counters.comm_s += seconds_since(t0);
      count_allreduce(sizeof sum, comm.size(), counters);
      t0 = Clock::now();
      norm = std::sqrt(sum + sum_of_squares<T>(tail_grad));
    }
    slice_updater_->descend(my_params, slice_grad_, local.lr, norm);
    tail_updater_->descend(tail_params, tail_grad, local.lr, norm);
    counters.compute_s += seconds_since(t0);
  }

  // A sparse gradient (a batch of sparse logistic regression over hashed or
  // LibSVM features touches thousands of weights out of millions): the
  // ranks gather the indices each batch touched, allreduce the gradient sums
  // over their union only, and every rank updates the union. The update rule
  // skips zero gradients, so the parameters no rank touched keep their
  // values, as a dense step would leave them; the union's sums are the same
  // elementwise sums in rank order. Each rank moves and updates O(touched)
  // values instead of O(P), and clears nothing.
  double sparse_step(Communicator& comm, std::span<T> params, const LocalStep<T>& local,
                     SyncCounters& counters) {
    assert(updater_->skips_zero_gradients());
    const auto n = static_cast<std::size_t>(comm.size());
    std::span<const std::size_t> indices = local.touched;
    if (n == 1) {
      const auto t0 = Clock::now();
      gather_values(local.grad, indices);
      updater_->apply_at(params, indices, std::span<T>(values_).first(indices.size()), local.rows,
                         local.lr);
      counters.compute_s += seconds_since(t0);
      return 0.0;
    }
    // The counts: also where a rank waits for the slowest peer.
    auto t0 = Clock::now();
    counts_.resize(n);
    const std::size_t mine = local.touched.size();
    comm.allgather(std::span<const std::size_t>(&mine, 1), std::span<std::size_t>(counts_));
    counters.wait_s += seconds_since(t0);

    t0 = Clock::now();
    std::size_t total = 0;
    for (const std::size_t c : counts_) total += c;
    gathered_.resize(total);
    comm.allgatherv(local.touched, std::span<std::size_t>(gathered_),
                    std::span<const std::size_t>(counts_));
    counters.comm_s += seconds_since(t0);

    // The union in order of first appearance (rank by rank): the same list
    // on every rank, without sorting.
    t0 = Clock::now();
    distinct_.start(params.size(), union_);
    for (const std::size_t j : gathered_) distinct_.add(j);
    distinct_.finish();
    indices = union_;
    gather_values(local.grad, indices);
    const std::size_t m = indices.size();
    values_[m] = static_cast<T>(local.loss);
    values_[m + 1] = static_cast<T>(local.rows);
    counters.compute_s += seconds_since(t0);

    t0 = Clock::now();
    comm.allreduce(std::span<T>(values_), ReduceOp::kSum);
    counters.comm_s += seconds_since(t0);
    count_allreduce(values_.size() * sizeof(T), comm.size(), counters);
    const std::uint64_t index_bytes = sizeof(std::size_t);
    counters.bytes_sent += (n - 1) * mine * index_bytes;
    counters.bytes_received += (total - mine) * index_bytes;

    const double rows = static_cast<double>(values_[m + 1]);
    if (rows <= 0) return 0.0;  // every rank sees the same count
    t0 = Clock::now();
    updater_->apply_at(params, indices, std::span<T>(values_).first(m), rows, local.lr);
    counters.compute_s += seconds_since(t0);
    return 0.0;  // no L2 term: skips_zero_gradients() rules it out
  }

  // values_ = grad at `indices`, plus the two slots after them.
  void gather_values(std::span<const T> grad, std::span<const std::size_t> indices) {
    values_.resize(indices.size() + 2);
    for (std::size_t k = 0; k < indices.size(); ++k) values_[k] = grad[indices[k]];
  }

  std::unique_ptr<Updater<T>> updater_;  // the whole model's rule
  std::unique_ptr<Updater<T>> slice_updater_;
  std::unique_ptr<Updater<T>> tail_updater_;
  AlignedVector<T> slice_grad_;
  // Sparse steps: every rank's index count and indices, their union (and
  // what builds it), and the gradient sums over the union followed by the
  // loss and the row count.
  std::vector<std::size_t> counts_;
  std::vector<std::size_t> gathered_;
  std::vector<std::size_t> union_;
  DistinctIndices distinct_;
  std::vector<T> values_;
};

// Replaces every worker's params by the mean over the workers.
template <class T>
void average_replicas(Communicator& comm, std::span<T> params, SyncCounters& counters) {
  if (comm.size() == 1) return;
  auto t0 = Clock::now();
  comm.barrier();
  counters.wait_s += seconds_since(t0);
  t0 = Clock::now();
  comm.allreduce(params, ReduceOp::kSum);
  const T inv = static_cast<T>(1.0 / comm.size());
  for (T& v : params) v *= inv;
  counters.comm_s += seconds_since(t0);
  const auto bytes = allreduce_bytes_per_rank(params.size_bytes(), comm.size());
  counters.bytes_sent += bytes;
  counters.bytes_received += bytes;
}

// ---- local SGD: average every H steps, or once at the end ---------------------

template <class T>
class LocalSgd final : public SyncStrategy<T> {
 public:
  LocalSgd(std::optional<int> every, std::unique_ptr<Updater<T>> updater)
      : every_(every), updater_(std::move(updater)) {}
  std::string name() const override {
    return every_ ? "local:" + std::to_string(*every_) : "local:inf";
  }
  bool replicas_differ() const override { return true; }

  double step(Communicator& comm, std::span<T> params, LocalStep<T> local,
              SyncCounters& counters) override {
    const auto t0 = Clock::now();
    const double penalty =
        updater_->apply(params, local.grad.first(params.size()), local.rows, local.lr);
    counters.compute_s += seconds_since(t0);
    // Every worker counts every step, empty batches included, so all reach
    // the averaging steps together.
    ++steps_;
    if (every_ && steps_ % static_cast<std::uint64_t>(*every_) == 0) {
      average_replicas(comm, params, counters);
      averaged_at_ = steps_;
    }
    return penalty;
  }

  void finish(Communicator& comm, std::span<T> params, SyncCounters& counters) override {
    if (averaged_at_ != steps_) average_replicas(comm, params, counters);
  }

 private:
  std::optional<int> every_;
  std::unique_ptr<Updater<T>> updater_;
  std::uint64_t steps_ = 0;
  std::uint64_t averaged_at_ = 0;
};

// ---- gossip: average with neighbours, no global collective ---------------------

constexpr int kGossipTag = 7100;

template <class T>
class Gossip final : public SyncStrategy<T> {
 public:
  Gossip(Topology topology, std::uint64_t seed, std::unique_ptr<Updater<T>> updater)
      : topology_(topology), seed_(seed), updater_(std::move(updater)) {}
  std::string name() const override { return std::string("gossip/") + to_string(topology_); }
  bool replicas_differ() const override { return true; }

  double step(Communicator& comm, std::span<T> params, LocalStep<T> local,
              SyncCounters& counters) override {
    auto t0 = Clock::now();
    const double penalty =
        updater_->apply(params, local.grad.first(params.size()), local.rows, local.lr);
    counters.compute_s += seconds_since(t0);
    t0 = Clock::now();
    const std::vector<int> peers = neighbours(comm, local.step);
    if (!peers.empty()) exchange_and_average(comm, params, peers, counters);
    counters.comm_s += seconds_since(t0);
    return penalty;
  }

 private:
  // Ring: left and right (one peer when there are two ranks). Random: a
  // perfect matching drawn from (seed, step), the same on every rank; with
  // an odd count one rank sits the step out.
  std::vector<int> neighbours(const Communicator& comm, std::uint64_t step) const {
    const int n = comm.size();
    const int r = comm.rank();
    if (n == 1) return {};
    if (topology_ == Topology::kRing) {
      const int left = (r + n - 1) % n;
      const int right = (r + 1) % n;
      return left == right ? std::vector<int>{left} : std::vector<int>{left, right};
    }
    std::vector<std::uint64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), std::uint64_t{0});
    seeded_shuffle(order, mix64(seed_ ^ mix64(step + 0x5eed)));
    for (std::size_t i = 0; i + 1 < order.size(); i += 2) {
      if (order[i] == static_cast<std::uint64_t>(r)) return {static_cast<int>(order[i + 1])};
      if (order[i + 1] == static_cast<std::uint64_t>(r)) return {static_cast<int>(order[i])};
    }
    return {};
  }

  void exchange_and_average(Communicator& comm, std::span<T> params, const std::vector<int>& peers,
                            SyncCounters& counters) {
    inbox_.resize(peers.size() * params.size());
    std::vector<Request> requests;
    requests.reserve(2 * peers.size());
    for (std::size_t i = 0; i < peers.size(); ++i) {
      requests.push_back(comm.irecv(std::span<T>(inbox_).subspan(i * params.size(), params.size()),
                                    peers[i], kGossipTag));
    }
    for (const int peer : peers) {
      requests.push_back(comm.isend(std::span<const T>(params), peer, kGossipTag));
    }
    for (auto& request : requests) request.wait();
    const auto bytes = peers.size() * params.size_bytes();
    counters.bytes_sent += bytes;
    counters.bytes_received += bytes;
    const T weight = static_cast<T>(1.0 / static_cast<double>(peers.size() + 1));
    for (std::size_t j = 0; j < params.size(); ++j) {
      T sum = params[j];
      for (std::size_t i = 0; i < peers.size(); ++i) sum += inbox_[i * params.size() + j];
      params[j] = sum * weight;
    }
  }

  Topology topology_;
  std::uint64_t seed_;
  std::unique_ptr<Updater<T>> updater_;
  std::vector<T> inbox_;

 public:
  // The trained model is the replicas' mean, as for local SGD.
  void finish(Communicator& comm, std::span<T> params, SyncCounters& counters) override {
    average_replicas(comm, params, counters);
  }
};

}  // namespace

template <class T>
std::unique_ptr<SyncStrategy<T>> make_peer_strategy(const SyncSpec& spec, Topology topology,
                                                    std::uint64_t seed,
                                                    std::unique_ptr<Updater<T>> updater) {
  spec.check_schedule(Schedule::kPeerToPeer);
  switch (spec.kind) {
    case SyncSpec::Kind::kBsp:
      return std::make_unique<ShardedBsp<T>>(std::move(updater));
    case SyncSpec::Kind::kLocal:
      return std::make_unique<LocalSgd<T>>(spec.local_steps, std::move(updater));
    case SyncSpec::Kind::kGossip:
      return std::make_unique<Gossip<T>>(topology, seed, std::move(updater));
    case SyncSpec::Kind::kAsp:
    case SyncSpec::Kind::kSsp:
      break;
  }
  throw ConfigError("--sync " + spec.to_string() + " needs --schedule master-worker");
}

template std::unique_ptr<SyncStrategy<float>> make_peer_strategy<float>(
    const SyncSpec&, Topology, std::uint64_t, std::unique_ptr<Updater<float>>);
template std::unique_ptr<SyncStrategy<double>> make_peer_strategy<double>(
    const SyncSpec&, Topology, std::uint64_t, std::unique_ptr<Updater<double>>);

}  // namespace dtrain
