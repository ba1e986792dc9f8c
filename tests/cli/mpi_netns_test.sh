#!/usr/bin/env bash
# Runs an MPI training job across two "hosts" — two network namespaces joined
# by a veth pair, with addresses in a private test range that exist only
# inside them — over TCP, and checks that it gives the same model as one host.
#
#   mpi_netns_test.sh DTRAIN DATA_DIR
#
# mpirun runs in the first namespace and starts its remote daemon in the
# second through a launch agent that does `ip netns exec` instead of ssh. Two
# ranks run in each namespace; rank-to-rank traffic crosses the veth link.
# Needs root (namespaces), iproute2 and mpirun. Exits 77 (reported as skipped
# by CTest) with a line saying why when the machine cannot do it.
set -euo pipefail

dtrain=$(realpath "$1")
data=$(realpath "$2")
skip() { echo "SKIP: $*"; exit 77; }

command -v mpirun >/dev/null || skip "mpirun not found"
command -v ip >/dev/null || skip "iproute2 (ip) not found"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"

tag="dt$$"
ns0="${tag}h0" ns1="${tag}h1"
addr0=10.213.0.1 addr1=10.213.0.2
work=$(mktemp -d)
cleanup() {
  ip netns del "$ns0" 2>/dev/null || true
  ip netns del "$ns1" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns0" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$ns1"
ip link add "${tag}a" type veth peer name "${tag}b" || skip "cannot create veth pairs here"
ip link set "${tag}a" netns "$ns0"
ip link set "${tag}b" netns "$ns1"
ip -n "$ns0" addr add "$addr0/24" dev "${tag}a"
ip -n "$ns1" addr add "$addr1/24" dev "${tag}b"
for ns in "$ns0" "$ns1"; do
  ip -n "$ns" link set lo up
done
ip -n "$ns0" link set "${tag}a" up
ip -n "$ns1" link set "${tag}b" up
# (No ping: iputils is not always installed; the first mpirun below is the
# connectivity check.)

# The launch agent OpenMPI calls as `agent HOST COMMAND...` in place of ssh.
cat >"$work/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in
  $addr0) ns=$ns0 ;;
  $addr1) ns=$ns1 ;;
  *) echo "netns agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '%s slots=2\n%s slots=2\n' "$addr0" "$addr1" >"$work/hosts"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
job=(train --data "$data/diabetes.csv" --label target --model linear --standardize
     --epochs 300 --lr 0.3 --momentum 0.9 --partition hash --quiet)
cd "$work"

echo "== where the ranks run"
ip netns exec "$ns0" mpirun --hostfile hosts -np 4 --map-by node \
  --mca plm_rsh_agent "$work/agent" --mca btl tcp,self \
  --mca btl_tcp_if_include 10.213.0.0/24 --mca oob_tcp_if_include 10.213.0.0/24 \
  sh -c 'echo "rank $OMPI_COMM_WORLD_RANK on $(ip -4 -o addr show | grep -o "10\.213\.0\.[0-9]*")"' |
  sort | tee ranks.txt
grep -q "$addr0" ranks.txt && grep -q "$addr1" ranks.txt || { echo "FAIL: ranks not on both hosts"; exit 1; }

echo "== training across the two hosts over TCP"
ip netns exec "$ns0" mpirun --hostfile hosts -np 4 --map-by node \
  --mca plm_rsh_agent "$work/agent" --mca btl tcp,self \
  --mca btl_tcp_if_include 10.213.0.0/24 --mca oob_tcp_if_include 10.213.0.0/24 \
  "$dtrain" "${job[@]}" --out multi.model

echo "== the same job on one host, 4 threads"
"$dtrain" "${job[@]}" --workers 4 --out single.model

"$dtrain" inspect multi.model --json >multi.json
"$dtrain" inspect single.model --json >single.json
# Compare every weight and the intercept within 1e-6 relative.
extract() { tr -d ' \n' <"$1" | grep -o '"intercept":[^,]*\|"weights":\[[^]]*\]' | tr -d '"a-z:[]' | tr ',' '\n'; }
paste <(extract multi.json) <(extract single.json) | awk '
  { d = $1 - $2; if (d < 0) d = -d; m = ($1 < 0 ? -$1 : $1); if (d > 1e-6 * m + 1e-12) { bad++; print "mismatch:", $1, $2 } n++ }
  END { if (n < 11 || bad) { print "FAIL: " n " values compared, " bad+0 " differ"; exit 1 }
        print "PASS: " n " parameters equal (1e-6 relative) across 2 namespaces and on one host" }'
