// The MPI backend: see include/dtrain/comm/mpi.h for the contract.
//
// Threading: MPI runs at MPI_THREAD_FUNNELED, so only the thread that created
// the MpiSession calls MPI; every communicator call checks that (a pointer
// compare). Each communicator also owns a watchdog thread, which never calls
// MPI: it only reads the "blocking call in progress" slot that the calling
// thread fills around each blocking MPI call, and ends the process when a
// call outlives the timeout (see Watchdog).
//
// Large buffers: MPI counts are int. Collectives over more than INT_MAX
// elements run as several calls on consecutive chunks (elementwise
// reductions and copies do not care how the buffer is cut); point-to-point
// messages over INT_MAX bytes travel as one message of a derived datatype, so
// that matching and ordering stay those of a single message.
#include "dtrain/comm/mpi.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dtrain/error.h"
#include "kernels.h"
#include "mpi_c.h"
#include "mpi_internal.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

// The one global, forced by MPI itself: the library can be initialised once
// per process, ever (MPI_Init after MPI_Finalize is erroneous), and its state
// is process-wide. Set by the first MpiSession and never cleared, so that a
// second one fails with a clear ConfigError instead of inside MPI.
std::atomic<bool> g_session_started{false};

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) {
    return "MPI error code " + std::to_string(code);
  }
  return std::string(text, static_cast<std::size_t>(std::max(len, 0)));
}

int error_class(int code) {
  int cls = code;
  if (MPI_Error_class(code, &cls) != MPI_SUCCESS) return code;
  return cls;
}

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

MPI_Datatype mpi_type(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return MPI_FLOAT;
    case DataType::kFloat64:
      return MPI_DOUBLE;
    case DataType::kInt64:
      return MPI_INT64_T;
    case DataType::kUint64:
      return MPI_UINT64_T;
  }
  throw CommError("mpi: unknown DataType " + std::to_string(static_cast<int>(t)));
}

// kMean is a sum followed by a division on every rank (as in the threads
// backend), so that the division rounds the same everywhere.
MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kMean:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  throw CommError("mpi: unknown ReduceOp " + std::to_string(static_cast<int>(op)));
}

// Integer types: truncating division, like the threads backend's kMean.
template <class T>
void divide_typed(void* buf, std::size_t count, int n) {
  T* const p = static_cast<T*>(buf);
  const auto d = static_cast<T>(n);
  for (std::size_t i = 0; i < count; ++i) p[i] = p[i] / d;
}

void divide(void* buf, std::size_t count, DataType type, int n) {
  if (n == 1) return;  // exact identity
  switch (type) {
    case DataType::kFloat32:
      return divide_typed<float>(buf, count, n);
    case DataType::kFloat64:
      return divide_typed<double>(buf, count, n);
    case DataType::kInt64:
      return divide_typed<std::int64_t>(buf, count, n);
    case DataType::kUint64:
      return divide_typed<std::uint64_t>(buf, count, n);
  }
}

bool overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes != 0 && b_bytes != 0 && x < y + b_bytes && y < x + a_bytes;
}

// Ends the process when a blocking MPI call outlives the timeout.
//
// A blocked MPI call cannot be cancelled, and at MPI_THREAD_FUNNELED this
// thread may not call MPI at all (not even MPI_Abort). So it prints one line
// on stderr and ends the process with std::_Exit(3) — the one place where
// dtrain's library code ends the process by itself. mpirun then sees a rank
// exit without MPI_Finalize and ends the whole job. std::_Exit runs no
// destructors or atexit handlers, which could block on the MPI state that the
// stuck thread holds.
//
// The calling thread marks each blocking call with begin()/end() (a mutex
// that only this thread contends for, once per poll, plus one clock read: no
// system call in the common case). The watchdog polls every
// min(100 ms, timeout / 10), so it fires at most that late, and it stops
// promptly on destruction (condition variable).
class Watchdog {
 public:
  Watchdog(int rank, std::chrono::milliseconds timeout)
      : rank_(rank),
        timeout_(timeout),
        poll_(std::clamp<std::chrono::milliseconds>(timeout / 10, std::chrono::milliseconds(1),
                                                    std::chrono::milliseconds(100))),
        thread_([this] { run(); }) {}

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  ~Watchdog() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // `op` must have static storage duration (a string literal).
  void begin(const char* op, int peer) noexcept {
    const auto now = Clock::now();
    const std::lock_guard lock(mutex_);
    op_ = op;
    peer_ = peer;
    start_ = now;
    busy_ = true;
  }

