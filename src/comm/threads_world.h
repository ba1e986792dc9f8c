// Shared state of one run_threads call: the rendezvous point of its ranks.
//
// One World exists per run_threads call and lives on that call's stack, so
// any number of worlds can run side by side in one process.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "dtrain/comm/communicator.h"
#include "dtrain/error.h"

namespace dtrain::comm_detail {

// Thrown to the ranks woken up because another rank failed. run_threads
// rethrows the root cause, never one of these.
class AbortedError : public CommError {
 public:
  using CommError::CommError;
};

enum class CollectiveKind : std::uint8_t {
  kBarrier,
  kBroadcast,
  kAllreduce,
  kAllgather,
  kAllgatherv,
  kReduceScatter
};

// What a rank says it is calling. Every rank posts one per collective; they
// must all be equal, or the call is a programming error (ranks out of step).
struct CollectiveDesc {
  CollectiveKind kind = CollectiveKind::kBarrier;
  std::size_t count = 0;  // elements for reductions, bytes for copies (allgatherv: in all)
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int root = -1;  // allgatherv: a hash of every rank's block size

  bool operator==(const CollectiveDesc&) const = default;
};

const char* name_of(CollectiveKind kind);
// "allreduce(count=10, float32, sum)", for mismatch messages.
std::string describe(const CollectiveDesc& desc);

struct CollectiveSlot {
  CollectiveDesc desc;
  const void* send = nullptr;
  void* recv = nullptr;
};

// A receive posted before its message arrived. The sender copies straight
// into `buf` and sets `done`; both sides hold the mailbox mutex.
struct PostedRecv {
  void* buf = nullptr;
  std::size_t bytes = 0;
  bool done = false;
  std::size_t message_bytes = 0;  // valid once done; != bytes is an error
};

class World {
 public:
  World(int size, std::chrono::milliseconds timeout);
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // --- Collectives -------------------------------------------------------

  // Slots are double-buffered by the parity of each rank's collective
  // sequence number: a rank that leaves a barrier early may post its next
  // call while slower ranks still read the previous one, but it cannot get
  // two calls ahead, since it would need them to arrive at the next barrier.
  CollectiveSlot& slot(int rank, std::uint64_t seq) { return ranks_[rank].slots[seq & 1]; }

  // How a barrier may end.
  enum class Wait {
    // Entry into a collective: on abort, timeout, or a peer that returned,
    // the rank withdraws its arrival and throws, so that nobody can start
    // touching its buffers. (Unless the barrier was released meanwhile:
    // then the rank is committed and the call returns normally.)
    kInterruptible,
    // Exit from a collective: peers may still be reading or writing this
    // rank's buffers, so it waits for them whatever happens. It cannot
    // hang: every rank past the entry barrier only has bounded memory work
    // left before it arrives here.
    kCommitted,
  };

  // Returns once every rank has called barrier() for the same generation.
  // kInterruptible throws AbortedError if the world is aborted meanwhile,
  // and fails the world with a CommError on timeout or when a rank it waits
  // for has returned from its function.
  void barrier(int rank, const char* op, Wait wait = Wait::kInterruptible);

  // Records `what` as this world's failure (unless there already is one),
  // aborts the world, and throws it. For errors that leave the ranks out of
  // step, which no later collective could recover from.
  [[noreturn]] void fail_and_throw(int rank, const std::string& what);

  // --- Point-to-point ----------------------------------------------------

  // Buffered: copies the message into dst's mailbox (or straight into a
  // receive dst already posted) and returns.
  void send(int src, int dst, int tag, const void* buf, std::size_t bytes);

  // Posts a receive into buf; completes it at once if a matching message is
  // already waiting. Receives for one (src, tag) match messages in order.
  std::unique_ptr<PendingOp> post_recv(int rank, int src, int tag, void* buf, std::size_t bytes,
                                       const char* op);

  // --- Lifecycle ---------------------------------------------------------

