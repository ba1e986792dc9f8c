#!/usr/bin/env bash
# Allreduce, threads backend vs MPI backend vs raw MPI_Allreduce, in one run:
# for each N, runs `bench_allreduce --workers N` (threads backend) and
# `mpirun -np N bench_mpi_allreduce` (MPI backend and raw MPI_Allreduce, same
# sizes), prints both tables as they come, then one combined table per size
# with PASS/FAIL marks against the targets:
#   - MPI-backend overhead over raw MPI_Allreduce <= 5 % at >= 64 KiB;
#   - threads backend >= 4x raw MPI_Allreduce (busbw) at >= 1 MiB, same N.
#
# usage: bench/run_comm_bench.sh [N...]        (default: 2 4)
# environment:
#   BUILD_DIR  build tree with bench/bench_allreduce and bench/bench_mpi_allreduce
#              (default: build-mpi next to this script's directory)
#   ITERS      timed iterations per row (default 20)
#   SIZES      comma-separated sizes, e.g. 64K,1M (default: the benchmarks' 4K..64M)
#   MPIRUN     the MPI launcher (default: mpirun)
# Exit status: 0 when every row is marked PASS (or '-'), 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=${BUILD_DIR:-$(dirname "$here")/build-mpi}
ITERS=${ITERS:-20}
SIZES=${SIZES:-}
MPIRUN=${MPIRUN:-mpirun}
threads_bench=$BUILD_DIR/bench/bench_allreduce
mpi_bench=$BUILD_DIR/bench/bench_mpi_allreduce
for exe in "$threads_bench" "$mpi_bench"; do
  [ -x "$exe" ] || { echo "run_comm_bench.sh: $exe not built (set BUILD_DIR)" >&2; exit 2; }
done
command -v "$MPIRUN" >/dev/null || { echo "run_comm_bench.sh: no $MPIRUN" >&2; exit 2; }

workers=("$@")
[ "${#workers[@]}" -gt 0 ] || workers=(2 4)
size_args=()
[ -z "$SIZES" ] || size_args=(--sizes "$SIZES")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# run_comm_bench.sh ${workers[*]}: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ITERS=$ITERS"
for n in "${workers[@]}"; do
  echo
  "$threads_bench" --workers "$n" --iters "$ITERS" "${size_args[@]}" | tee "$tmp/threads_$n.txt"
  echo
  "$MPIRUN" --allow-run-as-root --oversubscribe -np "$n" "$mpi_bench" --iters "$ITERS" \
    "${size_args[@]}" | tee "$tmp/mpi_$n.txt"
done

echo
echo "## Combined (busbw in GB/s; overhead = MPI backend time / raw MPI_Allreduce time - 1;"
echo "## speedup = threads busbw / raw MPI busbw; targets: overhead <= 5 % at >= 64 KiB,"
echo "## speedup >= 4 at >= 1 MiB)"
status=0
for n in "${workers[@]}"; do
  # Data rows: "N <num> <unit> ..." (sizes print as e.g. "64 KiB").
  awk -v n="$n" '
    function bytes(num, unit) {
      return num * (unit == "KiB" ? 1024 : unit == "MiB" ? 1048576 : unit == "GiB" ? 1073741824 : 1)
    }
    FNR == 1 { file++ }
    /^#/ || $1 !~ /^[0-9]+$/ { next }
    file == 1 { raw_us[$2 " " $3] = $4; raw_bus[$2 " " $3] = $6; our_us[$2 " " $3] = $7;
                our_bus[$2 " " $3] = $9; next }
    file == 2 {
      size = $2 " " $3
      if (!(size in raw_us)) next
      over = (our_us[size] / raw_us[size] - 1) * 100
      speedup = $6 / raw_bus[size]
      b = bytes($2, $3)
      over_mark = b >= 65536 ? (over <= 5 ? "PASS" : "FAIL") : "-"
      speed_mark = b >= 1048576 ? (speedup >= 4 ? "PASS" : "FAIL") : "-"
      if (over_mark == "FAIL" || speed_mark == "FAIL") failed = 1
      if (!header++) printf "%3s %8s %14s %14s %12s %10s %6s %10s %6s\n", "N", "size",
        "threads_busbw", "mpi_be_busbw", "raw_busbw", "overhead", "<=5%", "speedup", ">=4x"
      printf "%3d %8s %14.2f %14.2f %12.2f %+9.1f%% %6s %9.1fx %6s\n", n, size, $6, our_bus[size],
        raw_bus[size], over, over_mark, speedup, speed_mark
    }
    END { exit failed }
  ' "$tmp/mpi_$n.txt" "$tmp/threads_$n.txt" || status=1
done
exit "$status"
