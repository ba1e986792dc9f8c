#!/usr/bin/env bash
# test_mpi_comm's harness: a test that fails on the last rank only must make
# every rank exit non-zero and be reported as "rank R: FAILED test ...".
#
# usage: failure_report_test.sh MPIEXEC TEST_MPI_COMM
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout -k 5 60 "$1" --allow-run-as-root --oversubscribe -np 2 "$2" --gtest_color=no \
  --gtest_also_run_disabled_tests --gtest_filter='MpiHarness.DISABLED_InjectedFailureOnTheLastRank' \
  >"$out" 2>&1
rc=$?
cat "$out"
echo "--- mpirun exited with status $rc"
[ "$rc" -ne 0 ] || { echo "FAIL: the job passed despite a failure on rank 1"; exit 1; }
grep -q 'rank 1: FAILED test MpiHarness.DISABLED_InjectedFailureOnTheLastRank' "$out" ||
  { echo "FAIL: no 'rank 1: FAILED test' line"; exit 1; }
grep -q 'FAILED on some rank' "$out" || { echo "FAIL: rank 0 did not report the failure"; exit 1; }
echo "PASS"
