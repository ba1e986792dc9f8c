// Communicator: the one interface every worker talks through.
//
// Contract (shared by every backend):
//  - SPMD: all `size()` ranks call the same collectives in the same order with
//    matching arguments (counts, root, op). A backend that can detect a
//    mismatch throws CommError instead of corrupting memory.
//  - Every blocking call gives up after the communicator's timeout and throws
//    CommError naming this rank, the operation and, where known, the peer.
//  - Collectives are deterministic: the same inputs give the same output bits
//    on every rank and on every run (reductions combine contributions in rank
//    order, whatever thread or process happens to do the arithmetic).
//  - Buffers are caller-owned spans; a collective returns only once the
//    caller's buffers may be reused.
//  - Point-to-point messages are matched by (source, tag) and are delivered in
//    send order per (source, tag). A receive's buffer must be exactly the size
//    of the message.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace dtrain {

enum class DataType { kFloat32, kFloat64, kInt64, kUint64 };
enum class ReduceOp { kSum, kMean, kMax, kMin };

const char* to_string(DataType t);
const char* to_string(ReduceOp op);
std::size_t size_of(DataType t);

template <class T>
constexpr DataType data_type_of() {
  if constexpr (std::is_same_v<T, float>)
    return DataType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return DataType::kFloat64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DataType::kInt64;
  else {
    static_assert(std::is_same_v<T, std::uint64_t>, "reductions take float, double, int64, uint64");
    return DataType::kUint64;
  }
}

template <class T>
concept Reducible = std::is_same_v<T, float> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>;

// What a backend does with one pending non-blocking operation.
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  // Completes the operation if it can without blocking; true once complete.
  virtual bool test() = 0;
  // Blocks until complete (or the communicator's timeout: CommError).
  virtual void wait() = 0;
};

// Handle of a non-blocking send or receive. The buffers passed to isend/irecv
// must stay alive and untouched until wait() returns or test() returns true.
// Destroying an incomplete Request, or move-assigning over it, waits for it
// (RAII). Destructors must not throw, so an error found then is discarded:
// call wait() yourself to see it. Once wait() or test() has thrown, the
// Request is done.
class [[nodiscard]] Request {
 public:
  Request() = default;
  explicit Request(std::unique_ptr<PendingOp> op) : op_(std::move(op)) {}
  Request(Request&&) noexcept = default;
  Request& operator=(Request&& other) noexcept;
  ~Request();

  bool test();
  void wait();
  bool done() const { return op_ == nullptr; }

 private:
  std::unique_ptr<PendingOp> op_;
};

class Communicator {
 public:
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "threads", "mpi", ...
  virtual std::string backend() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;

  virtual void barrier() = 0;

  // Copies root's buffer into every rank's buffer (same length everywhere).
  template <class T>
  void broadcast(std::span<T> buf, int root) {
    broadcast_bytes(buf.data(), buf.size_bytes(), root);
  }

  // In place: every rank ends with op over all ranks' buffers, elementwise.
  template <Reducible T>
  void allreduce(std::span<T> buf, ReduceOp op = ReduceOp::kSum) {
    allreduce_raw(buf.data(), buf.size(), data_type_of<T>(), op);
  }

  // recv = concat(send of rank 0, send of rank 1, ...); recv.size() must be
  // size() * send.size().
  template <class T>
  void allgather(std::span<const T> send, std::span<T> recv) {
    check_multiple("allgather", send.size(), recv.size());
    allgather_bytes(send.data(), send.size_bytes(), recv.data());
  }

  // Blocks of different sizes: rank r sends recv_counts[r] elements, and
  // recv = concat(every rank's send, in rank order). recv_counts holds one
  // count per rank and must be the same on every rank (exchange the counts
  // first, e.g. with allgather).
  template <class T>
  void allgatherv(std::span<const T> send, std::span<T> recv,
                  std::span<const std::size_t> recv_counts) {
    std::vector<std::size_t> recv_bytes(recv_counts.size());
    std::size_t total = 0;
    for (std::size_t i = 0; i < recv_counts.size(); ++i) {
      recv_bytes[i] = recv_counts[i] * sizeof(T);
      total += recv_counts[i];
    }
    check_allgatherv(send.size(), recv.size(), recv_counts, total);
    allgatherv_bytes(send.data(), recv.data(), recv_bytes);
  }

  // send holds size() blocks of recv.size() elements; rank r receives op over
  // all ranks of block r.
  template <Reducible T>
  void reduce_scatter(std::span<const T> send, std::span<T> recv, ReduceOp op = ReduceOp::kSum) {
    check_multiple("reduce_scatter", recv.size(), send.size());
    reduce_scatter_raw(send.data(), recv.data(), recv.size(), data_type_of<T>(), op);
  }

