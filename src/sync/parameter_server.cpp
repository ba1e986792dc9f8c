#include "dtrain/sync/parameter_server.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <string>
#include <thread>

#include "dtrain/error.h"
#include "dtrain/sync/updater.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

// Worker -> server: a push (or, with `end` set, the end of the worker's
// epoch), then the server's range of the gradient sums. Every message on a
// tag has the same size, so a receive can always be posted in advance.
constexpr int kPushTag = kPsTagBase;
// Server -> worker: the answer to a pull, then the server's range.
constexpr int kReplyTag = kPsTagBase + 1;
// Server -> worker: the final range of an epoch. A tag of its own, so that a
// worker's end_epoch() can never take a reply for a pull.
constexpr int kFinalTag = kPsTagBase + 2;

struct PushHeader {
  std::uint64_t step;     // 0-based step of this worker within the epoch
  std::uint64_t version;  // version of the server's range the gradient was computed on
  std::uint64_t end;      // 1: no gradient, the worker has ended its epoch
  double rows;
  double loss;
  double lr;
};

struct ReplyHeader {
  std::uint64_t version;  // updates the range includes
  std::uint64_t reserved;
};

template <class T>
std::size_t push_message_bytes(std::size_t count) {
  return sizeof(PushHeader) + count * sizeof(T);
}
template <class T>
std::size_t reply_message_bytes(std::size_t count) {
  return sizeof(ReplyHeader) + count * sizeof(T);
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void record_staleness(SyncCounters& counters, std::uint64_t staleness) {
  counters.max_staleness = std::max(counters.max_staleness, staleness);
  counters.staleness_sum += static_cast<double>(staleness);
  ++counters.staleness_count;
}

std::string rank_prefix(const Communicator& comm) {
  return "rank " + std::to_string(comm.rank()) + ": ";
}

// How an idle server waits for the next message: a short spin, then yields
// (on the threads backend every rank is a thread, usually more of them than
// cores, and a yield lets a worker that shares this core run), then short
// sleeps so that a long idle stretch does not burn a core.
void back_off(int idle_polls) {
  constexpr int kSpinPolls = 64;
  constexpr int kYieldPolls = kSpinPolls + 256;
  if (idle_polls < kSpinPolls) return;
  if (idle_polls < kYieldPolls) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

const char* to_string(PsMode mode) {
  switch (mode) {
    case PsMode::kBsp:
      return "bsp";
    case PsMode::kAsp:
      return "asp";
    case PsMode::kSsp:
      return "ssp";
  }
  return "?";
}

void PsConfig::validate(int world_size) const {
  if (servers < 1 || servers >= world_size) {
    throw ConfigError("parameter server: servers must be in [1, " + std::to_string(world_size - 1) +
                      "] for " + std::to_string(world_size) + " ranks (at least one worker), got " +
                      std::to_string(servers));
  }
  if (staleness < 0) {
    throw ConfigError("parameter server: staleness must be >= 0, got " + std::to_string(staleness));
  }
  if (!(l2 >= 0.0) || !std::isfinite(l2)) {
    throw ConfigError("parameter server: l2 must be a finite number >= 0, got " +
                      std::to_string(l2));
  }
  for (const auto& [begin, end] : penalized) {
    if (begin > end || end > num_params) {
      throw ConfigError("parameter server: penalized range [" + std::to_string(begin) + ", " +
                        std::to_string(end) + ") is not within [0, " + std::to_string(num_params) +
                        ")");
    }
  }
  optimizer.validate();
}

std::vector<std::size_t> key_range_bounds(std::size_t num_params, int servers) {
  if (servers < 1) {
    throw ConfigError("key ranges need at least one server, got " + std::to_string(servers));
  }
  const auto count = static_cast<std::size_t>(servers);
  const std::size_t base = num_params / count;
  const std::size_t extra = num_params % count;
  std::vector<std::size_t> bounds(count + 1, 0);
  for (std::size_t s = 0; s < count; ++s) bounds[s + 1] = bounds[s] + base + (s < extra ? 1 : 0);
  return bounds;
}

// ---------------------------------------------------------------------------
// Server

template <class T>
struct PsServer<T>::State {
  Communicator& comm;
  PsConfig config;
  int workers = 0;
  std::size_t lo = 0, hi = 0;
  std::vector<T> params;                // [lo, hi)
  std::unique_ptr<Updater<T>> updater;  // the trainer's update rule, on [lo, hi)
  std::uint64_t version = 0;
  std::vector<T> grad;  // scratch: the combined gradient of one update

  State(Communicator& c, PsConfig cfg) : comm(c), config(std::move(cfg)) {}

  std::size_t count() const { return hi - lo; }

  // Mean gradient in `grad` -> L2 -> optimizer step; rows == 0 leaves the
  // parameters alone (the trainer skips such a step too) but still counts.
  void apply(double rows, double lr) {
    if (rows != 0) {
      updater->apply(params, grad, rows, lr);
    }
    ++version;
  }
};

namespace {

// One worker's side of a server's epoch. The receive buffer is declared
// before the request so that an incomplete request (an exception unwinding
// serve_epoch) is waited for or cancelled before its buffer goes.
template <class T>
struct Push {
  PushHeader header{};
  std::vector<T> grad;
};

template <class T>
struct WorkerSlot {
  std::vector<std::byte> inbox;
  Request receive;
  bool ended = false;
  std::uint64_t pushed = 0;   // pushes received this epoch
  std::deque<Push<T>> queue;  // kBsp/kSsp: received, not yet applied
  bool pull_pending = false;  // kBsp/kSsp: waiting for its reply
  std::uint64_t pull_step = 0;
};

struct Outgoing {
  std::vector<std::byte> bytes;
  Request request;
};

}  // namespace

template <class T>
PsServer<T>::PsServer(Communicator& comm, PsConfig config, std::span<const T> initial_params)
    : state_(std::make_unique<State>(comm, std::move(config))) {
  State& st = *state_;
  st.config.validate(comm.size());
  if (comm.rank() >= st.config.servers) {
    throw ConfigError(rank_prefix(comm) + "is a worker, not a parameter server (servers: " +
                      std::to_string(st.config.servers) + ")");
  }
  if (initial_params.size() != st.config.num_params) {
    throw ConfigError(rank_prefix(comm) + "parameter server got " +
                      std::to_string(initial_params.size()) + " initial parameters, expected " +
                      std::to_string(st.config.num_params));
  }
  const auto bounds = key_range_bounds(st.config.num_params, st.config.servers);
  const auto s = static_cast<std::size_t>(comm.rank());
  st.lo = bounds[s];
  st.hi = bounds[s + 1];
  st.workers = comm.size() - st.config.servers;
  st.params.assign(initial_params.begin() + static_cast<std::ptrdiff_t>(st.lo),
                   initial_params.begin() + static_cast<std::ptrdiff_t>(st.hi));
  st.grad.resize(st.count());
  st.updater = Updater<T>(st.config.optimizer, st.config.l2, st.config.penalized, /*clip_norm=*/0.0)
                   .for_slice(st.lo, st.hi);
}

template <class T>
PsServer<T>::~PsServer() = default;

template <class T>
std::span<const T> PsServer<T>::range() const {
  return state_->params;
}

template <class T>
std::pair<std::size_t, std::size_t> PsServer<T>::bounds() const {
  return {state_->lo, state_->hi};
}

template <class T>
std::uint64_t PsServer<T>::version() const {
  return state_->version;
}

template <class T>
void PsServer<T>::serve_epoch(SyncCounters& counters) {
  State& st = *state_;
  Communicator& comm = st.comm;
  const std::size_t n = st.count();
  const int servers = st.config.servers;
  const bool async = st.config.mode == PsMode::kAsp;
  const std::uint64_t slack =
      st.config.mode == PsMode::kSsp ? static_cast<std::uint64_t>(st.config.staleness) : 0;
  const std::uint64_t epoch_base = st.version;
  const std::size_t in_bytes = push_message_bytes<T>(n);
  const std::size_t out_bytes = reply_message_bytes<T>(n);

  std::vector<WorkerSlot<T>> slots(static_cast<std::size_t>(st.workers));
  std::list<Outgoing> outgoing;
  int ended = 0;

  auto post_receive = [&](std::size_t w) {
    WorkerSlot<T>& slot = slots[w];
    slot.inbox.resize(in_bytes);
    slot.receive =
        comm.irecv(std::span<std::byte>(slot.inbox), servers + static_cast<int>(w), kPushTag);
  };
  auto send_range = [&](std::size_t w, int tag) {
    Outgoing& out = outgoing.emplace_back();
    out.bytes.resize(out_bytes);
    const ReplyHeader header{st.version, 0};
    std::memcpy(out.bytes.data(), &header, sizeof header);
    if (n > 0) std::memcpy(out.bytes.data() + sizeof header, st.params.data(), n * sizeof(T));
    out.request =
        comm.isend(std::span<const std::byte>(out.bytes), servers + static_cast<int>(w), tag);
    counters.bytes_sent += out_bytes;
  };
  // Decodes a completed receive; returns false for an end-of-epoch message.
  auto take_message = [&](std::size_t w, Push<T>& push) {
    WorkerSlot<T>& slot = slots[w];
    counters.bytes_received += in_bytes;
    std::memcpy(&push.header, slot.inbox.data(), sizeof push.header);
    if (push.header.end != 0) return false;
    if (push.header.step != slot.pushed) {
      throw CommError(rank_prefix(comm) + "parameter server got step " +
                      std::to_string(push.header.step) + " from rank " +
                      std::to_string(servers + static_cast<int>(w)) + ", expected step " +
                      std::to_string(slot.pushed));
    }
    ++slot.pushed;
    push.grad.resize(n);
    if (n > 0) std::memcpy(push.grad.data(), slot.inbox.data() + sizeof push.header, n * sizeof(T));
    return true;
  };

  // kBsp/kSsp: applies step k = version - epoch_base once every worker still
  // in the epoch has pushed it (and at least one has); true if it did.
  auto apply_ready_step = [&]() {
    const std::uint64_t step = st.version - epoch_base;
    bool any = false;
    for (const auto& slot : slots) {
      if (!slot.queue.empty()) {
        assert(slot.queue.front().header.step == step);
        any = true;
      } else if (!slot.ended) {
        return false;
      }
    }
    if (!any) return false;
    // Sum in worker rank order: the order the threads backend's allreduce
    // combines ranks in, so that the result matches it bit for bit.
    double rows = 0.0;
    double lr = 0.0;
    bool first = true;
    for (auto& slot : slots) {
      if (slot.queue.empty()) continue;
      const Push<T>& push = slot.queue.front();
      if (first) {
        std::copy(push.grad.begin(), push.grad.end(), st.grad.begin());
        lr = push.header.lr;
        first = false;
      } else {
        const T* g = push.grad.data();
        T* acc = st.grad.data();
        for (std::size_t i = 0; i < n; ++i) acc[i] += g[i];
      }
      rows += push.header.rows;
      const std::uint64_t at = epoch_base + step;
      record_staleness(counters, at > push.header.version ? at - push.header.version : 0);
      ++counters.updates;
    }
    st.apply(rows, lr);
    for (auto& slot : slots) {
      if (!slot.queue.empty()) slot.queue.pop_front();
    }
    return true;
  };

  for (std::size_t w = 0; w < slots.size(); ++w) post_receive(w);

  auto last_progress = Clock::now();
  auto idle_since = last_progress;
  int idle_polls = 0;
  for (;;) {
    const auto poll_start = Clock::now();
    bool progress = false;
    for (std::size_t w = 0; w < slots.size(); ++w) {
      WorkerSlot<T>& slot = slots[w];
      if (slot.ended || !slot.receive.test()) continue;
      progress = true;
      Push<T> push;
      if (!take_message(w, push)) {
        slot.ended = true;
        ++ended;
        continue;
      }
      post_receive(w);
      if (async) {
        std::copy(push.grad.begin(), push.grad.end(), st.grad.begin());
        record_staleness(counters,
                         st.version > push.header.version ? st.version - push.header.version : 0);
        ++counters.updates;
        st.apply(push.header.rows, push.header.lr);
        send_range(w, kReplyTag);
      } else {
        slot.pull_pending = true;
        slot.pull_step = push.header.step;
        slot.queue.push_back(std::move(push));
      }
    }
    if (!async) {
      while (apply_ready_step()) progress = true;
      // A pull of step k is answered once steps 0..k-slack are applied.
      const std::uint64_t applied = st.version - epoch_base;
      for (std::size_t w = 0; w < slots.size(); ++w) {
        WorkerSlot<T>& slot = slots[w];
        if (slot.pull_pending && applied + slack >= slot.pull_step + 1) {
          slot.pull_pending = false;
          send_range(w, kReplyTag);
          progress = true;
        }
      }
    }
    // Let go of the buffers of replies that have been delivered.
    for (auto it = outgoing.begin(); it != outgoing.end();) {
      it = it->request.test() ? outgoing.erase(it) : std::next(it);
    }

    const bool all_applied = std::all_of(slots.begin(), slots.end(),
                                         [](const WorkerSlot<T>& s) { return s.queue.empty(); });
    const auto now = Clock::now();
    if (progress) {
      if (idle_polls > 0) counters.wait_s += seconds_between(idle_since, poll_start);
      counters.comm_s += seconds_between(poll_start, now);
      idle_polls = 0;
      last_progress = now;
    } else {
      if (idle_polls == 0) idle_since = poll_start;
      ++idle_polls;
    }
    if (ended == st.workers && all_applied) {
      if (idle_polls > 0) counters.wait_s += seconds_between(idle_since, now);
      break;
    }
    if (!progress) {
      if (now - last_progress > comm.timeout()) {
        throw CommError(rank_prefix(comm) + "parameter server waited " +
                        std::to_string(comm.timeout().count()) + " ms for pushes (" +
                        std::to_string(ended) + " of " + std::to_string(st.workers) +
                        " workers ended the epoch)");
      }
      back_off(idle_polls);
    }
  }

  const auto finish_start = Clock::now();
  for (std::size_t w = 0; w < slots.size(); ++w) send_range(w, kFinalTag);
  for (Outgoing& out : outgoing) out.request.wait();
  counters.comm_s += seconds_between(finish_start, Clock::now());
}

// ---------------------------------------------------------------------------
// Worker

template <class T>
struct PsClient<T>::State {
  Communicator& comm;
  PsConfig config;
  std::vector<std::size_t> bounds;
  std::vector<std::uint64_t> versions;                // per server: the version of the range held
  std::uint64_t epoch_base = 0;                       // the servers' version when this epoch began
  std::uint64_t step = 0;                             // steps pushed this epoch
  std::vector<std::vector<std::byte>> outbox, inbox;  // per server

  State(Communicator& c, PsConfig cfg) : comm(c), config(std::move(cfg)) {}

  int servers() const { return config.servers; }
  std::size_t count(std::size_t s) const { return bounds[s + 1] - bounds[s]; }

  // Sends one message per server on kPushTag (from `grad`, or an end marker),
  // receives one per server on `reply_tag` into `params`; returns the
  // versions the pushes were computed on.
  std::vector<std::uint64_t> exchange(std::span<const T> grad, const PushHeader& header,
                                      int reply_tag, std::span<T> params, SyncCounters& counters) {
    const auto start = Clock::now();
    const auto num_servers = static_cast<std::size_t>(servers());
    std::vector<Request> receives(num_servers), sends(num_servers);
    for (std::size_t s = 0; s < num_servers; ++s) {
      inbox[s].resize(reply_message_bytes<T>(count(s)));
      receives[s] = comm.irecv(std::span<std::byte>(inbox[s]), static_cast<int>(s), reply_tag);
    }
    std::vector<std::uint64_t> sent_versions(num_servers);
    for (std::size_t s = 0; s < num_servers; ++s) {
      std::vector<std::byte>& out = outbox[s];
      out.assign(push_message_bytes<T>(count(s)), std::byte{0});
      PushHeader h = header;
      h.version = versions[s];
      sent_versions[s] = versions[s];
      std::memcpy(out.data(), &h, sizeof h);
      if (!grad.empty() && count(s) > 0) {
        std::memcpy(out.data() + sizeof h, grad.data() + bounds[s], count(s) * sizeof(T));
      }
      sends[s] = comm.isend(std::span<const std::byte>(out), static_cast<int>(s), kPushTag);
      counters.bytes_sent += out.size();
    }
    for (Request& r : sends) r.wait();
    const auto sent = Clock::now();
    for (Request& r : receives) r.wait();
    const auto received = Clock::now();
    for (std::size_t s = 0; s < num_servers; ++s) {
      ReplyHeader reply{};
      std::memcpy(&reply, inbox[s].data(), sizeof reply);
      versions[s] = reply.version;
      if (count(s) > 0) {
        std::memcpy(params.data() + bounds[s], inbox[s].data() + sizeof reply,
                    count(s) * sizeof(T));
      }
      counters.bytes_received += inbox[s].size();
    }
    const auto done = Clock::now();
    counters.comm_s += seconds_between(start, sent) + seconds_between(received, done);
    counters.wait_s += seconds_between(sent, received);
    return sent_versions;
  }
};

template <class T>
PsClient<T>::PsClient(Communicator& comm, PsConfig config)
    : state_(std::make_unique<State>(comm, std::move(config))) {
  State& st = *state_;
  st.config.validate(comm.size());
  if (comm.rank() < st.config.servers) {
    throw ConfigError(rank_prefix(comm) + "is a parameter server, not a worker (servers: " +
                      std::to_string(st.config.servers) + ")");
  }
  st.bounds = key_range_bounds(st.config.num_params, st.config.servers);
  const auto num_servers = static_cast<std::size_t>(st.config.servers);
  st.versions.assign(num_servers, 0);
  st.outbox.resize(num_servers);
  st.inbox.resize(num_servers);
}

template <class T>
PsClient<T>::~PsClient() = default;

template <class T>
std::uint64_t PsClient<T>::push_pull(std::span<const T> grad_sums, double rows, double loss,
                                     double lr, std::span<T> params, SyncCounters& counters) {
  State& st = *state_;
  if (grad_sums.size() != st.config.num_params || params.size() != st.config.num_params) {
    throw ConfigError(rank_prefix(st.comm) + "push_pull got " + std::to_string(grad_sums.size()) +
                      " gradient sums and " + std::to_string(params.size()) +
                      " parameters, expected " + std::to_string(st.config.num_params));
  }
  const std::uint64_t computed_on = *std::min_element(st.versions.begin(), st.versions.end());
  const PushHeader header{st.step, 0, 0, rows, loss, lr};
  const auto sent_versions = st.exchange(grad_sums, header, kReplyTag, params, counters);
  if (st.config.mode == PsMode::kAsp) {
    // Each reply follows its push's update at once: its version is one past
    // the version the push was applied at.
    std::uint64_t staleness = 0;
    for (std::size_t s = 0; s < sent_versions.size(); ++s) {
      const std::uint64_t applied_at = st.versions[s] - 1;
      if (applied_at > sent_versions[s]) {
        staleness = std::max(staleness, applied_at - sent_versions[s]);
      }
    }
    record_staleness(counters, staleness);
  } else {
    const std::uint64_t at = st.epoch_base + st.step;
    record_staleness(counters, at > computed_on ? at - computed_on : 0);
  }
  ++st.step;
  return *std::min_element(st.versions.begin(), st.versions.end());
}

template <class T>
void PsClient<T>::end_epoch(std::span<T> params, SyncCounters& counters) {
  State& st = *state_;
  if (params.size() != st.config.num_params) {
    throw ConfigError(rank_prefix(st.comm) + "end_epoch got " + std::to_string(params.size()) +
                      " parameters, expected " + std::to_string(st.config.num_params));
  }
  const PushHeader header{st.step, 0, 1, 0.0, 0.0, 0.0};
  st.exchange({}, header, kFinalTag, params, counters);
  // Every server has applied every push of the epoch by now: kBsp/kSsp one
  // update per step, kAsp one per push, so their versions agree.
  assert(std::all_of(st.versions.begin(), st.versions.end(),
                     [&](std::uint64_t v) { return v == st.versions.front(); }));
  st.epoch_base = st.versions.front();
  st.step = 0;
}

template class PsServer<float>;
template class PsServer<double>;
template class PsClient<float>;
template class PsClient<double>;

}  // namespace dtrain
