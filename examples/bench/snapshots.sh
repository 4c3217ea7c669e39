#!/usr/bin/env bash
# Snapshots of a large state, measured on this machine in one run: a 3-node
# raft-kv cluster (release build, redb, TCP, fsync on, the default
# --snapshot-threshold 10000 and --trailing-logs 1000) is filled with $MIB MiB
# of values; a fourth, empty node joins and catches up by snapshot.
#
#   examples/bench/snapshots.sh              # 512 MiB of 4 KiB values
#   MIB=64 examples/bench/snapshots.sh       # a quick run
#   FLAGS="--snapshot-threshold 5000 --trailing-logs 500" examples/bench/snapshots.sh
#
# It prints, and writes to $DATA/results.md:
# - write latency at 64 connections (100-byte values over 10,000 keys, 10 s)
#   on the empty cluster and again on the full one, where every snapshot the
#   leader takes writes the whole state (the count and seconds of snapshots
#   taken during the run show how much of it had one being written);
# - the snapshot write rate (bytes / seconds of the snapshots the leader
#   took), the transfer rate to the new node (bytes sent / seconds) and the
#   time it took to catch up;
# - each process's peak RSS (VmHWM) against its state (keys + values held),
#   with the bound the issue sets: state + 128 MiB, read once node 4 has
#   caught up and again at the end (after the second latency run, during
#   which snapshots of the whole state are written while writes go on):
#   the bound is checked on the second reading, the peak of the whole run.
#
# Ports: 127.0.0.1:29001..4 (raft) and :29101..4 (HTTP). Data under
# target/snapshots-bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MIB=${MIB:-512}
VALUE=4096
KEYS=$((MIB * 1024 * 1024 / VALUE))
T=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=$T/snapshots-bench
for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y curl jq" >&2; exit 1; }
done
cargo build --release --bin raft-kv --bin raft-load
KV=$T/release/raft-kv
LOAD=$T/release/raft-load

PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT
rm -rf "$DATA"; mkdir -p "$DATA"

wait_for() { # what seconds command...
    local what=$1 secs=$2; shift 2
    for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "gave up waiting for $what" >&2; return 1
}
http() { echo "http://127.0.0.1:2910$1"; }
leader_id() { curl -fs "$(http 1)/status" | jq -e '.leader'; }
metric() { # node name: the metric's value on that node (0 if absent)
    curl -fs "$(http "$1")/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

start() { # id [flags...]
    local id=$1; shift
    "$KV" --id "$id" --raft-addr "127.0.0.1:2900$id" --http-addr "127.0.0.1:2910$id" \
        --data-dir "$DATA/n$id" ${FLAGS:-} "$@" >"$DATA/n$id.log" 2>&1 &
    PIDS+=($!)
    eval "PID$id=$!"
}

peers=1=127.0.0.1:29001,2=127.0.0.1:29002,3=127.0.0.1:29003
for i in 1 2 3; do start "$i" --peers "$peers"; done
wait_for "a leader" 30 leader_id
L=$(leader_id)
wait_for "a first write" 30 curl -fs -X PUT -d x "$(http "$L")/kv/warmup"

load() { # name: 64 connections, 10 s, on the leader
    local taken0 secs0
    taken0=$(metric "$L" raft_snapshots_taken_total)
    secs0=$(metric "$L" 'raft_snapshot_seconds_sum{kind="taken"}')
    "$LOAD" --target "$(http "$L")" --clients 64 --duration 10s --value-size 100 --keys 10000 \
        | tee "$DATA/load-$1.txt"
    local taken secs
    taken=$(( $(metric "$L" raft_snapshots_taken_total) - taken0 ))
    secs=$(awk -v a="$secs0" -v b="$(metric "$L" 'raft_snapshot_seconds_sum{kind="taken"}')" \
        'BEGIN { printf "%.1f", b - a }')
    awk -v n="$1" -v t="$taken" -v s="$secs" '
        /^ok=/ { split($3, a, "="); rps = a[2] }
        /^latency/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); l[kv[1]] = kv[2] } }
        END { printf "| %s | %s | %s ms | %s ms | %s ms | %s | %s s |\n", n, rps, l["p50"], l["p99"], l["max"], t, s }' \
        "$DATA/load-$1.txt" >>"$DATA/latency.md"
}
: >"$DATA/latency.md"
load "empty state"
BASE_KIB=$(hwm_kib "$PID1")

