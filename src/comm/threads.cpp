// The threads backend: see include/dtrain/comm/threads.h for the design.
#include "dtrain/comm/threads.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/error.h"
#include "dtrain/util/fnv1a.h"
#include "kernels.h"
#include "threads_world.h"

namespace dtrain {
namespace {

using comm_detail::CollectiveDesc;
using comm_detail::CollectiveKind;
using comm_detail::World;

// Slice boundaries are multiples of this many bytes, so that no two threads
// write to the same cache line and each slice's inner loops run on whole
// vectors (but for the last one).
constexpr std::size_t kSliceAlignBytes = 64;

struct Range {
  std::size_t begin = 0;
  std::size_t end = 0;
};

// Rank r's share of [0, count): near-equal, aligned, possibly empty.
Range slice_of(int rank, int size, std::size_t count, std::size_t elem_bytes) {
  const std::size_t align = std::max<std::size_t>(1, kSliceAlignBytes / elem_bytes);
  const std::size_t blocks = (count + align - 1) / align;
  const auto r = static_cast<std::size_t>(rank);
  const auto n = static_cast<std::size_t>(size);
  const std::size_t first = blocks * r / n;
  const std::size_t last = blocks * (r + 1) / n;
  return {std::min(count, first * align), std::min(count, last * align)};
}

bool overlap(const void* a, const void* b, std::size_t bytes) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return x < y + bytes && y < x + bytes;
}

class ThreadsComm final : public Communicator {
 public:
  ThreadsComm(World& world, int rank)
      : world_(world),
        rank_(rank),
        srcs_(static_cast<std::size_t>(world.size())),
        dsts_(static_cast<std::size_t>(world.size())) {}

  int rank() const override { return rank_; }
  int size() const override { return world_.size(); }
  std::string backend() const override { return "threads"; }
  std::chrono::milliseconds timeout() const override { return world_.timeout(); }

  void barrier() override { enter(CollectiveDesc{}, nullptr, nullptr); }

 protected:
  void broadcast_bytes(void* buf, std::size_t bytes, int root) override {
    if (root < 0 || root >= size()) {
      world_.fail_and_throw(rank_, prefix() + "broadcast: invalid root rank " +
                                       std::to_string(root) + " (world size " +
                                       std::to_string(size()) + ")");
    }
    const CollectiveDesc desc{CollectiveKind::kBroadcast, bytes, DataType::kFloat32, ReduceOp::kSum,
                              root};
    const std::uint64_t seq = enter(desc, buf, buf);
    if (bytes == 0 || size() == 1) return;
    // Every other rank pulls a copy in parallel; the root only has to keep
    // its buffer still until they are done.
    if (rank_ != root) comm_detail::copy_bytes(buf, world_.slot(root, seq).recv, bytes);
    world_.barrier(rank_, "broadcast", World::Wait::kCommitted);
  }

  void allreduce_raw(void* buf, std::size_t count, DataType type, ReduceOp op) override {
    const CollectiveDesc desc{CollectiveKind::kAllreduce, count, type, op, -1};
    const std::uint64_t seq = enter(desc, buf, buf);
    // With one rank every op is the identity (mean divides by 1, exactly).
    if (count == 0 || size() == 1) return;
    const std::size_t elem = size_of(type);
    const Range mine = slice_of(rank_, size(), count, elem);
    if (mine.end > mine.begin) {
      const std::size_t offset = mine.begin * elem;
      for (int k = 0; k < size(); ++k) {
        auto* peer = static_cast<std::byte*>(world_.slot(k, seq).recv) + offset;
        srcs_[k] = peer;
        dsts_[k] = peer;
      }
      comm_detail::reduce_into(type, op, srcs_, dsts_, mine.end - mine.begin);
    }
    // Nobody may reuse its buffer before every slice of it has been written.
    world_.barrier(rank_, "allreduce", World::Wait::kCommitted);
  }

