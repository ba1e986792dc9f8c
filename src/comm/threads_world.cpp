#include "threads_world.h"

#include <algorithm>
#include <thread>

#include "kernels.h"

namespace dtrain::comm_detail {
namespace {

using Clock = std::chrono::steady_clock;

// Tells the core this is a spin-wait (saves power, frees the sibling
// hyperthread); a no-op elsewhere.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How a barrier waiter waits, measured with bench_allreduce on a 2-vCPU VM
// (docs/BENCHMARKS.md). Blocking on the condition variable straight away
// costs a futex wake-up per waiter per barrier, ~100-200 us there. Worse,
// once one rank oversleeps, the others reach the next barrier before it and
// sleep too, and the world stays in that convoy. So a waiter first spins
// with `pause` (only when every rank can have a core: the collective on
// small buffers then completes in about a microsecond), then spins with
// yield (which lets a rank that shares this core run, the common case when
// oversubscribed), and only then blocks.
constexpr std::chrono::microseconds kPauseSpin{20};
constexpr std::chrono::microseconds kSpin{500};  // pause + yield spin in total

bool every_rank_has_a_core(int size) {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores != 0 && static_cast<unsigned>(size) <= cores;
}

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

std::string rank_prefix(int rank) { return "rank " + std::to_string(rank) + ": "; }

}  // namespace

const char* name_of(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kBarrier:
      return "barrier";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kAllreduce:
      return "allreduce";
    case CollectiveKind::kAllgather:
      return "allgather";
    case CollectiveKind::kAllgatherv:
      return "allgatherv";
    case CollectiveKind::kReduceScatter:
      return "reduce_scatter";
  }
  return "unknown collective";
}

std::string describe(const CollectiveDesc& desc) {
  std::string s = name_of(desc.kind);
  switch (desc.kind) {
    case CollectiveKind::kBarrier:
      return s + "()";
    case CollectiveKind::kBroadcast:
      return s + "(bytes=" + std::to_string(desc.count) + ", root=" + std::to_string(desc.root) +
             ")";
    case CollectiveKind::kAllgather:
      return s + "(bytes=" + std::to_string(desc.count) + ")";
    case CollectiveKind::kAllgatherv:
      return s + "(total bytes=" + std::to_string(desc.count) + ", block sizes hashed to " +
             std::to_string(desc.root) + ")";
    case CollectiveKind::kAllreduce:
    case CollectiveKind::kReduceScatter:
      return s + "(count=" + std::to_string(desc.count) + ", " + to_string(desc.type) + ", " +
             to_string(desc.op) + ")";
  }
  return s;
}

World::World(int size, std::chrono::milliseconds timeout)
    : size_(size),
      timeout_(timeout),
      pause_spin_(every_rank_has_a_core(size)),
      ranks_(std::make_unique<RankState[]>(static_cast<std::size_t>(size))),
      mailboxes_(std::make_unique<Mailbox[]>(static_cast<std::size_t>(size))) {}

// --- Barrier ---------------------------------------------------------------

std::uint32_t World::arrive() {
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint32_t gen = generation_of(state);
    const auto count = static_cast<std::uint32_t>(state);
    const bool last = count + 1 == static_cast<std::uint32_t>(size_);
    const std::uint64_t next =
        last ? std::uint64_t{gen + 1U} << 32 : (std::uint64_t{gen} << 32 | (count + 1));
    // The chain of RMWs on state_ carries every rank's writes (its slot, its
    // part of the collective) to the last arriver, and from it to every
    // waiter that sees the new generation. seq_cst, against the sleepers'
    // increment-then-load: either a sleeper sees the new generation, or the
    // last arriver sees the sleeper.
    if (state_.compare_exchange_weak(state, next, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      if (last && sleepers_.load(std::memory_order_seq_cst) > 0) {
        // Taking the mutex orders the notify after a sleeper that has
        // counted itself has also started waiting.
        { std::lock_guard lock(mu_); }
        cv_.notify_all();
      }
      return gen;
    }
  }
}

bool World::withdraw(std::uint32_t gen) {
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(state) != gen) return false;
    // arrived_gen stays: the world is failed whenever a rank withdraws, and
    // timeout messages should name the ranks that never came, not those
    // that gave up waiting.
    if (state_.compare_exchange_weak(state, state - 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return true;
    }
  }
}

