// What one rank did while synchronising: time, bytes and staleness, kept by
// every strategy and by parameter servers and their clients alike.
#pragma once

#include <cstdint>

namespace dtrain {

// Accumulated until reset by the owner (the trainer resets them each epoch).
struct SyncCounters {
  // Gradient and local update, injected slowness included.
  double compute_s = 0.0;
  // Moving bytes: collectives, and for parameter servers and their clients
  // posting, copying and completing messages.
  double comm_s = 0.0;
  // Blocked on other ranks: waiting for the slowest peer at a collective, a
  // worker waiting for its pull to be answered (which is where the BSP/SSP
  // condition holds it), a server idle with no push to process.
  double wait_s = 0.0;
  // Bytes in and out of this rank. Point-to-point messages count their
  // payload, header included; every message on a tag has one size, so a
  // parameter-server worker's end-of-epoch message is as long as its push.
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  // Parameter servers: pushes applied (empty ones included).
  std::uint64_t updates = 0;
  // Staleness of the updates recorded (see parameter_server.h): the largest,
  // and the sum and count for the mean.
  std::uint64_t max_staleness = 0;
  double staleness_sum = 0.0;
  std::uint64_t staleness_count = 0;

  double mean_staleness() const {
    return staleness_count == 0 ? 0.0 : staleness_sum / static_cast<double>(staleness_count);
  }
};

}  // namespace dtrain
