#!/usr/bin/env bash
# Per-endpoint cost at 10, 100 and 500 existing endpoints: netd (one REST call creating a
# sandbox joined to a bridge network) vs the reference CNI bridge + host-local plugins
# (one ADD per namespace), in the same run, with the firewall rule counts at each N.
# The measuring is done by tests/examples/endpoints_bench.rs (see its header for the
# method); this script installs what it needs, builds in release mode and runs it.
# Writes bench/results/endpoints.json (rows of the convention in bench/README.md).
#
#   bench/endpoints.sh                 # 10,100,500, 20 samples per level
#   ENDPOINTS_SAMPLES=40 bench/endpoints.sh 10,100,500
#   BENCH_NO_BUILD=1 bench/endpoints.sh
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO"
[[ $(id -u) == 0 ]] || die "bench/endpoints.sh needs root"
need_pkgs containernetworking-plugins iproute2 nftables iptables

if [[ -z ${BENCH_NO_BUILD:-} ]]; then
  log "building netd, netctl and the endpoints bench (release)"
  cargo build -q --release -p daemon -p netctl --bins
  cargo build -q --release -p tests --example endpoints_bench
fi
EX=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/endpoints_bench
[[ -x $EX ]] || die "$EX is missing: cargo build --release -p tests --example endpoints_bench"
NETD_BIN_DIR=$BIN "$EX" "${1:-10,100,500}" --json "$RESULTS/endpoints.json"