void World::barrier(int rank, const char* op, Wait wait) {
  const bool interruptible = wait == Wait::kInterruptible;
  if (interruptible && aborted()) throw_aborted(rank, op);
  // Published before arriving, so that whoever sees this rank counted also
  // sees which generation it is counted in. (The generation cannot move
  // before this rank arrives.)
  ranks_[rank].arrived_gen.store(generation_of(state_.load(std::memory_order_relaxed)),
                                 std::memory_order_seq_cst);
  const std::uint32_t gen = arrive();
  if (released(gen) || spin_until_released(gen)) return;

  enum class Outcome { kReleased, kAborted, kPeerGone, kTimeout } outcome = Outcome::kReleased;
  int gone = -1;
  {
    std::unique_lock lock(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    const auto deadline = Clock::now() + timeout_;
    while (generation_of(state_.load(std::memory_order_seq_cst)) == gen) {
      if (!interruptible) {
        cv_.wait(lock);
        continue;
      }
      if (aborted()) {
        outcome = Outcome::kAborted;
      } else if (gone = finished_missing_rank(gen); gone >= 0) {
        outcome = Outcome::kPeerGone;
      } else if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        outcome = Outcome::kTimeout;
      }
      if (outcome != Outcome::kReleased) {
        // Released meanwhile: committed, so carry on as if nothing happened
        // (the next call sees the abort, if any).
        if (!withdraw(gen)) outcome = Outcome::kReleased;
        break;
      }
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }
  switch (outcome) {
    case Outcome::kReleased:
      return;
    case Outcome::kAborted:
      throw_aborted(rank, op);
    case Outcome::kPeerGone:
      fail_and_throw(rank, rank_prefix(rank) + op + ": rank " + std::to_string(gone) +
                               " returned from its function without calling it");
    case Outcome::kTimeout:
      fail_and_throw(rank, rank_prefix(rank) + op + " timed out after " +
                               std::to_string(timeout_.count()) + " ms waiting for rank(s) " +
                               missing_ranks(gen));
  }
}

bool World::spin_until_released(std::uint32_t gen) const {
  const auto start = Clock::now();
  if (pause_spin_) {
    const auto end = start + kPauseSpin;
    do {
      for (int i = 0; i < 16; ++i) {
        if (released(gen)) return true;
        cpu_relax();
      }
    } while (Clock::now() < end);
  }
  const auto end = start + kSpin;
  do {
    if (released(gen)) return true;
    std::this_thread::yield();
  } while (Clock::now() < end);
  return released(gen);
}

int World::finished_missing_rank(std::uint32_t gen) const {
  for (int k = 0; k < size_; ++k) {
    if (finished(k) && ranks_[k].arrived_gen.load(std::memory_order_seq_cst) != gen) return k;
  }
  return -1;
}

std::string World::missing_ranks(std::uint32_t gen) const {
  std::string list;
  for (int k = 0; k < size_; ++k) {
    if (ranks_[k].arrived_gen.load(std::memory_order_seq_cst) != gen) {
      if (!list.empty()) list += ", ";
      list += std::to_string(k);
    }
  }
  return list.empty() ? "(none)" : list;
}

// --- Failure ---------------------------------------------------------------

void World::fail(int rank, std::exception_ptr error) noexcept {
  {
    std::lock_guard lock(failure_mu_);
    if (!failure_) {
      failure_ = std::move(error);
      failed_rank_ = rank;
      try {
        failed_what_ = what_of(failure_);
      } catch (...) {  // out of memory for the message: the rethrown error still says it
      }
    }
  }
  aborted_.store(true, std::memory_order_seq_cst);
  wake_all();
}

void World::fail_and_throw(int rank, const std::string& what) {
  CommError error(what);
  fail(rank, std::make_exception_ptr(error));
  throw error;
}

void World::finish(int rank) noexcept {
  ranks_[rank].finished.store(true, std::memory_order_seq_cst);
  wake_all();
}

// Every waiter re-checks its condition under the mutex it sleeps on, after a
// flag (aborted_, finished) is set: locking each mutex before notifying means
// none can miss the change between its check and its wait.
void World::wake_all() noexcept {
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
  for (int k = 0; k < size_; ++k) {
    { std::lock_guard lock(mailboxes_[k].mu); }
    mailboxes_[k].cv.notify_all();
  }
}

void World::throw_aborted(int rank, const std::string& op) const {
  std::string what;
  {
    std::lock_guard lock(failure_mu_);
    what = rank_prefix(rank) + op + " aborted: rank " + std::to_string(failed_rank_) +
           " failed: " + failed_what_;
  }
  throw AbortedError(what);
}

void World::rethrow_failure() const {
  std::lock_guard lock(failure_mu_);
  if (failure_) std::rethrow_exception(failure_);
}

// --- Point-to-point ----------------------------------------------------------

void World::send(int src, int dst, int tag, const void* buf, std::size_t bytes) {
  const auto key = std::make_pair(src, tag);
  Mailbox& box = mailboxes_[dst];
  // Hands the message to the oldest receive posted for it, if any.
  const auto deliver = [&](const void* data) {
    auto it = box.channels.find(key);
    if (it == box.channels.end() || it->second.posted.empty()) return false;
    PostedRecv* posted = it->second.posted.front();
    it->second.posted.pop_front();
    if (it->second.posted.empty() && it->second.messages.empty()) box.channels.erase(it);
    posted->message_bytes = bytes;
    if (bytes == posted->bytes) copy_bytes(posted->buf, data, bytes);
    posted->done = true;
    return true;
  };

  if (aborted()) {
    throw_aborted(src,
                  "send to rank " + std::to_string(dst) + " (tag " + std::to_string(tag) + ")");
  }
  {
    std::lock_guard lock(box.mu);
    if (deliver(buf)) {
      box.cv.notify_all();
      return;
    }
  }
  // Nobody waits for it yet: buffer a copy, made outside the lock.
  Message message{bytes != 0 ? std::make_unique_for_overwrite<std::byte[]>(bytes) : nullptr, bytes};
  copy_bytes(message.data.get(), buf, bytes);
  std::lock_guard lock(box.mu);
  if (deliver(message.data.get())) {
    box.cv.notify_all();
  } else {
    box.channels[key].messages.push_back(std::move(message));
  }
}

std::unique_ptr<PendingOp> World::post_recv(int rank, int src, int tag, void* buf,
                                            std::size_t bytes, const char* op) {
  auto recv = std::make_unique<RecvOp>(*this, rank, src, tag, buf, bytes, op);
  if (aborted()) throw_aborted(rank, recv->what_op());
  Mailbox& box = mailboxes_[rank];
  Message message;
  {
    std::lock_guard lock(box.mu);
    const auto key = std::make_pair(src, tag);
    auto it = box.channels.find(key);
    if (it != box.channels.end() && !it->second.messages.empty()) {
      message = std::move(it->second.messages.front());
      it->second.messages.pop_front();
      if (it->second.messages.empty()) box.channels.erase(it);
    } else {
      box.channels[key].posted.push_back(&recv->posted_);
      recv->queued_ = true;
      return recv;
    }
  }
  // Matched a buffered message; nobody else can see this receive yet, so the
  // copy needs no lock.
  recv->posted_.message_bytes = message.bytes;
  if (message.bytes == bytes) copy_bytes(buf, message.data.get(), bytes);
  recv->posted_.done = true;
  return recv;
}

void World::cancel_locked(int rank, int src, int tag, PostedRecv* posted) {
  Mailbox& box = mailboxes_[rank];
  auto it = box.channels.find(std::make_pair(src, tag));
  if (it == box.channels.end()) return;
  auto& queue = it->second.posted;
  queue.erase(std::remove(queue.begin(), queue.end(), posted), queue.end());
  if (queue.empty() && it->second.messages.empty()) box.channels.erase(it);
}

RecvOp::RecvOp(World& world, int rank, int src, int tag, void* buf, std::size_t bytes,
               const char* op)
    : world_(world), rank_(rank), src_(src), tag_(tag), op_(op) {
  posted_.buf = buf;
  posted_.bytes = bytes;
}

RecvOp::~RecvOp() {
  if (!queued_) return;
  std::lock_guard lock(world_.mailboxes_[rank_].mu);
  // Still queued only if given up on without a wait() (a Request always
  // waits first); a sender must not write into a buffer that is gone.
  if (!posted_.done) world_.cancel_locked(rank_, src_, tag_, &posted_);
}

std::string RecvOp::what_op() const {
  return std::string(op_) + " from rank " + std::to_string(src_) + " (tag " + std::to_string(tag_) +
         ")";
}

void RecvOp::check_size() const {
  if (posted_.message_bytes != posted_.bytes) {
    throw CommError(rank_prefix(rank_) + what_op() + ": message is " +
                    std::to_string(posted_.message_bytes) + " bytes but the buffer is " +
                    std::to_string(posted_.bytes) + " bytes");
  }
}

bool RecvOp::test() {
  std::unique_lock lock(world_.mailboxes_[rank_].mu);
  if (posted_.done) {
    check_size();
    return true;
  }
  if (world_.aborted()) {
    world_.cancel_locked(rank_, src_, tag_, &posted_);
    queued_ = false;
    lock.unlock();
    world_.throw_aborted(rank_, what_op());
  }
  if (world_.finished(src_)) {
    world_.cancel_locked(rank_, src_, tag_, &posted_);
    queued_ = false;
    throw CommError(rank_prefix(rank_) + what_op() + ": rank " + std::to_string(src_) +
                    " returned from its function without sending it");
  }
  return false;
}

void RecvOp::wait() {
  auto& box = world_.mailboxes_[rank_];
  std::unique_lock lock(box.mu);
  const auto deadline = Clock::now() + world_.timeout_;
  for (;;) {
    if (posted_.done) {
      check_size();
      return;
    }
    if (world_.aborted() || world_.finished(src_)) {
      // test() has the messages for both.
      lock.unlock();
      (void)test();
      lock.lock();
      continue;  // test() threw unless the message arrived meanwhile
    }
    if (box.cv.wait_until(lock, deadline) == std::cv_status::timeout && !posted_.done) {
      world_.cancel_locked(rank_, src_, tag_, &posted_);
      queued_ = false;
      throw CommError(rank_prefix(rank_) + what_op() + " timed out after " +
                      std::to_string(world_.timeout_.count()) + " ms");
    }
  }
}

}  // namespace dtrain::comm_detail
