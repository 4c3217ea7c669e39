#!/usr/bin/env bash
# Side by side on this machine: a 3-node raft-kv cluster (redb, TCP) and a
# 3-node etcd cluster (`apt-get install etcd-server`), both on loopback with
# their data on the same disk, driven by the same raft-load clients spread
# over the three nodes, 100-byte values over 10,000 keys.
#
#   examples/bench/vs-etcd.sh                 # 1, 64 and 256 clients, 10 s each
#   CLIENTS="64" SECS=20 examples/bench/vs-etcd.sh
#
# Ports: raft-kv 127.0.0.1:27001..3 (raft) and :28001..3 (HTTP); etcd
# :22379.. (clients) and :22380.. (peers). Data under target/vs-etcd.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-"1 64 256"}
SECS=${SECS:-10}
T=${CARGO_TARGET_DIR:-target}
DATA=$T/vs-etcd
command -v etcd >/dev/null || { echo "etcd not found: apt-get install -y etcd-server" >&2; exit 1; }
cargo build --release --bin raft-kv --bin raft-load
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { # url: wait up to 20 s for a 2xx
    for _ in $(seq 200); do curl -fs -o /dev/null "$1" -X "${2:-GET}" ${3:+-d "$3"} && return 0; sleep 0.1; done
    echo "no answer from $1" >&2; return 1
}

run_load() { # name targets...
    local name=$1 kind=$2 targets=$3
    for c in $CLIENTS; do
        echo "--- $name, $c clients"
        "$T/release/raft-load" --service "$kind" --target "$targets" --clients "$c" --duration "${SECS}s"
    done
}

rm -rf "$DATA"; mkdir -p "$DATA"
PEERS=1=127.0.0.1:27001,2=127.0.0.1:27002,3=127.0.0.1:27003
for i in 1 2 3; do
    "$T/release/raft-kv" --id "$i" --raft-addr "127.0.0.1:2700$i" --http-addr "127.0.0.1:2800$i" \
        --peers "$PEERS" --data-dir "$DATA/kv$i" >"$DATA/kv$i.log" 2>&1 &
    PIDS+=($!)
done
for _ in $(seq 200); do curl -fs http://127.0.0.1:28001/status | grep -q '"leader":[0-9]' && break; sleep 0.1; done
wait_http http://127.0.0.1:28001/kv/warmup PUT x
run_load raft-kv kv http://127.0.0.1:28001,http://127.0.0.1:28002,http://127.0.0.1:28003
cleanup; PIDS=()

CLUSTER=e1=http://127.0.0.1:22380,e2=http://127.0.0.1:22480,e3=http://127.0.0.1:22580
for i in 1 2 3; do
    c=$((22279 + 100 * i)); p=$((22280 + 100 * i))
    etcd --name "e$i" --data-dir "$DATA/etcd$i" \
        --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new --log-level error \
        >"$DATA/etcd$i.log" 2>&1 &
    PIDS+=($!)
done
wait_http http://127.0.0.1:22379/v3/kv/put POST '{"key":"d2FybXVw","value":"eA=="}'
run_load "etcd $(etcd --version | head -1 | awk '{print $3}')" etcd http://127.0.0.1:22379,http://127.0.0.1:22479,http://127.0.0.1:22579
