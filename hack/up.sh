#!/usr/bin/env bash
# Installs what is missing, builds kplex, and runs the local platform: an etcd and a demo
# tenant's control plane, in the foreground (Ctrl-C stops everything).
# Later issues grow this into `kplex up` (super cluster, node simulator, scheduler, syncer).
. "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_rust
cd "$ROOT"
cargo build --release -p kplex
DATA="${KPLEX_DATA_DIR:-$ROOT/.kplex}"
mkdir -p "$DATA"
ETCD_PORT="${KPLEX_ETCD_PORT:-2379}"
etcd --data-dir "$DATA/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" >"$DATA/etcd.log" 2>&1 &
ETCD_PID=$!
trap 'kill $ETCD_PID 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$ETCD_PORT) 2>/dev/null && break; sleep 0.1; done
echo "etcd on http://127.0.0.1:$ETCD_PORT (data in $DATA/etcd)"
echo "starting demo tenant; when ready: export KUBECONFIG=$DATA/demo/kubeconfig && kubectl get ns"
"$ROOT/target/release/kplex" tenant-master --name demo \
  --etcd-endpoints "http://127.0.0.1:$ETCD_PORT" --data-dir "$DATA/demo" \
  --listen "${KPLEX_LISTEN:-127.0.0.1:6443}"
