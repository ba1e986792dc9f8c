// How workers' gradients are combined into one update.
//
// The trainer hands a strategy its local contribution — summed gradient,
// followed by a few scalars (loss sum, row count) — and gets back the sum over
// all workers. Keeping the extras in the same buffer means one collective per
// step, whatever the model size.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "dtrain/comm/communicator.h"

namespace dtrain {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual std::string name() const = 0;
  // In place: local sums in, global sums out (identical on every worker).
  // Linear models combine double sums, networks float32 ones.
  virtual void combine(Communicator& comm, std::span<double> sums) = 0;
  virtual void combine(Communicator& comm, std::span<float> sums) = 0;
};

// Bulk-synchronous parallel over a peer-to-peer allreduce: every worker
// waits for every other each step, and all replicas apply the same update.
class AllreduceSync final : public GradientSync {
 public:
  std::string name() const override { return "bsp"; }
  void combine(Communicator& comm, std::span<double> sums) override {
    comm.allreduce(sums, ReduceOp::kSum);
  }
  void combine(Communicator& comm, std::span<float> sums) override {
    comm.allreduce(sums, ReduceOp::kSum);
  }
};

}  // namespace dtrain
