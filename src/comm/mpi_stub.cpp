// The MPI backend's API in a build without MPI (DTRAIN_WITH_MPI=OFF or no MPI
// library found): nothing can start a session, so every entry point that
// needs one reports how to get it.
#include <cstdio>
#include <cstdlib>

#include "dtrain/comm/mpi.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

constexpr const char* kNoMpi =
    "this dtrain was built without MPI; install libopenmpi-dev and rebuild";

}  // namespace

bool mpi_available() { return false; }

MpiSession::MpiSession() { throw ConfigError(kNoMpi); }

MpiSession::~MpiSession() = default;

void MpiSession::abort_job(const std::string& message, int /*status*/) const {
  // Unreachable: no MpiSession can be constructed in this build.
  std::fprintf(stderr, "%s\n", message.c_str());
  std::abort();
}

std::unique_ptr<Communicator> make_mpi_communicator(const MpiSession& /*session*/,
                                                    const MpiOptions& /*options*/) {
  throw ConfigError(kNoMpi);
}

}  // namespace dtrain