  // Records a rank's failure: the first one recorded is the root cause (an
  // AbortedError can only follow it). Aborts the world, waking every waiter.
  void fail(int rank, std::exception_ptr error) noexcept;
  // A rank has returned from its function (normally or not): nobody may wait
  // for it any more.
  void finish(int rank) noexcept;
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }
  [[noreturn]] void throw_aborted(int rank, const std::string& op) const;
  // After all ranks have finished: rethrows the root cause, if any.
  void rethrow_failure() const;

 private:
  friend class RecvOp;

  static constexpr std::uint64_t kNever = ~std::uint64_t{0};

  struct alignas(64) RankState {
    // Generation of the barrier this rank last arrived at, and whether it
    // has returned: together they tell a waiter that a rank
    // will never come.
    std::atomic<std::uint64_t> arrived_gen{kNever};
    std::atomic<bool> finished{false};
    std::array<CollectiveSlot, 2> slots;
  };

  struct Message {
    std::unique_ptr<std::byte[]> data;
    std::size_t bytes = 0;
  };
  // Messages and posted receives for one (src, tag); at most one of the two
  // queues is non-empty at any time.
  struct Channel {
    std::deque<Message> messages;
    std::deque<PostedRecv*> posted;
  };
  struct Mailbox {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::pair<int, int>, Channel> channels;
  };

  // Barrier state in one word, so that arriving, completing and
  // withdrawing are single atomic steps: the generation in the high 32 bits
  // (it only has to differ from the one a waiter arrived at), the number of
  // ranks arrived at it in the low 32.
  static std::uint32_t generation_of(std::uint64_t state) {
    return static_cast<std::uint32_t>(state >> 32);
  }
  // Counts this rank in; returns the generation it arrived at.
  std::uint32_t arrive();
  // Counts this rank out again, unless generation gen has been released
  // already (false: the rank is committed to the collective).
  bool withdraw(std::uint32_t gen);
  bool released(std::uint32_t gen) const {
    return generation_of(state_.load(std::memory_order_acquire)) != gen;
  }
  // Spins, then yields, for a bounded time (see kSpin); true once the
  // barrier of generation gen has been released.
  bool spin_until_released(std::uint32_t gen) const;
  void wake_all() noexcept;
  std::string missing_ranks(std::uint32_t gen) const;
  int finished_missing_rank(std::uint32_t gen) const;
  bool finished(int rank) const { return ranks_[rank].finished.load(std::memory_order_seq_cst); }
  // Removes a posted receive that gives up (timeout, abort). Caller holds
  // the mailbox mutex.
  void cancel_locked(int rank, int src, int tag, PostedRecv* posted);

  const int size_;
  const std::chrono::milliseconds timeout_;
  // Busy-wait with `pause` before yielding only when every rank can have a
  // core: oversubscribed, it would burn the time slice of the very rank it
  // waits for.
  const bool pause_spin_;

  std::unique_ptr<RankState[]> ranks_;
  std::unique_ptr<Mailbox[]> mailboxes_;

  // Barrier: see generation_of(). Waiters spin on state_, then sleep on
  // cv_; sleepers_ tells the last arriver whether it has to notify.
  alignas(64) std::atomic<std::uint64_t> state_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;

  std::atomic<bool> aborted_{false};
  mutable std::mutex failure_mu_;
  std::exception_ptr failure_;
  int failed_rank_ = -1;
  std::string failed_what_;
};

// Non-blocking receive handle (irecv), also the implementation of recv.
class RecvOp final : public PendingOp {
 public:
  RecvOp(World& world, int rank, int src, int tag, void* buf, std::size_t bytes, const char* op);
  ~RecvOp() override;
  RecvOp(const RecvOp&) = delete;
  RecvOp& operator=(const RecvOp&) = delete;

  bool test() override;
  void wait() override;

 private:
  friend class World;
  std::string what_op() const;
  // Caller holds the mailbox mutex and saw posted_.done.
  void check_size() const;

  World& world_;
  const int rank_;
  const int src_;
  const int tag_;
  const char* const op_;
  PostedRecv posted_;
  bool queued_ = false;  // &posted_ sits in a Channel::posted queue
};

}  // namespace dtrain::comm_detail
