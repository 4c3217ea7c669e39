#!/usr/bin/env bash
# In process, one after the other on this machine: raft-actors' cluster bench
# (3 RaftNode actors, one thread each, memory storage and network) and
# openraft's own `benchmarks/minimal` (3 nodes, memory store, no network) at
# 1, 64 and 256 clients; then the pure core's entries/s.
#
#   OPENRAFT=/path/to/openraft examples/bench/vs-openraft.sh
#
# OPENRAFT is a checkout of github.com/databendlabs/openraft; its bench is
# built there with `RUSTUP_TOOLCHAIN=stable cargo build --release --bin bench`.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OPENRAFT:?set OPENRAFT to an openraft checkout}"
CLIENTS=${CLIENTS:-"1 64 256"}
(cd "$OPENRAFT/benchmarks/minimal" && RUSTUP_TOOLCHAIN=stable cargo build --release --bin bench)
OR_BIN=$(cd "$OPENRAFT" && RUSTUP_TOOLCHAIN=stable cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | jq -r .target_directory)/release/bench
[ -x "$OR_BIN" ] || OR_BIN=$OPENRAFT/benchmarks/minimal/target/release/bench
cargo bench -p raft-actors --bench cluster --no-run
# About 5 s per openraft point at the rates seen here (8,900/s at 1 client).
ops() { case $1 in 1) echo 50000 ;; 64) echo 1000000 ;; *) echo 2000000 ;; esac; }
for c in $CLIENTS; do
    echo "--- openraft benchmarks/minimal, $c clients"
    "$OR_BIN" -c "$c" -n "$(ops "$c")" -m 3
done
echo "--- raft-actors cluster bench (one thread per node)"
BENCH_SECS=${BENCH_SECS:-5} cargo bench -p raft-actors --bench cluster
echo "--- raft-actors core alone"
cargo bench -p raft-actors --bench core
