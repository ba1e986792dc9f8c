#include "dtrain/comm/communicator.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dtrain/error.h"

namespace dtrain {

const char* to_string(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt64:
      return "int64";
    case DataType::kUint64:
      return "uint64";
  }
  return "unknown-dtype";
}

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kMean:
      return "mean";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "unknown-op";
}

std::size_t size_of(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat64:
    case DataType::kInt64:
    case DataType::kUint64:
      return 8;
  }
  throw ConfigError("size_of: unknown DataType " + std::to_string(static_cast<int>(t)));
}

namespace {

// Completes `op` for a destructor or a move-assignment, neither of which may
// throw: an error found now is discarded (documented on Request; callers who
// care call wait() themselves).
void wait_discarding_errors(std::unique_ptr<PendingOp>& op) noexcept {
  if (!op) return;
  try {
    op->wait();
  } catch (...) {  // NOLINT(bugprone-empty-catch): see above
  }
  op.reset();
}

}  // namespace

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    wait_discarding_errors(op_);
    op_ = std::move(other.op_);
  }
  return *this;
}

Request::~Request() { wait_discarding_errors(op_); }

bool Request::test() {
  if (!op_) return true;
  // Moved out first so that a failed operation counts as done and is not
  // waited for again by the destructor.
  auto op = std::move(op_);
  if (op->test()) return true;
  op_ = std::move(op);
  return false;
}

void Request::wait() {
  if (!op_) return;
  auto op = std::move(op_);
  op->wait();
}

void Communicator::check_multiple(const char* op, std::size_t small, std::size_t big) const {
  const auto n = static_cast<std::size_t>(size());
  if (big != n * small) {
    throw CommError("rank " + std::to_string(rank()) + ": " + op + ": buffer of " +
                    std::to_string(big) + " elements must hold " + std::to_string(n) +
                    " (world size) x " + std::to_string(small) + " = " + std::to_string(n * small));
  }
}

void Communicator::check_alltoallv(std::size_t send_total, std::span<const std::size_t> send_bytes,
                                   std::size_t recv_total,
                                   std::span<const std::size_t> recv_bytes) const {
  const auto n = static_cast<std::size_t>(size());
  const auto sum = [](std::span<const std::size_t> v) {
    std::size_t s = 0;
    for (const std::size_t x : v) s += x;
    return s;
  };
  if (send_bytes.size() != n || recv_bytes.size() != n) {
    throw CommError("rank " + std::to_string(rank()) + ": alltoallv: need one count per rank (" +
                    std::to_string(n) + "), got " + std::to_string(send_bytes.size()) +
                    " send and " + std::to_string(recv_bytes.size()) + " receive counts");
  }
  if (sum(send_bytes) != send_total || sum(recv_bytes) != recv_total) {
    throw CommError("rank " + std::to_string(rank()) +
                    ": alltoallv: counts do not add up to the buffer sizes");
  }
}

void Communicator::check_allgatherv(std::size_t send, std::size_t recv,
                                    std::span<const std::size_t> counts, std::size_t total) const {
  const std::string where = "rank " + std::to_string(rank()) + ": allgatherv: ";
  if (counts.size() != static_cast<std::size_t>(size())) {
    throw CommError(where + "need one count per rank (" + std::to_string(size()) + "), got " +
                    std::to_string(counts.size()));
  }
  if (counts[static_cast<std::size_t>(rank())] != send) {
    throw CommError(where + "sends " + std::to_string(send) + " elements but its count says " +
                    std::to_string(counts[static_cast<std::size_t>(rank())]));
  }
  if (recv != total) {
    throw CommError(where + "buffer of " + std::to_string(recv) + " elements for " +
                    std::to_string(total) + " in all");
  }
}

void Communicator::reduce_scatter_sum_to_raw(const void* send, void* scratch,
                                             std::size_t count_per_rank, DataType type,
                                             ConsumeSum consume, void* context) {
  reduce_scatter_raw(send, scratch, count_per_rank, type, ReduceOp::kSum);
  consume(context, scratch, nullptr);
}

void Communicator::allgatherv_bytes(const void* send, void* recv,
                                    std::span<const std::size_t> recv_bytes) {
  const auto n = static_cast<std::size_t>(size());
  const std::size_t mine = recv_bytes[static_cast<std::size_t>(rank())];
  std::vector<unsigned char> copies(n * mine);
  for (std::size_t i = 0; i < n; ++i) {
    if (mine > 0) std::memcpy(copies.data() + i * mine, send, mine);
  }
  const std::vector<std::size_t> send_bytes(n, mine);
  alltoallv_bytes(copies.data(), send_bytes, recv, recv_bytes);
}

void Communicator::alltoallv_bytes(const void* send, std::span<const std::size_t> send_bytes,
                                   void* recv, std::span<const std::size_t> recv_bytes) {
  const int n = size();
  const int me = rank();
  const auto* in = static_cast<const unsigned char*>(send);
  auto* out = static_cast<unsigned char*>(recv);
  std::vector<std::size_t> send_offset(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::size_t> recv_offset(static_cast<std::size_t>(n) + 1, 0);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    send_offset[i + 1] = send_offset[i] + send_bytes[i];
    recv_offset[i + 1] = recv_offset[i] + recv_bytes[i];
  }
  constexpr int kTag = kReservedTagBase + 1;
  std::vector<Request> pending;
  pending.reserve(2 * static_cast<std::size_t>(n));
  for (int peer = 0; peer < n; ++peer) {
    if (peer == me) continue;
    const auto p = static_cast<std::size_t>(peer);
    pending.push_back(
        irecv(std::span<unsigned char>(out + recv_offset[p], recv_bytes[p]), peer, kTag));
  }
  for (int peer = 0; peer < n; ++peer) {
    if (peer == me) continue;
    const auto p = static_cast<std::size_t>(peer);
    pending.push_back(
        isend(std::span<const unsigned char>(in + send_offset[p], send_bytes[p]), peer, kTag));
  }
  const auto self = static_cast<std::size_t>(me);
  if (send_bytes[self] != recv_bytes[self]) {
    throw CommError("rank " + std::to_string(me) + ": alltoallv: sends " +
                    std::to_string(send_bytes[self]) + " bytes to itself but expects " +
                    std::to_string(recv_bytes[self]));
  }
  for (std::size_t i = 0; i < send_bytes[self]; ++i)
    out[recv_offset[self] + i] = in[send_offset[self] + i];
  for (Request& r : pending) r.wait();
}

}  // namespace dtrain