echo "--- filling $MIB MiB: $KEYS keys of $VALUE bytes"
fill_start=$(date +%s.%N)
"$LOAD" --target "$(http "$L")" --clients 64 --value-size "$VALUE" --keys "$KEYS" --fill | tee "$DATA/fill.txt"
fill_secs=$(awk -v a="$fill_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# A snapshot of everything, on demand, then the new node.
curl -fs -X POST "$(http "$L")/cluster/snapshot" >/dev/null
start 4
wait_for "node 4's API" 30 curl -fs "$(http 4)/status"
join_start=$(date +%s.%N)
curl -fs -X POST -d '{"id": 4, "raft_addr": "127.0.0.1:29004", "role": "learner"}' \
    "$(http "$L")/cluster/members" >/dev/null
target=$(curl -fs "$(http "$L")/status" | jq '.commit_index')
# Caught up: its state machine answers the last key written (the status's
# applied index moves at install, before the state is restored).
caught_up() {
    [ "$(curl -fs "$(http 4)/status" | jq '.applied_index')" -ge "$target" ] &&
        curl -fs "$(http 4)/kv/k$((KEYS - 1))?consistency=stale" >/dev/null
}
wait_for "node 4 to catch up" 600 caught_up
join_secs=$(awk -v a="$join_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
installed=$(metric 4 raft_snapshots_installed_total)
[ "$installed" -ge 1 ] || { echo "node 4 caught up without installing a snapshot" >&2; exit 1; }
# Peak RSS so far: the fill (with the snapshots it triggered), the snapshot
# on demand and the join; the latency run below is point 4's, not this.
for i in 1 2 3 4; do pid_var=PID$i; eval "HWM$i=$(hwm_kib "${!pid_var}")"; done

load "$MIB MiB state"
for i in 1 2 3 4; do pid_var=PID$i; eval "END$i=$(hwm_kib "${!pid_var}")"; done

# Rates from the nodes' own counters.
rate() { # node kind: MB/s of snapshots of that kind
    local bytes secs
    bytes=$(metric "$1" "raft_snapshot_bytes_total{kind=\"$2\"}")
    secs=$(metric "$1" "raft_snapshot_seconds_sum{kind=\"$2\"}")
    awk -v b="$bytes" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f", b / s / 1e6; else print "-" }'
}
state_kib=$(( (KEYS * VALUE + KEYS * 7) / 1024 ))
{
    echo "## Snapshots of a $MIB MiB raft-kv ($KEYS keys of $VALUE bytes), $(date -u +%F)${FLAGS:+, nodes run with $FLAGS}"
    echo
    echo "Filled in $fill_secs s. Node 4 joined and caught up in $join_secs s ($installed snapshot installed)."
    echo
    echo "| rate | MB/s |"
    echo "|---|---:|"
    echo "| snapshot written (leader, every snapshot it took) | $(rate "$L" taken) |"
    echo "| snapshot sent to node 4 (leader) | $(rate "$L" sent) |"
    echo "| snapshot received and installed (node 4) | $(rate 4 installed) |"
    echo
    echo "| writes at 64 connections | writes/s | p50 | p99 | max | snapshots taken in the run | seconds spent writing them |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    cat "$DATA/latency.md"
    echo
    echo "Node 1's peak RSS with an empty state, after the first latency run: $((BASE_KIB / 1024)) MiB."
    echo
    echo "| process | peak RSS once node 4 caught up | at the end of the run | state | end − state | bound (state + 128 MiB) |"
    echo "|---|---:|---:|---:|---:|---|"
    for i in 1 2 3 4; do
        hwm_var=HWM$i
        end_var=END$i
        role=follower; [ "$i" = "$L" ] && role=leader; [ "$i" = 4 ] && role="new node"
        awk -v i="$i" -v r="$role" -v h="${!hwm_var}" -v e="${!end_var}" -v s="$state_kib" 'BEGIN {
            over = (e - s) / 1024
            printf "| node %s (%s) | %.0f MiB | %.0f MiB | %.0f MiB | %.0f MiB | %s |\n", i, r, h / 1024, e / 1024, s / 1024, over,
                (over <= 128 ? "within" : "EXCEEDED") }'
    done
} | tee "$DATA/results.md"
# A process over its bound fails the run.
! grep -q EXCEEDED "$DATA/results.md"
