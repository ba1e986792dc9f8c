#!/usr/bin/env bash
# Peak memory per rank is O(R/N): loads the same generated CSV (~30 MB,
# 400,000 rows) on 1 and on 4 MPI ranks with load_memory_probe and checks that
# each of the 4 ranks' peak resident memory grew by at most 40% of what the
# single rank's did (the ideal is 25%).
#
#   mpi_memory_test.sh MPIEXEC LOAD_MEMORY_PROBE
set -euo pipefail
mpiexec=$1
probe=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

awk 'BEGIN { srand(1); print "a,b,c,d,e,f,g,h,y";
             for (i = 0; i < 400000; i++)
               printf "%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f\n",
                      rand(), rand(), rand(), rand(), rand(), rand(), rand(), rand(), rand() * 100 }' \
  >"$work/big.csv"
echo "file: $(stat -c %s "$work/big.csv") bytes, 400000 rows"

for partition in range hash; do
  for np in 1 4; do
    "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$probe" "$work/big.csv" \
      --partition "$partition" >"$work/np$np.txt"
  done
  # Largest growth of peak RSS (VmHWM) over the ranks, in KiB.
  growth() { awk '/peak_rss_kib_before/ { g = $NF - $(NF-2); if (g > m) m = g } END { print m }' "$1"; }
  one=$(growth "$work/np1.txt")
  four=$(growth "$work/np4.txt")
  echo "$partition: peak RSS growth 1 rank ${one} KiB, 4 ranks at most ${four} KiB per rank"
  awk -v a="$four" -v b="$one" 'BEGIN { r = a / b; printf "ratio %.3f (limit 0.40)\n", r; exit !(b > 10000 && r <= 0.40) }' ||
    { echo "FAIL: peak memory per rank does not shrink with the rank count"; cat "$work"/np*.txt; exit 1; }
done
echo PASS
