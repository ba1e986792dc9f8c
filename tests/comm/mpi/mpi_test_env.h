// What the MPI tests share: the process's MpiSession and a communicator over
// all ranks, both created by test_main.cpp before any test runs, plus helpers
// that check results across ranks with raw MPI (so that a broken dtrain
// collective cannot vouch for itself).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/comm/mpi.h"

namespace dtrain::mpi_test {

const MpiSession& session();
Communicator& comm();

// True when `bytes` is identical on every rank (compared by hash).
bool same_on_all_ranks(std::span<const unsigned char> bytes);

template <class T>
bool same_on_all_ranks(const std::vector<T>& v) {
  return same_on_all_ranks(std::span<const unsigned char>(
      reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(T)));
}

// Whether every rank passes `ok` (raw MPI_Allreduce).
bool all_ranks(bool ok);

}  // namespace dtrain::mpi_test
