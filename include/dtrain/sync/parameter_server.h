// Parameter-server synchronisation (master-worker), after ps-lite.
//
// Ranks [0, S) are servers, ranks [S, size) are workers. The parameter vector
// is split into S contiguous key ranges (key_range_bounds); server s owns
// range s and an optimizer of its own for it, so optimizer state is sharded
// too. Workers hold a full copy of the parameters: each step a worker pushes
// its summed gradient (every server gets its range) and pulls the parameters
// to use next.
//
// Consistency models (a server's version is the number of updates it has
// applied so far; it is counted from construction, across epochs):
//  - kBsp: step t is applied once every worker has pushed its step t. The
//    slices are summed in worker rank order, scaled by 1 / total rows, given
//    the L2 term on the penalised indices and handed to the optimizer: the
//    same arithmetic, in the same order, as the trainer's allreduce step on
//    the threads backend, so the parameters match it bit for bit.
//  - kSsp(s): steps are aggregated exactly as in kBsp, but a worker that
//    pushed step t gets its pull answered as soon as the server has applied
//    steps 0..t-s (version >= t + 1 - s), so it runs at most s steps ahead of
//    the slowest worker. kSsp with staleness 0 is kBsp.
//  - kAsp: every push is applied on arrival, on its own, with that worker's
//    mean gradient, and answered at once.
//
// Staleness of a push is how many updates the parameters it was computed on
// lack: kAsp: server version when it is applied minus the version the
// worker's parameters had; kBsp/kSsp: the step minus that version (at most
// the staleness bound). Servers record the staleness of the pushes they
// apply; workers record that of their own pushes (kBsp/kSsp: against the
// oldest range they hold; kAsp: derived from the version each reply carries,
// which is one past the version the push was applied at).
//
// An epoch is one serve_epoch() on every server and, on every worker, any
// number of push_pull() calls followed by end_epoch(). A worker that ends
// its epoch early contributes nothing to the later steps of the others (as a
// worker whose rows ran out contributes empty batches to the trainer's
// steps). end_epoch() returns once every worker has ended the epoch and every
// pending step is applied, with the same final parameters on every worker.
//
// Only Communicator point-to-point calls are used, on tags kPsTagBase ..
// kPsTagBase + 2 (which the caller leaves to the protocol), so it runs on
// every backend. Every wait is bounded by the communicator's timeout: a server
// throws CommError when no message has come for that long.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/optim/optimizer.h"
#include "dtrain/sync/counters.h"

namespace dtrain {

enum class PsMode { kBsp, kAsp, kSsp };

const char* to_string(PsMode mode);

struct PsConfig {
  int servers = 1;
  PsMode mode = PsMode::kBsp;
  // kSsp: a worker may be at most this many steps ahead of the slowest.
  int staleness = 0;
  OptimizerConfig optimizer;
  double l2 = 0.0;
  // Index ranges [begin, end) of the parameters that L2 applies to (weights,
  // never biases).
  std::vector<std::pair<std::size_t, std::size_t>> penalized;
  std::size_t num_params = 0;

  // ConfigError naming the field: servers must be in [1, world_size - 1]
  // (at least one worker), staleness >= 0, l2 finite and >= 0, penalised
  // ranges within [0, num_params] with begin <= end; the optimizer config is
  // validated too.
  void validate(int world_size) const;
};

// First tag of the protocol; it uses kPsTagBase .. kPsTagBase + 2.
inline constexpr int kPsTagBase = 7000;

// S + 1 bounds; server s owns [b[s], b[s + 1]). The ranges are contiguous and
// balanced: their sizes differ by at most one, larger ones first.
// ConfigError if servers < 1.
std::vector<std::size_t> key_range_bounds(std::size_t num_params, int servers);

// Server side (ranks < config.servers).
template <class T>
class PsServer {
 public:
  // `initial_params` is the full parameter vector, identical on every rank;
  // only this server's range is kept. ConfigError for an invalid config or a
  // rank that is not a server; the communicator must outlive the server.
  PsServer(Communicator& comm, PsConfig config, std::span<const T> initial_params);
  ~PsServer();
  PsServer(const PsServer&) = delete;
  PsServer& operator=(const PsServer&) = delete;

  // Serves until every worker has called end_epoch(), then sends every worker
  // the final range and returns.
  void serve_epoch(SyncCounters& counters);

  // This server's current parameter range.
  std::span<const T> range() const;
  // [begin, end) of that range in the full vector.
  std::pair<std::size_t, std::size_t> bounds() const;
  // Updates applied so far.
  std::uint64_t version() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Worker side (ranks >= config.servers).
template <class T>
class PsClient {
 public:
  // ConfigError for an invalid config or a rank that is not a worker.
  PsClient(Communicator& comm, PsConfig config);
  ~PsClient();
  PsClient(const PsClient&) = delete;
  PsClient& operator=(const PsClient&) = delete;

  // One step: pushes this worker's summed gradient over its batch
  // (grad_sums.size() == num_params) with its row count, summed loss and the
  // learning rate of the step to every server (each gets its range), then
  // receives the parameters to use next into `params` (full vector), blocking
  // as the mode requires. Returns the version of the parameters received
  // (the oldest of the servers' ranges).
  std::uint64_t push_pull(std::span<const T> grad_sums, double rows, double loss, double lr,
                          std::span<T> params, SyncCounters& counters);

  // After the epoch's last push_pull: tells the servers, and receives the
  // final parameters of the epoch (identical on every worker) into params.
  void end_epoch(std::span<T> params, SyncCounters& counters);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

extern template class PsServer<float>;
extern template class PsServer<double>;
extern template class PsClient<float>;
extern template class PsClient<double>;

}  // namespace dtrain
