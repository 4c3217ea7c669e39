#!/usr/bin/env bash
# Side by side in one run on this machine: a 3-node raft-kv cluster (release
# build, redb, TCP, every write fsynced on a majority) and a 3-node etcd 3.4
# cluster (`apt-get install etcd-server`, its defaults), both on loopback with
# their data on the same disk, driven by the same client: wrk with the Lua
# scripts beside this file (100-byte values over 10,000 keys).
#
#   examples/bench/vs-etcd.sh                    # every point, 10 s each
#   SECS=20 examples/bench/vs-etcd.sh
#   BEFORE=901958b examples/bench/vs-etcd.sh     # also raft-kv built at that revision
#   TLS=1 examples/bench/vs-etcd.sh              # also raft-kv with TLS everywhere
#   WAL=1 examples/bench/vs-etcd.sh              # also raft-kv on --storage wal
#
# With TLS=1 a second raft-kv cluster ("raft-kv+tls") runs the same points
# with mutual TLS between nodes and its client API over HTTPS (certificates
# from `raftctl certs`; wrk does not present client certificates, so no
# --client-tls-ca), beside the plain one.
#
# Points, each on the leader unless named: PUT through 1 connection, PUT at
# 64 and 256 connections, linearizable GET at 64, PUT through a follower at
# 64. The table at the end (also in $DATA/results.md) has writes/s, p50 and
# p99 per point and service, and the ratio raft-kv / etcd.
#
# Ports: raft-kv 127.0.0.1:27001..3 (raft) and :28001..3 (HTTP); etcd
# :22379/22479/22579 (clients) and :22380/22480/22580 (peers). Data under
# target/vs-etcd.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECS=${SECS:-10}
T=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=$T/vs-etcd
WRK=$ROOT/examples/bench/wrk
for tool in etcd wrk curl jq; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y etcd-server wrk curl jq" >&2; exit 1; }
done
cargo build --release --bin raft-kv --bin raftctl

PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap stop_all EXIT

# One line per (service, point): service point rps p50_ms p99_ms non2xx.
rm -rf "$DATA"; mkdir -p "$DATA"
RESULTS=$DATA/results.txt
: >"$RESULTS"

# wrk's latency figures come as 812.00us, 1.23ms or 1.02s: in ms here.
parse_wrk() {
    awk 'function ms(v) { if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
                          if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
                          if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
                          sub(/s$/, "", v); return v * 1000 }
         $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
         /^Requests\/sec:/ { rps = $2 } /Non-2xx or 3xx/ { bad = $NF }
         END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }' "$1"
}

point() { # service point url script connections
    local service=$1 name=$2 url=$3 script=$4 conns=$5 threads=2
    [ "$conns" -lt 2 ] && threads=1
    echo "--- $service: $name ($url)"
    wrk -t"$threads" -c"$conns" -d"${SECS}s" --timeout 10s --latency -s "$WRK/$script" "$url" \
        | tee "$DATA/$service-$name.txt"
    echo "$service $name $(parse_wrk "$DATA/$service-$name.txt")" >>"$RESULTS"
}

wait_for() { # what command...: up to 30 s
    local what=$1; shift
    for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "gave up waiting for $what" >&2; return 1
}

# The client side of the cluster running now: plain, or TLS (run_kv sets it).
SCHEME=http
CURL=(curl)

# Fills LEADER and FOLLOWER with client URLs of a running raft-kv cluster.
kv_roles() {
    local leader
    leader=$("${CURL[@]}" -fs "$SCHEME://127.0.0.1:28001/status" | jq -e '.leader') || return 1
    LEADER=$SCHEME://127.0.0.1:2800$leader
    FOLLOWER=$SCHEME://127.0.0.1:2800$(( leader % 3 + 1 ))
}

