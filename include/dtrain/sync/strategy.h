// Synchronisation strategies: how each worker's gradient becomes a parameter
// update, and who waits for whom.
//
// The trainer computes a worker's gradient sums over its batch and hands them
// to a SyncStrategy, which updates the worker's parameters:
//   bsp         peers allreduce the gradient, every replica applies the same
//               update (bulk-synchronous; the foundation's behaviour); a
//               sparse gradient moves as (index, value) pairs
//   local:H     every worker updates its own replica; every H steps the
//               replicas are averaged (local SGD / periodic model averaging);
//               local:inf averages once, at the end of training
//   gossip      every worker updates its own replica, then averages it with
//               its neighbours (a ring, or a random pairing each step); there
//               is no global collective
//   bsp|asp|ssp:S under master-worker: servers own the parameters by key
//               range and apply the updates (parameter_server.h)
// Each strategy records, per worker, the time spent computing, communicating
// and waiting, the bytes moved, the staleness observed and (for the
// strategies whose replicas differ) the disagreement between replicas.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/optim/optimizer.h"
#include "dtrain/sync/counters.h"
#include "dtrain/sync/parameter_server.h"
#include "dtrain/sync/updater.h"

namespace dtrain {

enum class Schedule {
  kPeerToPeer,    // no coordinator: collectives between peers
  kMasterWorker,  // server ranks own the model; workers push and pull
};
// "p2p" | "master-worker"; ConfigError otherwise.
Schedule parse_schedule(std::string_view name);
const char* to_string(Schedule schedule);

enum class Topology { kRing, kRandom };
// "ring" | "random"; ConfigError otherwise.
Topology parse_topology(std::string_view name);
const char* to_string(Topology topology);

struct SyncSpec {
  enum class Kind { kBsp, kAsp, kSsp, kLocal, kGossip };
  Kind kind = Kind::kBsp;
  int staleness = 0;               // kSsp
  std::optional<int> local_steps;  // kLocal: H, or nullopt for local:inf

  // "bsp" | "asp" | "ssp:S" | "local:H" | "local:inf" | "gossip"
  static SyncSpec parse(std::string_view text);
  std::string to_string() const;
  // asp and ssp need servers; local and gossip need peers. ConfigError for
  // a combination that does not exist.
  void check_schedule(Schedule schedule) const;
};

// The step's contribution of one worker: gradient sums of its batch.
template <class T>
struct LocalStep {
  // Gradient sums over the batch (P values) followed by two spare slots the
  // strategy may use (bsp puts the loss and row count there, so that one
  // collective moves everything). The strategy may modify all of it.
  std::span<T> grad;
  double loss = 0.0;  // summed loss of the batch
  double rows = 0.0;  // batch rows (0 when this worker's rows ran out)
  double lr = 0.0;
  std::uint64_t step = 0;  // steps since training began
  // A sparse step, only for a strategy that takes_sparse_steps(), and then on
  // every rank alike: grad is zero outside `touched` (the indices of the
  // parameters the batch's gradient reaches, each once, in any order, empty
  // for an empty batch), and the strategy reads grad there only and writes
  // none of it, so the caller need only clear those entries for the next step.
  bool sparse = false;
  std::span<const std::size_t> touched;
};

template <class T>
class SyncStrategy {
 public:
  virtual ~SyncStrategy() = default;
  virtual std::string name() const = 0;
  // Called on every worker every step (SPMD over the workers). Updates
  // params and returns the L2 penalty of the parameters the step started
  // from (the trainer reports mean loss + penalty).
  virtual double step(Communicator& comm, std::span<T> params, LocalStep<T> local,
                      SyncCounters& counters) = 0;
  // After the last step of an epoch.
  virtual void end_epoch(Communicator& /*comm*/, std::span<T> /*params*/,
                         SyncCounters& /*counters*/) {}
  // After the last epoch: local:H and local:inf average the replicas here.
  virtual void finish(Communicator& /*comm*/, std::span<T> /*params*/, SyncCounters& /*counters*/) {
  }
  // Whether the replicas may differ (local SGD, gossip), which makes the
  // disagreement between them worth measuring.
  virtual bool replicas_differ() const { return false; }
  // Whether step() accepts sparse steps (LocalStep::sparse), moving and
  // updating only the touched parameters with the same result as a dense
  // step: bsp when the update rule skips zero gradients (plain SGD or
  // AdaGrad, no L2 term, no clipping).
  virtual bool takes_sparse_steps() const { return false; }
};

// The peer-to-peer strategies (bsp, local, gossip). `seed` drives gossip's
// random pairings.
template <class T>
std::unique_ptr<SyncStrategy<T>> make_peer_strategy(const SyncSpec& spec, Topology topology,
                                                    std::uint64_t seed,
                                                    std::unique_ptr<Updater<T>> updater);

// A master-worker worker's side: pushes its gradient to the servers and
// pulls the parameters each step (PsClient). Call on worker ranks only.
template <class T>
std::unique_ptr<SyncStrategy<T>> make_ps_worker_strategy(Communicator& comm,
                                                         const PsConfig& config);

// Bytes a ring allreduce of `bytes` moves in and out of each of `ranks`
// ranks: 2 (N - 1) / N x bytes (reduce-scatter then allgather). The threads
// backend moves memory, not messages, but the same count keeps strategies
// comparable across backends.
std::uint64_t allreduce_bytes_per_rank(std::uint64_t bytes, int ranks);

}  // namespace dtrain
