// Internals of the MPI backend that its tests reach for: the per-call count
// limit, lowered in tests so that the paths for buffers over INT_MAX elements
// (chunked collectives, derived datatypes) run on small buffers.
#pragma once

#include <climits>
#include <cstddef>
#include <memory>

#include "dtrain/comm/mpi.h"

namespace dtrain::comm_detail {

struct MpiLimits {
  // Largest count passed to one MPI call (MPI counts are int). Must be >= 1.
  std::size_t max_count = INT_MAX;
};

std::unique_ptr<Communicator> make_mpi_communicator(const MpiSession& session,
                                                    const MpiOptions& options,
                                                    const MpiLimits& limits);

}  // namespace dtrain::comm_detail
