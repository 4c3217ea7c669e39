#!/usr/bin/env bash
# Starts a local 3-node raft-kv cluster on loopback (redb storage, TCP
# transport), writes a key on node 1 and reads it back on node 2.
#
#   examples/quickstart.sh          build (release), start, write, read
#   examples/quickstart.sh tls      the same with TLS everywhere: mutual TLS
#                                   between nodes, the client API over HTTPS
#                                   requiring client certificates (a test CA
#                                   and certificates from `raftctl certs` in
#                                   ./quickstart-data/certs)
#   examples/quickstart.sh stop     stop the nodes (SIGTERM)
#
# Nodes: raft 127.0.0.1:7001..7003, client API http://127.0.0.1:8001..8003,
# data and logs in ./quickstart-data (DATA=... to move it).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./quickstart-data}
BIN=${CARGO_TARGET_DIR:-target}/release/raft-kv
PEERS=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003

stop() {
    for i in 1 2 3 4; do
        if [ -f "$DATA/$i.pid" ]; then
            kill "$(cat "$DATA/$i.pid")" 2>/dev/null || true
            rm -f "$DATA/$i.pid"
        fi
    done
    echo "stopped (data kept in $DATA; remove it for a fresh cluster)"
}

if [ "${1:-}" = stop ]; then
    stop
    exit 0
fi

SCHEME=http
CURL=(curl)
TLS=()
if [ "${1:-}" = tls ]; then
    cargo build --release --bin raft-kv --bin raftctl
    CERTS=$DATA/certs
    mkdir -p "$DATA"
    "$(dirname "$BIN")/raftctl" certs --out "$CERTS" --nodes 1,2,3,4
    SCHEME=https
    CURL=(curl --cacert "$CERTS/ca.pem" --cert "$CERTS/client.pem" --key "$CERTS/client-key.pem")
else
    cargo build --release --bin raft-kv
fi
mkdir -p "$DATA"
for i in 1 2 3; do
    if [ "$SCHEME" = https ]; then
        TLS=(--peer-tls-cert "$CERTS/node-$i.pem" --peer-tls-key "$CERTS/node-$i-key.pem"
             --peer-tls-ca "$CERTS/ca.pem"
             --client-tls-cert "$CERTS/node-$i.pem" --client-tls-key "$CERTS/node-$i-key.pem"
             --client-tls-ca "$CERTS/ca.pem")
    fi
    "$BIN" --id "$i" --raft-addr "127.0.0.1:700$i" --http-addr "127.0.0.1:800$i" \
        --peers "$PEERS" --data-dir "$DATA/$i" "${TLS[@]}" >"$DATA/$i.log" 2>&1 &
    echo $! >"$DATA/$i.pid"
done

# Wait (up to 20 s) until node 1 knows a leader.
for _ in $(seq 200); do
    if "${CURL[@]}" -fs "$SCHEME://127.0.0.1:8001/status" 2>/dev/null | grep -q '"leader":[0-9]'; then
        break
    fi
    sleep 0.1
done
echo "status of node 1: $("${CURL[@]}" -fsS "$SCHEME://127.0.0.1:8001/status")"

echo "write on node 1: $("${CURL[@]}" -fsS -X PUT --data-binary 'hello, raft' "$SCHEME://127.0.0.1:8001/kv/greeting")"
echo "read on node 2:  $("${CURL[@]}" -fsS "$SCHEME://127.0.0.1:8002/kv/greeting")"
if [ "$SCHEME" = https ]; then
    echo "plain HTTP is refused: $(curl -sS http://127.0.0.1:8001/status 2>&1 | head -c 80 || true)"
fi
cat <<MSG

The cluster keeps running (logs: $DATA/<id>.log). Next steps are in the
README's quickstart; stop it with: examples/quickstart.sh stop
MSG