  // reduce_scatter(send, scratch, kSum) whose result goes to `consume`
  // instead of into a buffer of the caller's: consume(a, b) gets this rank's
  // block as the elementwise sum a + b, where b is empty or of a's size and
  // a + b in T's arithmetic is exactly what reduce_scatter gives (the ranks'
  // blocks added in rank order). A backend that can read its peers' buffers
  // (threads) passes them in place: with two ranks it writes nothing, with
  // more it folds the first N-1 blocks into scratch and passes the last
  // beside it. That saves the caller a pass over the block when it reads the
  // sum once, as an optimizer step does. The default reduce-scatters into
  // scratch and passes it alone. consume runs on every rank exactly once,
  // while the peers' buffers are held still, and must not communicate; if
  // it throws, the exception comes out of this call after the peers are
  // released. Floating-point types only (the consumer adds the terms).
  template <std::floating_point T, class Consume>
  void reduce_scatter_sum_to(std::span<const T> send, std::span<T> scratch, Consume&& consume) {
    check_multiple("reduce_scatter", scratch.size(), send.size());
    const std::size_t count = scratch.size();
    auto call = [&consume, count](const void* a, const void* b) {
      consume(std::span<const T>(static_cast<const T*>(a), count),
              b ? std::span<const T>(static_cast<const T*>(b), count) : std::span<const T>());
    };
    using Call = decltype(call);
    reduce_scatter_sum_to_raw(
        send.data(), scratch.data(), count, data_type_of<T>(),
        [](void* context, const void* a, const void* b) { (*static_cast<Call*>(context))(a, b); },
        &call);
  }

  // Personalised all-to-all. `send` holds size() consecutive blocks, block d
  // (send_counts[d] elements) going to rank d; on return `recv` holds size()
  // consecutive blocks, block s (recv_counts[s] elements) from rank s. The
  // counts must agree pairwise: send_counts[d] on rank s == recv_counts[s] on
  // rank d (exchange them first, e.g. with allgather, when unknown).
  template <class T>
  void alltoallv(std::span<const T> send, std::span<const std::size_t> send_counts,
                 std::span<T> recv, std::span<const std::size_t> recv_counts) {
    std::vector<std::size_t> send_bytes(send_counts.size());
    std::vector<std::size_t> recv_bytes(recv_counts.size());
    for (std::size_t i = 0; i < send_counts.size(); ++i) send_bytes[i] = send_counts[i] * sizeof(T);
    for (std::size_t i = 0; i < recv_counts.size(); ++i) recv_bytes[i] = recv_counts[i] * sizeof(T);
    check_alltoallv(send.size_bytes(), send_bytes, recv.size_bytes(), recv_bytes);
    alltoallv_bytes(send.data(), send_bytes, recv.data(), recv_bytes);
  }

  // Tags at or above this value are reserved for dtrain's own protocols
  // (such as the default alltoallv); user code should stay below it.
  static constexpr int kReservedTagBase = 1 << 30;

  template <class T>
  void send(std::span<const T> buf, int dst, int tag) {
    send_bytes(buf.data(), buf.size_bytes(), dst, tag);
  }
  template <class T>
  void recv(std::span<T> buf, int src, int tag) {
    recv_bytes(buf.data(), buf.size_bytes(), src, tag);
  }
  template <class T>
  Request isend(std::span<const T> buf, int dst, int tag) {
    return isend_bytes(buf.data(), buf.size_bytes(), dst, tag);
  }
  template <class T>
  Request irecv(std::span<T> buf, int src, int tag) {
    return irecv_bytes(buf.data(), buf.size_bytes(), src, tag);
  }

 protected:
  virtual void broadcast_bytes(void* buf, std::size_t bytes, int root) = 0;
  virtual void allreduce_raw(void* buf, std::size_t count, DataType type, ReduceOp op) = 0;
  virtual void allgather_bytes(const void* send, std::size_t bytes, void* recv) = 0;
  virtual void reduce_scatter_raw(const void* send, void* recv, std::size_t count_per_rank,
                                  DataType type, ReduceOp op) = 0;
  virtual void send_bytes(const void* buf, std::size_t bytes, int dst, int tag) = 0;
  virtual void recv_bytes(void* buf, std::size_t bytes, int src, int tag) = 0;
  virtual Request isend_bytes(const void* buf, std::size_t bytes, int dst, int tag) = 0;
  virtual Request irecv_bytes(void* buf, std::size_t bytes, int src, int tag) = 0;
  // Default: alltoallv_bytes with this rank's block sent to every rank (the
  // MPI backend calls MPI_Allgatherv, the threads backend copies from the
  // peers' buffers).
  virtual void allgatherv_bytes(const void* send, void* recv,
                                std::span<const std::size_t> recv_bytes);
  // consume(context, a, b): this rank's block is a + b (b may be null).
  using ConsumeSum = void (*)(void* context, const void* a, const void* b);
  // Default: reduce_scatter_raw into scratch, then consume(context, scratch,
  // nullptr).
  virtual void reduce_scatter_sum_to_raw(const void* send, void* scratch,
                                         std::size_t count_per_rank, DataType type,
                                         ConsumeSum consume, void* context);
  // Default: non-blocking point-to-point with a reserved tag. Backends with a
  // native all-to-all (MPI_Alltoallv) override it.
  virtual void alltoallv_bytes(const void* send, std::span<const std::size_t> send_bytes,
                               void* recv, std::span<const std::size_t> recv_bytes);

 private:
  // Throws CommError unless big == size() * small.
  void check_multiple(const char* op, std::size_t small, std::size_t big) const;
  // Throws CommError unless there is one count per rank, this rank's is its
  // send size and recv holds them all.
  void check_allgatherv(std::size_t send, std::size_t recv, std::span<const std::size_t> counts,
                        std::size_t total) const;
  // Throws CommError unless there is one count per rank and the counts add
  // up to the buffer sizes.
  void check_alltoallv(std::size_t send_total, std::span<const std::size_t> send_bytes,
                       std::size_t recv_total, std::span<const std::size_t> recv_bytes) const;
};

}  // namespace dtrain
