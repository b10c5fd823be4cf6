#!/usr/bin/env bash
# Installs what is missing and runs the whole test suite: unit tests and end-to-end tests that
# start their own etcd and kplex processes and drive them with kubectl, kube-rs and the Python
# client. Builds once (debug profile).
. "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_rust
ensure_python_client
cd "$ROOT"
cargo build --workspace --tests --bins
cargo test --workspace --no-fail-fast -- --test-threads=2