  void end() noexcept {
    const std::lock_guard lock(mutex_);
    busy_ = false;
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      cv_.wait_for(lock, poll_);
      if (stop_) break;
      if (busy_ && Clock::now() - start_ > timeout_) fire(op_, peer_);
    }
  }

  [[noreturn]] void fire(const char* op, int peer) const {
    const double seconds = std::chrono::duration<double>(timeout_).count();
    std::string line = "dtrain: rank " + std::to_string(rank_) + ": " + op + " timed out after ";
    char number[32];
    std::snprintf(number, sizeof number, "%g", seconds);
    line += number;
    line += " s";
    if (peer >= 0) line += " waiting for rank " + std::to_string(peer);
    line += " (a peer failed or called a different operation); ending the job\n";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    std::_Exit(3);
  }

  const int rank_;
  const std::chrono::milliseconds timeout_;
  const std::chrono::milliseconds poll_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  // The call in progress (guarded by mutex_).
  bool busy_ = false;
  const char* op_ = "";
  int peer_ = -1;
  Clock::time_point start_{};
  std::thread thread_;  // last: starts once everything above exists
};

// Marks one blocking MPI call for the watchdog (RAII, so that an error
// thrown out of the call clears the mark).
class Blocking {
 public:
  Blocking(Watchdog& watchdog, const char* op, int peer) : watchdog_(watchdog) {
    watchdog_.begin(op, peer);
  }
  Blocking(const Blocking&) = delete;
  Blocking& operator=(const Blocking&) = delete;
  ~Blocking() { watchdog_.end(); }

 private:
  Watchdog& watchdog_;
};

// The datatype and count one point-to-point message of `bytes` bytes travels
// as: MPI_BYTE x bytes when that fits in an int (the limit), else one
// element of a committed struct type (q blocks of a power-of-two size, then
// the remainder), freed on destruction. Both describe the same bytes, so a
// sender and a receiver may differ in which one they use.
class ByteType {
 public:
  ByteType(std::size_t bytes, std::size_t limit) {
    if (bytes <= limit) {
      count_ = static_cast<int>(bytes);
      return;
    }
    std::size_t block = 1;
    while (block <= limit / 2) block *= 2;
    const std::size_t blocks = bytes / block;
    const std::size_t rest = bytes % block;
    if (blocks > static_cast<std::size_t>(INT_MAX)) {
      throw CommError("mpi: message of " + std::to_string(bytes) + " bytes is too large");
    }
    MPI_Datatype block_type = MPI_DATATYPE_NULL;
    MPI_Type_contiguous(static_cast<int>(block), MPI_BYTE, &block_type);
    const int lengths[2] = {static_cast<int>(blocks), static_cast<int>(rest)};
    const MPI_Aint displacements[2] = {0, static_cast<MPI_Aint>(blocks * block)};
    MPI_Datatype types[2] = {block_type, MPI_BYTE};
    MPI_Type_create_struct(rest == 0 ? 1 : 2, lengths, displacements, types, &type_);
    MPI_Type_free(&block_type);
    MPI_Type_commit(&type_);
    owned_ = true;
    count_ = 1;
  }
  ByteType(ByteType&& other) noexcept
      : type_(std::exchange(other.type_, MPI_BYTE)),
        count_(other.count_),
        owned_(std::exchange(other.owned_, false)) {}
  ByteType(const ByteType&) = delete;
  ByteType& operator=(const ByteType&) = delete;
  ByteType& operator=(ByteType&&) = delete;
  ~ByteType() {
    if (owned_ && !mpi_finalized()) MPI_Type_free(&type_);
  }

  MPI_Datatype type() const { return type_; }
  int count() const { return count_; }

 private:
  MPI_Datatype type_ = MPI_BYTE;
  int count_ = 0;
  bool owned_ = false;
};

class MpiComm;

