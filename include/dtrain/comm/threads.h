// The threads backend: N workers as threads of one process, sharing memory.
//
// Collectives work in place on the callers' buffers: every rank publishes its
// buffer pointer, and rank r reduces (or copies) slice r of the buffer across
// all ranks, in rank order, writing the result back to every rank's buffer.
// Each byte is thus read N times and written N times in total, by N threads
// in parallel, with no serial pass through rank 0 — the shared-memory
// equivalent of reduce-scatter + allgather.
//
// Backend specifics (beyond the Communicator contract):
//  - Every collective checks that all ranks made the same call (operation,
//    count, type, op, root) and throws CommError naming the disagreeing rank
//    otherwise. A collective that fails (mismatch, timeout, a peer that
//    returned without calling it) aborts the whole run: every later call on
//    any rank throws.
//  - A rank waits for its peers with the timeout everywhere except on the
//    way out of a collective, where peers may still be reading or writing
//    its buffers. That wait is bounded by their remaining memory work.
//  - Waiting ranks spin briefly, then yield, then sleep (see threads_world.cpp).
//  - send/isend are buffered: they copy the message and return. Requests
//    must not outlive the function run_threads runs.
//  - Integer kMean truncates (sum / N); max/min treat NaN like std::max and
//    std::min applied in rank order.
#pragma once

#include <chrono>
#include <functional>

#include "dtrain/comm/communicator.h"

namespace dtrain {

struct ThreadsOptions {
  int workers = 1;
  // How long any blocking call waits before throwing CommError.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// Runs fn(comm) on opts.workers threads (rank = thread index; rank 0 runs
// on the calling thread) and joins them. If any rank throws, the others are
// woken from whatever they wait on with a CommError, and the first failure
// (the root cause, not the knock-on errors) is rethrown here, with its own
// type, after every thread has finished. Each call is an independent world:
// any number may run concurrently. Throws ConfigError if opts.workers < 1 or
// opts.timeout is not positive.
void run_threads(const ThreadsOptions& opts, const std::function<void(Communicator&)>& fn);

}  // namespace dtrain
