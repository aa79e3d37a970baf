#!/usr/bin/env bash
# Published ports through the netd DAEMON vs Debian's docker-proxy vs the direct path.
#
# One private netd (release build, own socket/data/exec dirs, own nft table and address
# pool) runs a sandbox with `iperf3 -s` and a 64-byte request/response server inside it,
# published with `netctl sandbox create -p`. The same two servers are also published by
# docker-proxy processes (tcp + udp on one port, as dockerd starts them) pointed at the
# container IP. Cases:
#   direct        client on the host -> container IP (routed through the bridge)
#   netd-proxy    127.0.0.1:P  -> netd's in-daemon userland proxy (one tokio runtime)
#   netd-nat      gateway:P    -> netd's nftables DNAT (no proxy on the path)
#   docker-proxy  127.0.0.1:D  -> /usr/sbin/docker-proxy processes
# Measures TCP throughput (iperf3, both directions) with the CPU of the serving process,
# UDP throughput and loss at a fixed offered rate, short connections per second, and
# resident memory per published port (netd daemon RSS delta for N ports vs N
# docker-proxy processes). Each figure is the median of ROUNDS runs; cases alternate.
# Loads are bounded (SECS seconds per run); traffic stays on this host.
#
# Usage: bench/proxy-vs-docker.sh            (env: SECS=3 ROUNDS=3 NPORTS=100 UDP_RATE=1G)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
NPORTS=${NPORTS:-100}
UDP_RATE=${UDP_RATE:-1G}
[ "$(id -u)" = 0 ] || { echo "run as root (namespaces, bridges, nftables)"; exit 1; }
DOCKER_PROXY=/usr/sbin/docker-proxy
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null || ! [ -x $DOCKER_PROXY ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 jq docker.io >/dev/null
fi
[ -n "${NO_BUILD:-}" ] || cargo build -q --release --bin netd --bin netctl --bin netd-proxy
mkdir -p target/release
rustc -O --edition 2021 bench/rr.rs -o target/release/bench-rr
RR=$PWD/target/release/bench-rr

T=$(mktemp -d /tmp/netd-bench.XXXXXX)
TABLE=netd_bench$$
SOCK=$T/netd.sock
NETCTL="$PWD/target/release/netctl --host $SOCK"
PIDS=()
NETD_PID=
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ -n "$NETD_PID" ]; then
    $NETCTL sandbox rm srv >/dev/null 2>&1
    $NETCTL sandbox rm many >/dev/null 2>&1
    $NETCTL network rm bn >/dev/null 2>&1
    kill "$NETD_PID" 2>/dev/null; wait "$NETD_PID" 2>/dev/null
  fi
  nft delete table inet "$TABLE" 2>/dev/null
  for m in "$T"/run/netns/*; do [ -e "$m" ] && umount -l "$m" 2>/dev/null; done
  umount -l "$T/run/netns" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

free_port() { # a port free for tcp and udp on the host
  local p
  while :; do
    p=$(shuf -i 20000-32000 -n 1)
    [ -z "$(ss -Hltun "sport = :$p")" ] && { echo "$p"; return; }
  done
}
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^Rss:/{print $2}' "/proc/$1/smaps_rollup"; }
pss_kib() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup"; }
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
HZ=$(getconf CLK_TCK)

# ---- netd ----
"$PWD/target/release/netd" --socket "$SOCK" --data-root "$T/data" --exec-root "$T/run" \
  --nft-table "$TABLE" --default-bridge "nb$$" --no-default-bridge \
  --default-address-pool base=10.198.0.0/16,size=24 \
  --docker-plugin-socket "$T/plugin.sock" --log-level warn >"$T/netd.log" 2>&1 &
NETD_PID=$!
for _ in $(seq 100); do $NETCTL version >/dev/null 2>&1 && break; sleep 0.1; done
$NETCTL version >/dev/null
$NETCTL network create bn >/dev/null
PT=$(free_port); PR=$(free_port)
SB=$($NETCTL --json sandbox create --name srv --network bn \
  -p "$PT:5201" -p "$PT:5201/udp" -p "$PR:7000")
NS=$(jq -r .netns_path <<<"$SB")
CIP=$(jq -r '.endpoints[0].addresses[0]' <<<"$SB" | cut -d/ -f1)
GW=$($NETCTL --json network inspect bn | jq -r '.[0].subnets[0].gateway')
nsenter --net="$NS" iperf3 -s -p 5201 >/dev/null 2>&1 & PIDS+=($!)
nsenter --net="$NS" "$RR" serve 0.0.0.0:7000 & PIDS+=($!)

# ---- docker-proxy: tcp + udp for iperf3, tcp for the rr server ----
DT=$(free_port); DR=$(free_port)
DOCKER_PIDS=()
start_dp() { # proto host-port container-port
  local r=$T/ready.$RANDOM
  $DOCKER_PROXY -proto "$1" -host-ip 127.0.0.1 -host-port "$2" \
    -container-ip "$CIP" -container-port "$3" 3>"$r" >/dev/null 2>&1 &
  local pid=$!
  PIDS+=($pid); DOCKER_PIDS+=($pid)
  for _ in $(seq 50); do grep -q 0 "$r" 2>/dev/null && return; sleep 0.1; done
  echo "docker-proxy $1 $2 did not signal ready"; exit 1
}
start_dp tcp "$DT" 5201; start_dp udp "$DT" 5201; start_dp tcp "$DR" 7000
sleep 0.5

CASES=(direct netd-proxy netd-nat docker-proxy)
host_of() { case $1 in direct) echo "$CIP";; netd-proxy|docker-proxy) echo 127.0.0.1;; netd-nat) echo "$GW";; esac; }
iperf_port_of() { case $1 in direct) echo 5201;; netd-*) echo "$PT";; docker-proxy) echo "$DT";; esac; }
rr_port_of() { case $1 in direct) echo 7000;; netd-*) echo "$PR";; docker-proxy) echo "$DR";; esac; }
cpu_ticks_of() { # CPU of what serves the case (netd: the whole daemon; NAT: kernel only)
  case $1 in
    netd-proxy) ticks "$NETD_PID";;
    docker-proxy) local s=0; for p in "${DOCKER_PIDS[@]}"; do s=$((s + $(ticks "$p"))); done; echo $s;;
    *) echo 0;;
  esac
}

declare -A VAL CPU LOSS
run_case() { # metric case -> value on stdout; sets CPU via file
  local metric=$1 c=$2 h p out t0 t1 w0 w1
  h=$(host_of "$c")
  t0=$(cpu_ticks_of "$c"); w0=$(date +%s.%N)
  case $metric in
    tcp)  p=$(iperf_port_of "$c"); out=$(iperf3 -c "$h" -p "$p" -t "$SECS" -J | jq '.end.sum_received.bits_per_second/1e9');;
    tcpR) p=$(iperf_port_of "$c"); out=$(iperf3 -c "$h" -p "$p" -t "$SECS" -R -J | jq '.end.sum_received.bits_per_second/1e9');;
    udp)  p=$(iperf_port_of "$c")
          out=$(iperf3 -c "$h" -p "$p" -u -b "$UDP_RATE" -l 1400 -t "$SECS" -J \
                | jq -r '"\(.end.sum_received.bits_per_second/1e6) \(.end.sum_received.lost_percent)"');;
    cps)  p=$(rr_port_of "$c"); out=$("$RR" rate "$h:$p" 8 2 | awk '{print $1/2}');;
  esac
  t1=$(cpu_ticks_of "$c"); w1=$(date +%s.%N)
  echo "$out $(awk -v a="$t0" -v b="$t1" -v w0="$w0" -v w1="$w1" -v hz="$HZ" 'BEGIN{printf "%.0f", (b-a)/hz/(w1-w0)*100}')"
}

echo "netd $(git rev-parse --short HEAD 2>/dev/null) release; docker-proxy: $DOCKER_PROXY; iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
echo "container $CIP on bridge gw $GW; netd ports: tcp+udp $PT, rr $PR; docker-proxy ports: $DT, $DR"
echo "$ROUNDS rounds x ${SECS}s per case; UDP offered ${UDP_RATE}bit/s, 1400-byte datagrams; CPU = % of one core of the serving process(es)"
echo
for metric in tcp tcpR udp cps; do
  for r in $(seq "$ROUNDS"); do
    for c in "${CASES[@]}"; do
      read -r a b cpu < <(run_case "$metric" "$c" | awk '{ if (NF==3) print $1, $2, $3; else print $1, "-", $2 }')
      VAL[$metric,$c]+="$a "; CPU[$metric,$c]+="$cpu "
      [ "$metric" = udp ] && LOSS[$c]+="$b "
    done
  done
done
med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }

# ---- memory per published port ----
RSS0=$(rss_kib "$NETD_PID")
ARGS=()
for _ in $(seq "$NPORTS"); do ARGS+=(-p "127.0.0.1::7000"); done
$NETCTL sandbox create --name many --network bn "${ARGS[@]}" >/dev/null
sleep 1
RSS1=$(rss_kib "$NETD_PID")
NETD_KIB_PER_PORT=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$NPORTS" 'BEGIN{printf "%.1f", (b-a)/n}')
MANY_PIDS=()
DRSS=0; DPSS=0; NLIVE=0
declare -A TAKEN
for i in $(seq 1 "$NPORTS"); do
  p=$(free_port); while [ -n "${TAKEN[$p]:-}" ]; do p=$(free_port); done; TAKEN[$p]=1
  $DOCKER_PROXY -proto tcp -host-ip 127.0.0.1 -host-port "$p" -container-ip "$CIP" -container-port 7000 3>"$T/m.$i" >/dev/null 2>&1 &
  PIDS+=($!); MANY_PIDS+=($!)
done
for i in $(seq 1 "$NPORTS"); do for _ in $(seq 50); do grep -q 0 "$T/m.$i" 2>/dev/null && break; sleep 0.05; done; done
sleep 1
for p in "${MANY_PIDS[@]}"; do
  r=$(rss_kib "$p" 2>/dev/null) || continue
  [ -n "$r" ] || continue
  DRSS=$((DRSS + r)); DPSS=$((DPSS + $(pss_kib "$p"))); NLIVE=$((NLIVE + 1))
done
for p in "${MANY_PIDS[@]}"; do kill "$p" 2>/dev/null; done
[ "$NLIVE" -gt 0 ] || { echo "no docker-proxy survived"; exit 1; }

# ---- report ----
printf '\n%-34s %12s %12s %12s %12s %10s %10s\n' "metric (median)" direct netd-proxy netd-nat docker-proxy "proxy/dkr" "proxy/dir"
line() { # title metric unit
  local d n a k
  d=$(med "${VAL[$2,direct]}"); n=$(med "${VAL[$2,netd-proxy]}"); a=$(med "${VAL[$2,netd-nat]}"); k=$(med "${VAL[$2,docker-proxy]}")
  printf '%-34s %12.2f %12.2f %12.2f %12.2f %9.2fx %9.2fx\n' "$1" "$d" "$n" "$a" "$k" \
    "$(awk -v x="$n" -v y="$k" 'BEGIN{print (y>0)?x/y:0}')" "$(awk -v x="$n" -v y="$d" 'BEGIN{print (y>0)?x/y:0}')"
  printf '%-34s %12s %11s%% %12s %11s%%\n' "  CPU of server process" - "$(med "${CPU[$2,netd-proxy]}")" "kernel" "$(med "${CPU[$2,docker-proxy]}")"
}
line "TCP Gbit/s (client->server)" tcp
line "TCP Gbit/s (server->client, -R)" tcpR
line "UDP Mbit/s received" udp
printf '%-34s %11.1f%% %11.1f%% %11.1f%% %11.1f%%\n' "  UDP loss" "$(med "${LOSS[direct]}")" "$(med "${LOSS[netd-proxy]}")" "$(med "${LOSS[netd-nat]}")" "$(med "${LOSS[docker-proxy]}")"
line "connections/s (64 B req/resp)" cps
echo
DOCKER_PER_PORT=$(awk -v a="$DPSS" -v n="$NLIVE" 'BEGIN{printf "%.1f", a/n}')
printf 'memory per published port: netd daemon RSS +%s KiB/port (%d -> %d KiB for %d ports)\n' "$NETD_KIB_PER_PORT" "$RSS0" "$RSS1" "$NPORTS"
printf '                           docker-proxy %s KiB PSS/port, %s KiB RSS/port (%d processes)\n' \
  "$DOCKER_PER_PORT" "$(awk -v a="$DRSS" -v n="$NLIVE" 'BEGIN{printf "%.1f", a/n}')" "$NLIVE"
printf '                           ratio netd/docker-proxy (RSS delta vs PSS): %.3fx\n' \
  "$(awk -v x="$NETD_KIB_PER_PORT" -v y="$DOCKER_PER_PORT" 'BEGIN{print (y>0)?x/y:0}')"
echo "(netd-proxy CPU is the whole daemon's; netd-nat is served by the kernel, no process)"
