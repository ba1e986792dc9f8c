#!/usr/bin/env bash
# The MPI backend's watchdog ends a job whose ranks called different
# collectives: runs mpi_timeout_probe (rank 0 calls barrier twice, rank 1
# once, 1 s timeout) under mpirun -np 2 and checks that the job fails within
# 10 s with the watchdog's line naming rank 0, the barrier and the timeout.
#
# usage: timeout_test.sh MPIEXEC PROBE
set -u
mpiexec=$1
probe=$2
limit_s=10

out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s.%N)
# `timeout` keeps a broken watchdog from hanging the test until CTest's limit.
timeout -k 5 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$probe" --timeout-ms 1000 \
  >"$out" 2>&1
rc=$?
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
cat "$out"
echo "--- mpirun exited with status $rc after $elapsed s"

fail=0
if [ "$rc" -eq 0 ]; then
  echo "FAIL: the job succeeded; the watchdog should have ended it"
  fail=1
fi
if awk -v e="$elapsed" -v l="$limit_s" 'BEGIN { exit !(e > l) }'; then
  echo "FAIL: the job took ${elapsed} s to end (limit ${limit_s} s)"
  fail=1
fi
line=$(grep -E 'rank 0: .*barrier.* timed out after' "$out" | head -n 1)
if [ -z "$line" ]; then
  echo "FAIL: no 'dtrain: rank 0: barrier timed out after ...' line in the output"
  fail=1
else
  echo "watchdog line: $line"
fi
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