// One isend or irecv in flight. The Request that owns it must not outlive
// the communicator.
class MpiPendingOp final : public PendingOp {
 public:
  MpiPendingOp(MpiComm& comm, MPI_Request request, ByteType type, std::size_t bytes, int peer,
               int tag, bool is_recv)
      : comm_(comm),
        request_(request),
        type_(std::move(type)),
        bytes_(bytes),
        peer_(peer),
        tag_(tag),
        is_recv_(is_recv) {}

  bool test() override;
  void wait() override;

 private:
  MpiComm& comm_;
  MPI_Request request_;
  ByteType type_;  // kept until completion, to read the received size with
  std::size_t bytes_;
  int peer_;
  int tag_;
  bool is_recv_;
};

class MpiComm final : public Communicator {
 public:
  MpiComm(const MpiSession& session, const MpiOptions& options,
          const comm_detail::MpiLimits& limits)
      : rank_(session.world_rank()),
        size_(session.world_size()),
        timeout_(options.timeout),
        limit_(std::min<std::size_t>(limits.max_count, INT_MAX)),
        owner_(std::this_thread::get_id()),
        watchdog_(rank_, timeout_) {
    {
      // MPI_Comm_dup is collective: a rank that never creates its
      // communicator leaves the others here.
      const Blocking blocking(watchdog_, "creating the MPI communicator (MPI_Comm_dup)", -1);
      // MPI_COMM_WORLD's handler is still MPI_ERRORS_ARE_FATAL here: a
      // failure ends the job with MPI's own message.
      MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    }
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    void* value = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
    // MPI guarantees at least 32767; OpenMPI's is INT_MAX.
    tag_ub_ = flag != 0 && value != nullptr ? *static_cast<int*>(value) : 32767;
  }

  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  ~MpiComm() override {
    // Local in practice (OpenMPI frees lazily); skipped when the session has
    // already finalised MPI, which freed every communicator.
    if (comm_ != MPI_COMM_NULL && !mpi_finalized()) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  void barrier() override {
    check_thread("barrier");
    const Blocking blocking(watchdog_, "barrier", -1);
    check(MPI_Barrier(comm_), "barrier");
  }

  // For MpiPendingOp.
  void check_thread(const char* op) const {
    if (std::this_thread::get_id() != owner_) {
      throw CommError(prefix() + op +
                      ": called from a thread other than the one that created the MpiSession "
                      "(MPI runs at MPI_THREAD_FUNNELED)");
    }
  }
  Watchdog& watchdog() { return watchdog_; }
  std::string p2p_what(const char* op, int peer, int tag) const {
    return prefix() + op + " rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
  }
  // Throws CommError for a failed receive; a message larger than the buffer
  // is MPI_ERR_TRUNCATE.
  void check_recv(int rc, const MPI_Status& status, const ByteType& type, std::size_t bytes,
                  int peer, int tag, const char* op) const {
    if (rc != MPI_SUCCESS) {
      const std::string what = p2p_what(op, peer, tag);
      if (error_class(rc) == MPI_ERR_TRUNCATE) {
        throw CommError(what + ": message larger than the " + std::to_string(bytes) +
                        "-byte buffer (a receive must be exactly the size of the message)");
      }
      throw CommError(what + ": " + mpi_error_string(rc));
    }
    MPI_Count received = 0;
    check(MPI_Get_elements_x(&status, type.type(), &received), op);
    if (received < 0 || static_cast<std::size_t>(received) != bytes) {
      throw CommError(p2p_what(op, peer, tag) + ": message of " + std::to_string(received) +
                      " bytes into a buffer of " + std::to_string(bytes) +
                      " (a receive must be exactly the size of the message)");
    }
  }
  void check(int rc, const char* op) const {
    if (rc != MPI_SUCCESS) throw CommError(prefix() + op + ": " + mpi_error_string(rc));
  }

 protected:
  void broadcast_bytes(void* buf, std::size_t bytes, int root) override {
    check_thread("broadcast");
    if (root < 0 || root >= size_) {
      throw CommError(prefix() + "broadcast: invalid root rank " + std::to_string(root) +
                      " (world size " + std::to_string(size_) + ")");
    }
    const Blocking blocking(watchdog_, "broadcast", -1);
    bcast_chunked(static_cast<std::byte*>(buf), bytes, root);
  }

  void allreduce_raw(void* buf, std::size_t count, DataType type, ReduceOp op) override {
    check_thread("allreduce");
    if (count == 0) return;
    const MPI_Datatype dt = mpi_type(type);
    const MPI_Op mop = mpi_op(op);
    const std::size_t elem = size_of(type);
    auto* const p = static_cast<std::byte*>(buf);
    {
      const Blocking blocking(watchdog_, "allreduce", -1);
      for (std::size_t begin = 0; begin < count; begin += limit_) {
        const std::size_t m = std::min(limit_, count - begin);
        check(MPI_Allreduce(MPI_IN_PLACE, p + begin * elem, static_cast<int>(m), dt, mop, comm_),
              "allreduce");
      }
    }
    if (op == ReduceOp::kMean) divide(buf, count, type, size_);
  }

  void allgather_bytes(const void* send, std::size_t bytes, void* recv) override {
    check_thread("allgather");
    if (bytes == 0) return;
    auto* const out = static_cast<std::byte*>(recv);
    std::byte* const mine = out + static_cast<std::size_t>(rank_) * bytes;
    // MPI forbids aliased buffers: a send buffer inside recv is moved to its
    // own block first, which is then MPI_IN_PLACE.
    const bool in_place = overlap(send, bytes, recv, bytes * static_cast<std::size_t>(size_));
    if (in_place && send != mine) std::memmove(mine, send, bytes);
    const Blocking blocking(watchdog_, "allgather", -1);
    if (bytes <= limit_) {
      const int n = static_cast<int>(bytes);
      check(MPI_Allgather(in_place ? MPI_IN_PLACE : send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_),
            "allgather");
      return;
    }
    // Blocks over the count limit: every rank broadcasts its own, in chunks.
    if (!in_place) comm_detail::copy_bytes(mine, send, bytes);
    for (int root = 0; root < size_; ++root) {
      bcast_chunked(out + static_cast<std::size_t>(root) * bytes, bytes, root);
    }
  }

  void reduce_scatter_raw(const void* send, void* recv, std::size_t count_per_rank, DataType type,
                          ReduceOp op) override {
    check_thread("reduce_scatter");
    if (count_per_rank == 0) return;
    const std::size_t elem = size_of(type);
    const std::size_t block_bytes = count_per_rank * elem;
    const std::size_t send_bytes = block_bytes * static_cast<std::size_t>(size_);
    // MPI forbids aliased buffers (and recv may sit anywhere inside send).
    std::vector<std::byte> copy;
    if (overlap(send, send_bytes, recv, block_bytes)) {
      copy.resize(send_bytes);
      comm_detail::copy_bytes(copy.data(), send, send_bytes);
      send = copy.data();
    }
    const MPI_Datatype dt = mpi_type(type);
    const MPI_Op mop = mpi_op(op);
    {
      const Blocking blocking(watchdog_, "reduce_scatter", -1);
      if (count_per_rank <= limit_) {
        check(
            MPI_Reduce_scatter_block(send, recv, static_cast<int>(count_per_rank), dt, mop, comm_),
            "reduce_scatter");
      } else {
        // Blocks over the count limit: one chunked reduce per destination.
        const auto* in = static_cast<const std::byte*>(send);
        auto* out = static_cast<std::byte*>(recv);
        for (int root = 0; root < size_; ++root) {
          const std::byte* block = in + static_cast<std::size_t>(root) * block_bytes;
          for (std::size_t begin = 0; begin < count_per_rank; begin += limit_) {
            const std::size_t m = std::min(limit_, count_per_rank - begin);
            check(MPI_Reduce(block + begin * elem, root == rank_ ? out + begin * elem : nullptr,
                             static_cast<int>(m), dt, mop, root, comm_),
                  "reduce_scatter");
          }
        }
      }
    }
    if (op == ReduceOp::kMean) divide(recv, count_per_rank, type, size_);
  }

  void allgatherv_bytes(const void* send, void* recv,
                        std::span<const std::size_t> recv_bytes) override {
    check_thread("allgatherv");
    const auto n = static_cast<std::size_t>(size_);
    std::vector<int> counts(n), displs(n);
    std::size_t offset = 0;
    bool fits = true;
    for (std::size_t i = 0; i < n && fits; ++i) {
      fits = recv_bytes[i] <= limit_ && offset <= limit_;
      counts[i] = fits ? static_cast<int>(recv_bytes[i]) : 0;
      displs[i] = fits ? static_cast<int>(offset) : 0;
      offset += recv_bytes[i];
    }
    // recv_bytes is the same on every rank, so every rank takes the same path.
    if (!fits) {
      Communicator::allgatherv_bytes(send, recv, recv_bytes);
      return;
    }
    const auto me = static_cast<std::size_t>(rank_);
    std::byte* const mine = static_cast<std::byte*>(recv) + displs[me];
    // MPI forbids aliased buffers: a send buffer inside recv is moved to its
    // own block first, which is then MPI_IN_PLACE.
    const bool in_place = overlap(send, recv_bytes[me], recv, offset);
    if (in_place && send != mine) std::memmove(mine, send, recv_bytes[me]);
    const Blocking blocking(watchdog_, "allgatherv", -1);
    check(MPI_Allgatherv(in_place ? MPI_IN_PLACE : send, counts[me], MPI_BYTE, recv, counts.data(),
                         displs.data(), MPI_BYTE, comm_),
          "allgatherv");
  }

  void alltoallv_bytes(const void* send, std::span<const std::size_t> send_bytes, void* recv,
                       std::span<const std::size_t> recv_bytes) override {
    check_thread("alltoallv");
    const auto n = static_cast<std::size_t>(size_);
    std::vector<int> scounts(n), sdispls(n), rcounts(n), rdispls(n);
    std::size_t soff = 0;
    std::size_t roff = 0;
    int too_large = 0;
    const auto fits = [&](std::size_t v) { return v <= limit_; };
    for (std::size_t i = 0; i < n; ++i) {
      if (!fits(send_bytes[i]) || !fits(soff) || !fits(recv_bytes[i]) || !fits(roff)) {
        too_large = 1;
        break;
      }
      scounts[i] = static_cast<int>(send_bytes[i]);
      sdispls[i] = static_cast<int>(soff);
      rcounts[i] = static_cast<int>(recv_bytes[i]);
      rdispls[i] = static_cast<int>(roff);
      soff += send_bytes[i];
      roff += recv_bytes[i];
    }
    {
      // Whether MPI_Alltoallv can take the counts depends on every rank's
      // counts, and all ranks must take the same path, so they agree first
      // (one int: negligible next to an all-to-all).
      const Blocking blocking(watchdog_, "alltoallv", -1);
      check(MPI_Allreduce(MPI_IN_PLACE, &too_large, 1, MPI_INT, MPI_MAX, comm_), "alltoallv");
    }
    if (too_large != 0) {
      // Point-to-point with a reserved tag, through this class's isend/irecv
      // (which handle messages over INT_MAX bytes).
      Communicator::alltoallv_bytes(send, send_bytes, recv, recv_bytes);
      return;
    }
    std::vector<std::byte> copy;
    if (overlap(send, soff, recv, roff)) {  // MPI forbids aliased buffers
      copy.resize(soff);
      comm_detail::copy_bytes(copy.data(), send, soff);
      send = copy.data();
    }
    const Blocking blocking(watchdog_, "alltoallv", -1);
    check(MPI_Alltoallv(send, scounts.data(), sdispls.data(), MPI_BYTE, recv, rcounts.data(),
                        rdispls.data(), MPI_BYTE, comm_),
          "alltoallv");
  }

  void send_bytes(const void* buf, std::size_t bytes, int dst, int tag) override {
    check_thread("send");
    check_peer("send to", dst);
    const int mpi_tag = to_mpi_tag(tag, "send to", dst);
    const ByteType type(bytes, limit_);
    const Blocking blocking(watchdog_, "send", dst);
    const int rc = MPI_Send(buf, type.count(), type.type(), dst, mpi_tag, comm_);
    if (rc != MPI_SUCCESS)
      throw CommError(p2p_what("send to", dst, tag) + ": " + mpi_error_string(rc));
  }

  void recv_bytes(void* buf, std::size_t bytes, int src, int tag) override {
    check_thread("recv");
    check_peer("recv from", src);
    const int mpi_tag = to_mpi_tag(tag, "recv from", src);
    const ByteType type(bytes, limit_);
    MPI_Status status;
    int rc = MPI_SUCCESS;
    {
      const Blocking blocking(watchdog_, "recv", src);
      rc = MPI_Recv(buf, type.count(), type.type(), src, mpi_tag, comm_, &status);
    }
    check_recv(rc, status, type, bytes, src, tag, "recv from");
  }

  Request isend_bytes(const void* buf, std::size_t bytes, int dst, int tag) override {
    check_thread("isend");
    check_peer("isend to", dst);
    const int mpi_tag = to_mpi_tag(tag, "isend to", dst);
    ByteType type(bytes, limit_);
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc = MPI_Isend(buf, type.count(), type.type(), dst, mpi_tag, comm_, &request);
    if (rc != MPI_SUCCESS) {
      throw CommError(p2p_what("isend to", dst, tag) + ": " + mpi_error_string(rc));
    }
    return Request(
        std::make_unique<MpiPendingOp>(*this, request, std::move(type), bytes, dst, tag, false));
  }

  Request irecv_bytes(void* buf, std::size_t bytes, int src, int tag) override {
    check_thread("irecv");
    check_peer("irecv from", src);
    const int mpi_tag = to_mpi_tag(tag, "irecv from", src);
    ByteType type(bytes, limit_);
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc = MPI_Irecv(buf, type.count(), type.type(), src, mpi_tag, comm_, &request);
    if (rc != MPI_SUCCESS) {
      throw CommError(p2p_what("irecv from", src, tag) + ": " + mpi_error_string(rc));
    }
    return Request(
        std::make_unique<MpiPendingOp>(*this, request, std::move(type), bytes, src, tag, true));
  }

 private:
  // Tags dtrain's own protocols use, from kReservedTagBase up (the default
  // alltoallv uses kReservedTagBase + 1).
  static constexpr int kReservedTags = 1024;

  std::string prefix() const { return "rank " + std::to_string(rank_) + ": "; }

  void check_peer(const char* what, int peer) const {
    if (peer < 0 || peer >= size_) {
      throw CommError(prefix() + what + " rank " + std::to_string(peer) +
                      ": no such rank (world size " + std::to_string(size_) + ")");
    }
  }

  // Tags pass through unchanged when MPI_TAG_UB covers dtrain's reserved
  // range (OpenMPI: INT_MAX, so every non-negative int). With a smaller
  // MPI_TAG_UB (the standard only promises 32767), the reserved tags move to
  // the top kReservedTags values below it and user tags must stay under them.
  int to_mpi_tag(int tag, const char* what, int peer) const {
    const std::string problem = [&]() -> std::string {
      if (tag < 0) return "tags must be non-negative";
      if (tag_ub_ >= kReservedTagBase + (kReservedTags - 1)) {
        return tag <= tag_ub_ ? "" : "tag above MPI_TAG_UB = " + std::to_string(tag_ub_);
      }
      if (tag >= kReservedTagBase && tag < kReservedTagBase + kReservedTags) return "";
      const int user_max = tag_ub_ - kReservedTags;
      return tag <= user_max ? ""
                             : "tag above " + std::to_string(user_max) +
                                   " (MPI_TAG_UB = " + std::to_string(tag_ub_) +
                                   ", less the tags dtrain reserves)";
    }();
    if (!problem.empty()) throw CommError(p2p_what(what, peer, tag) + ": " + problem);
    if (tag_ub_ >= kReservedTagBase + (kReservedTags - 1) || tag < kReservedTagBase) return tag;
    return tag_ub_ - (tag - kReservedTagBase);
  }

  // MPI_Bcast of `bytes` bytes in chunks of at most limit_ bytes.
  void bcast_chunked(std::byte* buf, std::size_t bytes, int root) {
    for (std::size_t begin = 0; begin < bytes; begin += limit_) {
      const std::size_t m = std::min(limit_, bytes - begin);
      check(MPI_Bcast(buf + begin, static_cast<int>(m), MPI_BYTE, root, comm_), "broadcast");
    }
  }

  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;
  const std::size_t limit_;  // largest count of one MPI call
  const std::thread::id owner_;
  Watchdog watchdog_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int tag_ub_ = 32767;
};

bool MpiPendingOp::test() {
  const char* op = is_recv_ ? "irecv" : "isend";
  comm_.check_thread(op);
  int flag = 0;
  MPI_Status status;
  const int rc = MPI_Test(&request_, &flag, &status);
  if (rc == MPI_SUCCESS && flag == 0) return false;
  request_ = MPI_REQUEST_NULL;  // complete, or failed (and so done)
  if (is_recv_) {
    comm_.check_recv(rc, status, type_, bytes_, peer_, tag_, "irecv from");
  } else if (rc != MPI_SUCCESS) {
    throw CommError(comm_.p2p_what("isend to", peer_, tag_) + ": " + mpi_error_string(rc));
  }
  return true;
}

void MpiPendingOp::wait() {
  const char* op = is_recv_ ? "irecv" : "isend";
  comm_.check_thread(op);
  MPI_Status status;
  int rc = MPI_SUCCESS;
  {
    const Blocking blocking(comm_.watchdog(), op, peer_);
    rc = MPI_Wait(&request_, &status);
  }
  request_ = MPI_REQUEST_NULL;
  if (is_recv_) {
    comm_.check_recv(rc, status, type_, bytes_, peer_, tag_, "irecv from");
  } else if (rc != MPI_SUCCESS) {
    throw CommError(comm_.p2p_what("isend to", peer_, tag_) + ": " + mpi_error_string(rc));
  }
}

}  // namespace

