#!/usr/bin/env bash
# Tenant master benchmarks (results go into BENCHMARKS.md by hand, with this command).
# Builds the release binary and runs one bench of tests/benches (default tenant_master; e.g.
# `./hack/bench.sh idle_tenants`) against a throwaway etcd.
# Knobs (env): BENCH_STARTS BENCH_CREATES BENCH_ROUNDS BENCH_PODS BENCH_LISTS BENCH_GETS;
# node_simulator: BENCH_NODES BENCH_PODS BENCH_IDLE_SECS;
# idle_tenants: BENCH_TENANTS BENCH_SETTLE_SECS BENCH_IDLE_SECS.
# deployment_scale: BENCH_REPLICAS BENCH_ROUNDS.
# platform (`kplex up`, create to serving, idle tenant RSS): BENCH_CREATES BENCH_SETTLE_SECS.
# `./hack/bench.sh scheduler` runs the super-scheduler's bench instead (super-scheduler/benches;
# knobs BENCH_NODES BENCH_PODS BENCH_BATCH; needs neither etcd nor the kplex binary).
# `./hack/bench.sh syncer`: 100 tenants x 100 pods, and fairness (A bursts 10,000, B 1 pod/s);
# knobs BENCH_SCENARIO=scale|fairness BENCH_TENANTS BENCH_PODS BENCH_INFLIGHT BENCH_BURST
# BENCH_TRICKLE_SECS.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/hack/lib.sh"
ensure_apt_packages
ensure_rust
cd "$ROOT"
if [ "${1:-}" = scheduler ]; then
  exec cargo bench -p kplex-super-scheduler --bench scheduler
fi
cargo build --release -p kplex
export KPLEX_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/kplex"
cargo bench -p kplex-e2e --bench "${1:-tenant_master}"
