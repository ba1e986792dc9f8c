#include "dtrain/comm/communicator.h"

#include <string>
#include <utility>

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

}  // namespace dtrain