bool mpi_available() { return true; }

MpiSession::MpiSession() {
  if (g_session_started.exchange(true)) {
    throw ConfigError(
        "MpiSession: MPI was already started in this process (at most one MpiSession per "
        "process, ever: MPI cannot be initialised twice)");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized != 0) {
    throw ConfigError("MpiSession: MPI was already initialised by someone other than dtrain");
  }
  int provided = MPI_THREAD_SINGLE;
  // Failures here end the process with MPI's own message
  // (MPI_ERRORS_ARE_FATAL is the default handler).
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw CommError("MpiSession: the MPI library offers thread level " + std::to_string(provided) +
                    " only; dtrain needs MPI_THREAD_FUNNELED (its watchdog thread runs beside "
                    "the MPI thread)");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  if (!mpi_finalized()) MPI_Finalize();
}

void MpiSession::abort_job(const std::string& message, int status) const {
  const bool newline = !message.empty() && message.back() == '\n';
  std::fprintf(stderr, "%s%s", message.c_str(), newline ? "" : "\n");
  std::fflush(stderr);
  if (!mpi_finalized()) MPI_Abort(MPI_COMM_WORLD, status);
  // MPI_Abort does not return; this covers MPI already finalised.
  std::_Exit(status);
}

std::unique_ptr<Communicator> make_mpi_communicator(const MpiSession& session,
                                                    const MpiOptions& options) {
  return comm_detail::make_mpi_communicator(session, options, comm_detail::MpiLimits{});
}

namespace comm_detail {

std::unique_ptr<Communicator> make_mpi_communicator(const MpiSession& session,
                                                    const MpiOptions& options,
                                                    const MpiLimits& limits) {
  if (options.timeout.count() <= 0) {
    throw ConfigError("mpi: timeout must be positive (got " +
                      std::to_string(options.timeout.count()) + " ms)");
  }
  if (limits.max_count < 1) throw ConfigError("mpi: max_count must be at least 1");
  if (mpi_finalized()) throw ConfigError("mpi: the MpiSession has already finalised MPI");
  int is_main = 0;
  MPI_Is_thread_main(&is_main);
  if (is_main == 0) {
    throw ConfigError(
        "mpi: communicators must be created (and used) on the thread that created the "
        "MpiSession (MPI runs at MPI_THREAD_FUNNELED)");
  }
  return std::make_unique<MpiComm>(session, options, limits);
}

}  // namespace comm_detail
}  // namespace dtrain
