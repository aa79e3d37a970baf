#!/usr/bin/env bash
# Loopback benchmark of netd-proxy against Debian's docker-proxy (see examples/bench.rs).
# Installs iperf3 and docker.io (only the docker-proxy binary is used; dockerd is not
# started), builds in release mode, runs about a minute of bounded load on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v iperf3 >/dev/null || ! [ -x /usr/sbin/docker-proxy -o -x /usr/libexec/docker/docker-proxy ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 docker.io >/dev/null
fi
cargo build -q --release -p proxy --bin netd-proxy --example proxy_bench
exec target/release/examples/proxy_bench --netd target/release/netd-proxy "$@"
