#!/usr/bin/env bash
# Install the Debian packages netd and its test suites need, when missing.
# Usage: scripts/deps.sh [daemon|test]
set -euo pipefail
want=(nftables iproute2 busybox-static)
if [ "${1:-daemon}" = test ]; then
  # Real clients of the end-to-end suites and benchmarks.
  want+=(docker.io podman containernetworking-plugins dnsperf iperf3 dnsutils socat uidmap)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
