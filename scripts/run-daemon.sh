#!/usr/bin/env bash
# Build netd and netctl and start the daemon on its embedded store (foreground).
# Extra arguments go to netd, e.g. --log-level debug.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh daemon
cargo build --release --bins
install -m 0755 target/release/netctl target/release/netd target/release/netd-cni target/release/netd-proxy /usr/local/bin/ 2>/dev/null \
  || install -m 0755 target/release/netctl target/release/netd /usr/local/bin/
exec target/release/netd --data-root /var/lib/netd --socket /run/netd/netd.sock "$@"
