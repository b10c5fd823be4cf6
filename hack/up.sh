#!/usr/bin/env bash
# Installs what is missing, builds kplex, and runs the local platform in the foreground
# (`kplex up`: etcd, the super cluster's API, simulated nodes, the super-scheduler and the tenant
# manager). Once it is ready, creates the tenant `demo` (first run only) and prints how to use it.
# Ctrl-C stops everything; running it again brings every tenant back with its data.
# Knobs (env): KPLEX_DATA_DIR (default ./.kplex), KPLEX_NODES (default 3), KPLEX_PROFILE
# (release, or debug for a quicker build).
. "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_rust
cd "$ROOT"
PROFILE="${KPLEX_PROFILE:-release}"
if [ "$PROFILE" = release ]; then cargo build --release -p kplex; else cargo build -p kplex; fi
KPLEX="${CARGO_TARGET_DIR:-$ROOT/target}/$([ "$PROFILE" = release ] && echo release || echo debug)/kplex"
export KPLEX_DATA_DIR="${KPLEX_DATA_DIR:-$ROOT/.kplex}"
mkdir -p "$KPLEX_DATA_DIR"
FIFO="$(mktemp -u)"
mkfifo "$FIFO"
"$KPLEX" up --nodes "${KPLEX_NODES:-3}" >"$FIFO" &
UP_PID=$!
# Forward Ctrl-C / SIGTERM to `kplex up`, which stops its children in order.
trap 'kill -INT $UP_PID 2>/dev/null' INT TERM
exec 3<"$FIFO"
rm -f "$FIFO"
if ! read -r line <&3; then
  echo "kplex up failed (logs in $KPLEX_DATA_DIR/logs)" >&2
  wait $UP_PID
  exit 1
fi
echo "$line"
if ! "$KPLEX" list | awk 'NR > 1 {print $1}' | grep -qx demo; then
  "$KPLEX" create demo >/dev/null
fi
KC="$("$KPLEX" connect demo)"
cat <<MSG

Tenant "demo" is ready. Use it with:

    export KUBECONFIG=$KC
    kubectl get namespaces
    kubectl create deployment web --image=nginx --replicas=2

More tenants:  $KPLEX create NAME   (then: $KPLEX list, connect, pause, resume, delete)
Super cluster: kubectl --kubeconfig $KPLEX_DATA_DIR/super.kubeconfig get nodes
Data dir:      $KPLEX_DATA_DIR (logs in $KPLEX_DATA_DIR/logs); Ctrl-C stops the platform.
MSG
cat <&3 &
# `wait` returns when a trapped signal arrives: keep waiting until `kplex up` has stopped.
while kill -0 $UP_PID 2>/dev/null; do wait $UP_PID || true; done
