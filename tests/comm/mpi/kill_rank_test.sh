#!/usr/bin/env bash
# A killed rank ends the whole MPI job: starts
#   mpirun --allow-run-as-root --oversubscribe -np NP CMD...
# in the background, waits until every rank is running, sends SIGKILL to one
# rank and checks that mpirun then exits non-zero within DEADLINE_S seconds
# and that its output names the lost rank. OpenMPI 4.1.4 prints
#   mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).
# (sic: PID 0), which is what is matched, loosely (any text between "rank R"
# and "signal 9" or "Killed").
#
# usage: kill_rank_test.sh CMD [ARGS...]
# environment (all optional):
#   MPIRUN      the launcher (default: mpirun on PATH)
#   NP          number of ranks (default 3)
#   KILL_RANK   the rank to kill (default 1)
#   DEADLINE_S  how long mpirun may take to end after the kill (default 30)
#   SETTLE_S    how long to let the job run once every rank is up (default 1.5)
#   MARKER      an extended regex to wait for in the output before that
#               (e.g. "rank 2 pid"), for programs that print when ready
#   START_S     how long the ranks may take to start (default 30)
# The rank's process is found by its environment (OMPI_COMM_WORLD_RANK, or
# PMIX_RANK / PMI_RANK) among mpirun's descendants, so CMD needs no
# cooperation (the dtrain CLI works as CMD).
#
# Exit status: 0 pass, 1 fail, 77 skip (only when mpirun itself is missing;
# CTest maps it to "skipped" with SKIP_RETURN_CODE 77), 2 usage.
set -u

MPIRUN=${MPIRUN:-mpirun}
NP=${NP:-3}
KILL_RANK=${KILL_RANK:-1}
DEADLINE_S=${DEADLINE_S:-30}
SETTLE_S=${SETTLE_S:-1.5}
MARKER=${MARKER:-}
START_S=${START_S:-30}

if [ "$#" -lt 1 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
if ! command -v "$MPIRUN" >/dev/null 2>&1; then
  echo "SKIP: no MPI launcher ('$MPIRUN' not found)"
  exit 77
fi

out=$(mktemp)
mpirun_pid=
cleanup() {
  # Only the mpirun this script started (it takes its ranks with it).
  if [ -n "$mpirun_pid" ] && kill -0 "$mpirun_pid" 2>/dev/null; then
    kill -TERM "$mpirun_pid" 2>/dev/null
    sleep 2
    kill -KILL "$mpirun_pid" 2>/dev/null
  fi
  rm -f "$out"
}
trap cleanup EXIT

fail() {
  echo "--- output of the job:"
  cat "$out"
  echo "FAIL: $*"
  exit 1
}

now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
over() { awk -v e="$1" -v l="$2" 'BEGIN { exit !(e >= l) }'; }

# The descendant of $1 whose environment says it is rank $2.
find_rank() {
  local queue=("$1") pid kid
  while [ "${#queue[@]}" -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for kid in $(pgrep -P "$pid"); do
      if tr '\0' '\n' <"/proc/$kid/environ" 2>/dev/null |
        grep -qxE "(OMPI_COMM_WORLD_RANK|PMIX_RANK|PMI_RANK)=$2"; then
        echo "$kid"
        return 0
      fi
      queue+=("$kid")
    done
  done
  return 1
}

echo "starting: $MPIRUN --allow-run-as-root --oversubscribe -np $NP $*"
"$MPIRUN" --allow-run-as-root --oversubscribe -np "$NP" "$@" </dev/null >"$out" 2>&1 &
mpirun_pid=$!

# Wait for every rank to exist (and for MARKER, if given).
start=$(now)
victim=
while :; do
  kill -0 "$mpirun_pid" 2>/dev/null || fail "mpirun ended before rank $KILL_RANK could be killed"
  over "$(elapsed_since "$start")" "$START_S" && fail "the ranks did not start within $START_S s"
  ready=1
  for ((r = 0; r < NP; ++r)); do
    pid=$(find_rank "$mpirun_pid" "$r") || { ready=0; break; }
    [ "$r" -eq "$KILL_RANK" ] && victim=$pid
  done
  if [ "$ready" -eq 1 ] && { [ -z "$MARKER" ] || grep -qE "$MARKER" "$out"; }; then break; fi
  sleep 0.1
done
sleep "$SETTLE_S"
kill -0 "$mpirun_pid" 2>/dev/null || fail "mpirun ended before rank $KILL_RANK could be killed"

echo "killing rank $KILL_RANK (pid $victim) with SIGKILL"
kill -KILL "$victim"
killed=$(now)
while kill -0 "$mpirun_pid" 2>/dev/null; do
  over "$(elapsed_since "$killed")" "$DEADLINE_S" &&
    fail "mpirun still running $DEADLINE_S s after rank $KILL_RANK was killed"
  sleep 0.1
done
wait "$mpirun_pid"
rc=$?
took=$(elapsed_since "$killed")
mpirun_pid=
echo "--- output of the job:"
cat "$out"
echo "--- mpirun exited with status $rc, $took s after the kill"

[ "$rc" -ne 0 ] || { echo "FAIL: mpirun exited 0 after a rank was killed"; exit 1; }
line=$(grep -iE "rank $KILL_RANK([^0-9].*)?(signal 9|killed)" "$out" | head -n 1)
[ -n "$line" ] || { echo "FAIL: the output does not name rank $KILL_RANK as killed"; exit 1; }
echo "lost rank reported: $line"
echo "PASS"
