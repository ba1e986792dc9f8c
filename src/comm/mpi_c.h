// <mpi.h>, C API only. OpenMPI's and MPICH's headers pull in the deprecated
// C++ bindings when compiled as C++, which would need libmpi_cxx and bring
// warnings of their own; dtrain only calls the C API.
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