  void allgather_bytes(const void* send, std::size_t bytes, void* recv) override {
    const CollectiveDesc desc{CollectiveKind::kAllgather, bytes};
    const std::uint64_t seq = enter(desc, send, recv);
    if (bytes == 0) return;
    auto* out = static_cast<std::byte*>(recv);
    for (int k = 0; k < size(); ++k) {
      std::byte* dst = out + static_cast<std::size_t>(k) * bytes;
      const void* src = world_.slot(k, seq).send;
      // The own block may overlap recv (in place: send = recv block r);
      // other ranks' send buffers are theirs alone.
      if (k == rank_ && overlap(dst, src, bytes)) {
        if (dst != src) std::memmove(dst, src, bytes);
      } else {
        comm_detail::copy_bytes(dst, src, bytes);
      }
    }
    // Senders' buffers must stay put until every rank has copied them.
    if (size() > 1) world_.barrier(rank_, "allgather", World::Wait::kCommitted);
  }

  void allgatherv_bytes(const void* send, void* recv,
                        std::span<const std::size_t> recv_bytes) override {
    std::size_t total = 0;
    for (const std::size_t b : recv_bytes) total += b;
    const std::uint64_t sizes_hash = fnv1a64(std::span<const unsigned char>(
        reinterpret_cast<const unsigned char*>(recv_bytes.data()), recv_bytes.size_bytes()));
    // Ranks that disagree on the blocks' sizes are reported as a mismatch
    // (the descriptions differ in the sizes' hash) before any copy reads
    // past a peer's block.
    const CollectiveDesc desc{CollectiveKind::kAllgatherv, total, DataType::kFloat32,
                              ReduceOp::kSum, static_cast<int>(sizes_hash & 0x7fffffff)};
    const std::uint64_t seq = enter(desc, send, recv);
    if (total == 0) return;
    auto* out = static_cast<std::byte*>(recv);
    for (int k = 0; k < size(); ++k) {
      const std::size_t bytes = recv_bytes[static_cast<std::size_t>(k)];
      const void* src = world_.slot(k, seq).send;
      if (bytes == 0) continue;
      if (k == rank_ && overlap(out, src, bytes)) {
        if (out != src) std::memmove(out, src, bytes);
      } else {
        comm_detail::copy_bytes(out, src, bytes);
      }
      out += bytes;
    }
    if (size() > 1) world_.barrier(rank_, "allgatherv", World::Wait::kCommitted);
  }

  void reduce_scatter_raw(const void* send, void* recv, std::size_t count_per_rank, DataType type,
                          ReduceOp op) override {
    const CollectiveDesc desc{CollectiveKind::kReduceScatter, count_per_rank, type, op, -1};
    const std::uint64_t seq = enter(desc, send, recv);
    if (count_per_rank == 0) return;
    const std::size_t offset = static_cast<std::size_t>(rank_) * count_per_rank * size_of(type);
    for (int k = 0; k < size(); ++k) {
      srcs_[k] = static_cast<const std::byte*>(world_.slot(k, seq).send) + offset;
    }
    void* const out[] = {recv};
    comm_detail::reduce_into(type, op, srcs_, out, count_per_rank);
    if (size() > 1) world_.barrier(rank_, "reduce_scatter", World::Wait::kCommitted);
  }

  // The peers' blocks are read where they are: with two ranks the sum is
  // passed as its two terms, with more the first N-1 are folded into scratch
  // (in rank order, as reduce_scatter_raw does) and the last is passed
  // beside it, so the float sums are reduce_scatter_raw's.
  void reduce_scatter_sum_to_raw(const void* send, void* scratch, std::size_t count_per_rank,
                                 DataType type, ConsumeSum consume, void* context) override {
    const CollectiveDesc desc{CollectiveKind::kReduceScatter, count_per_rank, type, ReduceOp::kSum,
                              -1};
    const std::uint64_t seq = enter(desc, send, scratch);
    const std::size_t offset = static_cast<std::size_t>(rank_) * count_per_rank * size_of(type);
    const auto block = [&](int k) {
      return static_cast<const std::byte*>(world_.slot(k, seq).send) + offset;
    };
    const int n = size();
    // Nothing to read from the peers: no second barrier, as in
    // reduce_scatter_raw.
    if (n == 1 || count_per_rank == 0) {
      consume(context, block(rank_), nullptr);
      return;
    }
    // The peers read this rank's buffer until every rank has consumed, so a
    // consumer that throws still arrives at the second barrier before its
    // buffers can go; the exception then ends the world as any rank's does.
    std::exception_ptr error;
    try {
      if (n == 2) {
        consume(context, block(0), block(1));
      } else {
        for (int k = 0; k + 1 < n; ++k) srcs_[k] = block(k);
        void* const out[] = {scratch};
        comm_detail::reduce_into(
            type, ReduceOp::kSum,
            std::span<const void* const>(srcs_).first(static_cast<std::size_t>(n - 1)), out,
            count_per_rank);
        consume(context, scratch, block(n - 1));
      }
    } catch (...) {
      error = std::current_exception();
    }
    world_.barrier(rank_, "reduce_scatter", World::Wait::kCommitted);
    if (error) std::rethrow_exception(error);
  }

