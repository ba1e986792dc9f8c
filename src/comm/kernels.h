// Memory kernels shared by the in-process backends: elementwise reductions
// and plain copies.
#pragma once

#include <cstddef>
#include <span>

#include "dtrain/comm/communicator.h"

namespace dtrain::comm_detail {

// Reduces `count` elements of type `type` from every source, combining them
// in source order (srcs[0] op srcs[1]) op srcs[2] ..., and writes the result
// to every destination. kMean is a sum divided by srcs.size() (integer types:
// truncating division). Sources and destinations may alias each other (an
// in-place allreduce reads and writes the same buffers): the work is done in
// cache-sized chunks, each read completely into scratch before it is written.
// srcs must not be empty.
void reduce_into(DataType type, ReduceOp op, std::span<const void* const> srcs,
                 std::span<void* const> dsts, std::size_t count);

// memcpy semantics (no overlap), but never a call to memcpy: glibc 2.36's
// memcpy uses `rep movsb` for mid-sized copies, which on AMD Zen 3 runs ~25x
// slower when (dst - src) mod 4096 is in [1, 31] — exactly what two
// back-to-back heap allocations give (16-byte malloc header). Measured with
// bench_allreduce; see docs/BENCHMARKS.md.
void copy_bytes(void* dst, const void* src, std::size_t bytes);

}  // namespace dtrain::comm_detail