run_kv() { # service-name binary [tls] [storage]
    local name=$1 bin=$2 tls=${3:-} storage=${4:-redb} peers=1=127.0.0.1:27001,2=127.0.0.1:27002,3=127.0.0.1:27003
    local certs=$DATA/certs
    SCHEME=http CURL=(curl)
    if [ -n "$tls" ]; then
        "$T/release/raftctl" certs --out "$certs" --nodes 1,2,3 >/dev/null
        SCHEME=https CURL=(curl --cacert "$certs/ca.pem")
    fi
    for i in 1 2 3; do
        local flags=()
        if [ -n "$tls" ]; then
            flags=(--peer-tls-cert "$certs/node-$i.pem" --peer-tls-key "$certs/node-$i-key.pem"
                   --peer-tls-ca "$certs/ca.pem"
                   --client-tls-cert "$certs/node-$i.pem" --client-tls-key "$certs/node-$i-key.pem")
        fi
        "$bin" --id "$i" --raft-addr "127.0.0.1:2700$i" --http-addr "127.0.0.1:2800$i" \
            --peers "$peers" --data-dir "$DATA/$name$i" --storage "$storage" "${flags[@]}" \
            >"$DATA/$name$i.log" 2>&1 &
        PIDS+=($!)
    done
    wait_for "a raft-kv leader" kv_roles
    wait_for "a first raft-kv write" "${CURL[@]}" -fs -X PUT -d x "$LEADER/kv/warmup"
    point "$name" put-1 "$LEADER" kv-put.lua 1
    point "$name" put-64 "$LEADER" kv-put.lua 64
    point "$name" put-256 "$LEADER" kv-put.lua 256
    point "$name" get-64 "$LEADER" kv-get.lua 64
    point "$name" follower-put-64 "$FOLLOWER" kv-put.lua 64
    stop_all
}

etcd_roles() {
    local leader url id
    for port in 22379 22479 22579; do
        url=http://127.0.0.1:$port
        id=$(curl -fs -X POST -d '{}' "$url/v3/maintenance/status") || return 1
        leader=$(jq -r '.leader' <<<"$id")
        [ "$leader" = "null" ] && return 1
        if [ "$(jq -r '.header.member_id' <<<"$id")" = "$leader" ]; then LEADER=$url; else FOLLOWER=$url; fi
    done
    [ -n "${LEADER:-}" ]
}

run_etcd() {
    local cluster=e1=http://127.0.0.1:22380,e2=http://127.0.0.1:22480,e3=http://127.0.0.1:22580
    for i in 1 2 3; do
        local c=$((22279 + 100 * i)) p=$((22280 + 100 * i))
        etcd --name "e$i" --data-dir "$DATA/etcd$i" \
            --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
            --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
            --initial-cluster "$cluster" --initial-cluster-state new --log-level error \
            >"$DATA/etcd$i.log" 2>&1 &
        PIDS+=($!)
    done
    LEADER=
    wait_for "an etcd leader" etcd_roles
    point etcd put-1 "$LEADER" etcd-put.lua 1
    point etcd put-64 "$LEADER" etcd-put.lua 64
    point etcd put-256 "$LEADER" etcd-put.lua 256
    point etcd get-64 "$LEADER" etcd-get.lua 64
    point etcd follower-put-64 "$FOLLOWER" etcd-put.lua 64
    stop_all
}

if [ -n "${BEFORE:-}" ]; then
    # Kept between runs (under the target dir), so a second run does not
    # build the old revision again.
    tree=$T/vs-etcd-before-src
    if [ "$(git -C "$tree" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$BEFORE^{commit}")" ]; then
        git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
        git worktree add --detach "$tree" "$BEFORE"
    fi
    (cd "$tree" && CARGO_TARGET_DIR=$T/vs-etcd-before-target cargo build --release --bin raft-kv)
    run_kv "raft-kv@$BEFORE" "$T/vs-etcd-before-target/release/raft-kv"
fi
run_kv raft-kv "$T/release/raft-kv"
if [ -n "${WAL:-}" ]; then
    run_kv raft-kv+wal "$T/release/raft-kv" "" wal
fi
if [ -n "${TLS:-}" ]; then
    run_kv raft-kv+tls "$T/release/raft-kv" tls
fi
run_etcd

# The table: every service's figures per point, then raft-kv / etcd.
{
    echo "| point | service | writes/s | p50 ms | p99 ms | non-2xx | × etcd writes/s | p50 / etcd's | p99 / etcd's |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    awk 'NR == FNR { if ($1 == "etcd") { r[$2] = $3; p50[$2] = $4; p99[$2] = $5 } next }
         { printf "| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f |\n", $2, $1, $3, $4, $5, $6,
                  $3 / r[$2], $4 / p50[$2], $5 / p99[$2] }' "$RESULTS" "$RESULTS" | sort -s -k2,2
} | tee "$DATA/results.md"