  void send_bytes(const void* buf, std::size_t bytes, int dst, int tag) override {
    check_peer("send to", dst);
    world_.send(rank_, dst, tag, buf, bytes);
  }

  void recv_bytes(void* buf, std::size_t bytes, int src, int tag) override {
    check_peer("recv from", src);
    world_.post_recv(rank_, src, tag, buf, bytes, "recv")->wait();
  }

  Request isend_bytes(const void* buf, std::size_t bytes, int dst, int tag) override {
    check_peer("isend to", dst);
    world_.send(rank_, dst, tag, buf, bytes);
    return Request();  // buffered: complete already
  }

  Request irecv_bytes(void* buf, std::size_t bytes, int src, int tag) override {
    check_peer("irecv from", src);
    return Request(world_.post_recv(rank_, src, tag, buf, bytes, "irecv"));
  }

 private:
  std::string prefix() const { return "rank " + std::to_string(rank_) + ": "; }

  void check_peer(const char* what, int peer) const {
    if (peer < 0 || peer >= size()) {
      throw CommError(prefix() + what + " rank " + std::to_string(peer) +
                      ": no such rank (world size " + std::to_string(size()) + ")");
    }
  }

  // Posts this rank's call, waits for every rank to post theirs and checks
  // that they all agree. Returns the sequence number to read peers' slots by.
  std::uint64_t enter(const CollectiveDesc& desc, const void* send, void* recv) {
    const char* name = comm_detail::name_of(desc.kind);
    const std::uint64_t seq = seq_++;
    world_.slot(rank_, seq) = {desc, send, recv};
    world_.barrier(rank_, name);
    const CollectiveDesc& first = world_.slot(0, seq).desc;
    for (int k = 1; k < size(); ++k) {
      const CollectiveDesc& other = world_.slot(k, seq).desc;
      if (other != first) {
        // Every rank sees the same slots, so every rank throws (and none
        // touches the others' buffers).
        world_.fail_and_throw(rank_, prefix() + "collective mismatch: rank 0 called " +
                                         comm_detail::describe(first) + " but rank " +
                                         std::to_string(k) + " called " +
                                         comm_detail::describe(other));
      }
    }
    return seq;
  }

  World& world_;
  const int rank_;
  std::uint64_t seq_ = 0;  // collectives called so far by this rank
  // Per-call pointer lists, kept to avoid allocating on every collective.
  std::vector<const void*> srcs_;
  std::vector<void*> dsts_;
};

}  // namespace

void run_threads(const ThreadsOptions& opts, const std::function<void(Communicator&)>& fn) {
  if (opts.workers < 1) {
    throw ConfigError("run_threads: workers must be at least 1 (got " +
                      std::to_string(opts.workers) + ")");
  }
  if (opts.timeout.count() <= 0) {
    throw ConfigError("run_threads: timeout must be positive (got " +
                      std::to_string(opts.timeout.count()) + " ms)");
  }
  if (!fn) throw ConfigError("run_threads: no function to run");

  World world(opts.workers, opts.timeout);
  const auto run_rank = [&](int rank) noexcept {
    try {
      ThreadsComm comm(world, rank);
      fn(comm);
    } catch (...) {
      world.fail(rank, std::current_exception());
    }
    world.finish(rank);
  };

  {
    // Rank 0 runs on the calling thread; jthreads join on every exit path.
    std::vector<std::jthread> threads;
    threads.reserve(static_cast<std::size_t>(opts.workers - 1));
    int started = 1;
    try {
      for (; started < opts.workers; ++started) threads.emplace_back(run_rank, started);
    } catch (const std::exception& e) {
      world.fail(
          0, std::make_exception_ptr(CommError("run_threads: could not start the thread of rank " +
                                               std::to_string(started) + ": " + e.what())));
      for (int r = started; r < opts.workers; ++r) world.finish(r);
      world.finish(0);
    }
    if (started == opts.workers) run_rank(0);
  }
  world.rethrow_failure();
}

}  // namespace dtrain
