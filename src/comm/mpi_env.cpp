// launched_by_mpi(): in every build, with or without the MPI library, so that
// the CLI can tell "started by mpirun" apart from "run by hand" and say what
// is missing.
#include <cstdlib>

#include "dtrain/comm/mpi.h"

namespace dtrain {

bool launched_by_mpi() {
  // Each launcher sets at least one of these in every process it starts:
  //  - OMPI_COMM_WORLD_SIZE: OpenMPI's mpirun/mpiexec (all versions);
  //  - PMIX_RANK: PMIx launchers (OpenMPI >= 4 and srun --mpi=pmix);
  //  - PMI_RANK, PMI_SIZE: MPICH's and Intel MPI's Hydra mpiexec, and srun
  //    --mpi=pmi2;
  //  - MPI_LOCALNRANKS: Hydra (MPICH >= 3).
  // A plain srun without an MPI plugin sets none of them, and neither does a
  // singleton (a program run without a launcher), which is the point.
  for (const char* name :
       {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

}  // namespace dtrain
