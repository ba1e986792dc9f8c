// The MPI backend: one worker per MPI rank, over OpenMPI (or any MPI-3
// library). Available when dtrain was built with MPI (DTRAIN_HAVE_MPI).
//
// Collectives map onto the library's own (MPI_Allreduce, MPI_Bcast,
// MPI_Allgather, MPI_Reduce_scatter_block, MPI_Alltoallv; buffers over
// INT_MAX elements go in chunks), point-to-point onto MPI_Send/MPI_Recv and
// MPI_Isend/MPI_Irecv with the caller's tag (any tag in [0, MPI_TAG_UB];
// OpenMPI's MPI_TAG_UB is INT_MAX). Differences from the threads backend's
// contract:
//  - reductions are deterministic for a fixed process count and message size
//    (OpenMPI picks its algorithm from those alone) but are not promised to
//    combine in rank order, so they can differ from the threads backend in the
//    last bits;
//  - a blocking call that outlives the timeout cannot be cancelled inside MPI:
//    the communicator's watchdog thread prints "dtrain: rank R: <operation>
//    timed out after T s ..." and ends the process with std::_Exit(3), which
//    makes mpirun end the whole job (it never throws CommError);
//  - mismatched collectives between ranks are not detected (MPI would need an
//    extra collective per call); they end in the timeout above;
//  - kMax/kMin with NaN follow the MPI library, not std::max/std::min;
//  - send/isend are not buffered by dtrain: a blocking send may wait for the
//    matching receive (MPI standard mode);
//  - only the thread that created the MpiSession may use the communicator
//    (MPI_THREAD_FUNNELED; other threads get CommError), and Requests must
//    not outlive it.
#pragma once

#include <chrono>
#include <memory>

#include "dtrain/comm/communicator.h"

namespace dtrain {

// True when this process was started by an MPI launcher (mpirun/mpiexec of
// OpenMPI, MPICH/Hydra, or srun with PMI/PMIx), judged from the environment
// variables those launchers set; never initialises MPI.
bool launched_by_mpi();

// Whether this build of dtrain has the MPI backend.
bool mpi_available();

// RAII guard of the MPI library: MPI_Init_thread (MPI_THREAD_FUNNELED: only
// the thread that created the session calls MPI) on construction,
// MPI_Finalize on destruction. At most one per process, ever (MPI cannot be
// re-initialised). Throws ConfigError when dtrain was built without MPI.
class MpiSession {
 public:
  MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession();

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }

  // Ends every process of the job (MPI_Abort) after printing `message` (one
  // line) on stderr. For unrecoverable errors on one rank, which would
  // otherwise leave the others blocked in a collective.
  [[noreturn]] void abort_job(const std::string& message, int status = 1) const;

 private:
  int rank_ = 0;
  int size_ = 1;
};

struct MpiOptions {
  // How long any blocking call may take before the job is ended.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// A communicator over a private duplicate of MPI_COMM_WORLD (so dtrain's
// messages never match a user's). Requires a live MpiSession.
std::unique_ptr<Communicator> make_mpi_communicator(const MpiSession& session,
                                                    const MpiOptions& options = {});

}  // namespace dtrain
