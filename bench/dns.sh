#!/usr/bin/env bash
# DNS benchmark: dnsperf run INSIDE a container's network namespace against its embedded
# DNS at 127.0.0.11 (netd, Docker 20.10) or its network's aardvark-dns (Podman with
# netavark), and against dnsmasq queried directly on loopback (the client's ceiling).
#
# All systems are up at once and measured in DNS_RUNS interleaved rounds (each system once
# per round, so load drift on a shared box hits all alike). Measured per system: queries/s
# for a container name (median over the rounds of DNS_DUR
# seconds, dnsperf -c 4 -q 100, unbounded rate) and latency p50/p99 at a fixed offered
# load of DNS_LAT_QPS q/s (dnsperf -Q, -v per-query latencies; same load for everyone, so
# the latencies compare). Forwarded names: "cached" = 200 names asked over and over
# (netd answers from its cache after the first; Docker has no cache and forwards every
# one), "uncached" = every query a new name. The upstream is a dnsmasq of ours that
# answers `*.bench.test` itself (address=/bench.test/192.0.2.1, local-ttl 300) and
# never forwards (--no-resolv): no query leaves this machine, none reaches the host's
# nameserver. aardvark-dns is measured for container names only (see bench/README.md).
#
# Writes bench/results/dns.json (rows of the bench convention). Needs root.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

DUR=${DNS_DUR:-4}
RUNS=${DNS_RUNS:-3}
LAT_QPS=${DNS_LAT_QPS:-5000}
LAT_DUR=${DNS_LAT_DUR:-4}
OUT=$RESULTS/dns.json

# ---- measurement primitives -------------------------------------------------------------------
# in_ns NSPATH CMD...: run CMD in that network namespace ("-" = here)
in_ns() { local ns=$1; shift; if [[ $ns == - ]]; then "$@"; else nsenter --net="$ns" -- "$@"; fi; }

# qps_once NS SERVER QFILE [dnsperf args] -> "qps lost%"
qps_once() {
  local ns=$1 server=$2 qfile=$3; shift 3
  local out
  out=$(in_ns "$ns" dnsperf -s "$server" -d "$qfile" -l "$DUR" -c 4 -q 100 -t 2 "$@" 2>&1) || true
  awk '/Queries per second:/ {q=$4} /Queries lost:/ {gsub(/[()%]/,"",$4); l=$4} END {print (q==""?"null":q), (l==""?"null":l)}' <<<"$out"
}
# lat_once NS SERVER QFILE -> "p50_us p99_us" at LAT_QPS offered load
lat_once() {
  local ns=$1 server=$2 qfile=$3 file
  file=$(mktemp "$WORK/lat-XXXX")
  in_ns "$ns" dnsperf -s "$server" -d "$qfile" -l "$LAT_DUR" -Q "$LAT_QPS" -c 4 -q 100 -t 2 -v >"$file" 2>/dev/null || true
  echo "$(awk '$1 == ">" {print $NF * 1e6}' "$file" | percentile 50) $(awk '$1 == ">" {print $NF * 1e6}' "$file" | percentile 99)"
  rm -f "$file"
}

# put LABEL KEY VALUE: one raw figure (the report takes the median of each key)
put() { echo "$1 $2 $3" >>"$WORK/figures"; }

# round LABEL NS SERVER QCONTAINER FWD R: one run of each measurement for one system
round() {
  local label=$1 ns=$2 server=$3 qc=$4 fwd=$5 r=$6 q l p50 p99 f
  read -r q l < <(qps_once "$ns" "$server" "$qc")
  put "$label" container_qps "$q"; put "$label" container_loss "$l"
  read -r p50 p99 < <(lat_once "$ns" "$server" "$qc")
  put "$label" container_p50 "$p50"; put "$label" container_p99 "$p99"
  log "  round $r $label: names $q q/s (lost $l%), p50 $p50 us, p99 $p99 us"
  [[ $fwd == fwd ]] || return 0
  read -r q l < <(qps_once "$ns" "$server" "$WORK/q_cached")
  put "$label" fwd_cached_qps "$q"; put "$label" fwd_cached_loss "$l"
  read -r p50 p99 < <(lat_once "$ns" "$server" "$WORK/q_cached")
  put "$label" fwd_cached_p50 "$p50"; put "$label" fwd_cached_p99 "$p99"
  log "  round $r $label: cached forwarded $q q/s (lost $l%), p50 $p50 us, p99 $p99 us"
  [[ $label == dnsmasq ]] && return 0
  # every name new: u<i>.r<round>.<system>.bench.test, never asked before
  f=$WORK/q_unique_${label}_$r
  seq 1 400000 | awk -v r="$r" -v s="$label" '{print "u" $1 ".r" r "." s ".bench.test A"}' >"$f"
  read -r q l < <(qps_once "$ns" "$server" "$f" -n 1)
  put "$label" fwd_uncached_qps "$q"; put "$label" fwd_uncached_loss "$l"
  log "  round $r $label: uncached forwarded $q q/s (lost $l%)"
  rm -f "$f"
}

# dnsmasq_start ADDR: an upstream answering *.bench.test itself, never forwarding.
dnsmasq_start() {
  local addr=$1
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
    --listen-address="$addr" --port=53 --address=/bench.test/192.0.2.1 --local-ttl=300 \
    --cache-size=10000 --dns-forward-max=1000 --user=root --pid-file= \
    --log-facility="$WORK/dnsmasq-$addr.log" &
  local pid=$!
  bench_on_exit "kill $pid; wait $pid"
  local i
  for i in $(seq 50); do dig @"$addr" +short +time=1 +tries=1 probe.bench.test 2>/dev/null | grep -q 192.0.2.1 && return 0; sleep 0.1; done
  die "dnsmasq on $addr did not answer"
}

# ---- the measuring part: runs as a child of bench_dockerd (DOCKER_HOST set), or
# directly with NO_DOCKER=1 when no dockerd can run. netd is already up (parent).
measure_part() {
  WORK=$1
  local systems=() ns
  # dnsmasq direct: the client's ceiling (answers *.bench.test itself)
  echo "web.bench.test A" >"$WORK/q_ceiling"
  systems+=("dnsmasq - $(cat "$WORK/upstream") $WORK/q_ceiling fwd")
  systems+=("netd $(cat "$WORK/netd_ns") 127.0.0.11 $WORK/q_netd fwd")

  if [[ -z ${NO_DOCKER:-} ]]; then
    local D="$BENCH_DOCKER" net=dnsb$TAG sub=10.$((160 + RANDOM % 32)).$((RANDOM % 250)).0/24
    local gw=${sub%.0/24}.1 pid
    $D network create --subnet "$sub" --gateway "$gw" "$net" >/dev/null
    bench_on_exit "$D rm -f dnsweb$TAG dnscli$TAG; $D network rm $net"
    # Docker forwards from inside the container netns: its upstream listens on the gateway
    dnsmasq_start "$gw"
    $D run -d --name "dnsweb$TAG" --network "$net" busybox:bench sleep 3600 >/dev/null
    $D run -d --name "dnscli$TAG" --network "$net" --dns "$gw" busybox:bench sleep 3600 >/dev/null
    pid=$($D inspect -f '{{.State.Pid}}' "dnscli$TAG")
    ns=/proc/$pid/ns/net
    echo "dnsweb$TAG A" >"$WORK/q_docker"
    if ! in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 "dnsweb$TAG" | grep -q .; then
      log "SKIP docker: its embedded DNS did not resolve the container name"
    elif ! in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 c1.cached.bench.test | grep -q 192.0.2.1; then
      log "SKIP docker: its embedded DNS did not forward to the bench upstream"
    else
      systems+=("docker $ns 127.0.0.11 $WORK/q_docker fwd")
    fi
  fi

  if podman_setup; then
    local net=dnsb$TAG sub=10.$((200 + RANDOM % 32)).$((RANDOM % 250)).0/24 pid
    local gw=${sub%.0/24}.1
    $PODMAN network create --subnet "$sub" --gateway "$gw" "$net" >/dev/null
    $PODMAN run -d --name web --network "$net" localhost/busybox:bench sleep 3600 >/dev/null 2>&1
    $PODMAN run -d --name client --network "$net" localhost/busybox:bench sleep 3600 >/dev/null 2>&1
    pid=$($PODMAN inspect -f '{{.State.Pid}}' client)
    echo "web A" >"$WORK/q_aardvark"
    if in_ns "/proc/$pid/ns/net" dig @"$gw" +short +time=2 +tries=1 web | grep -q .; then
      systems+=("aardvark /proc/$pid/ns/net $gw $WORK/q_aardvark names")
    else
      log "SKIP aardvark-dns: it did not answer the container name"
    fi
  fi

  # warm the caches (netd's forwarding cache; the others have none or are the upstream)
  local sysline label server qc fwd r
  for sysline in "${systems[@]}"; do
    read -r label ns server qc fwd <<<"$sysline"
    in_ns "$ns" dnsperf -s "$server" -d "$WORK/q_cached" -n 1 -t 2 >/dev/null 2>&1 || true
  done
  # rounds: each system once per round, so load drift on this shared box hits all alike
  for r in $(seq "$RUNS"); do
    for sysline in "${systems[@]}"; do
      read -r label ns server qc fwd <<<"$sysline"
      round "$label" "$ns" "$server" "$qc" "$fwd" "$r"
    done
  done
}

main() {
  need_pkgs dnsperf dnsmasq dnsutils jq
  WORK=$(mktemp -d /tmp/dns-bench-XXXXXX)
  bench_on_exit "rm -rf $WORK"
  echo "web A" >"$WORK/q_netd"
  seq 1 200 | awk '{print "c" $1 ".cached.bench.test A"}' >"$WORK/q_cached"
  : >"$WORK/figures"

  local up=127.77.$((RANDOM % 250)).$((2 + RANDOM % 250))
  dnsmasq_start "$up"
  echo "$up" >"$WORK/upstream"

  log "netd (embedded DNS at 127.0.0.11, upstream dnsmasq $up)"
  netd_start --dns "$up:53"
  netctl network create "dnsb$TAG" >/dev/null
  netctl sandbox create --name web --network "dnsb$TAG" >/dev/null
  local ns
  ns=$(netctl --json sandbox create --name client --network "dnsb$TAG" | jq -r '.netns_path // .[0].netns_path')
  [[ -e $ns ]] || die "no netns path for the netd sandbox"
  in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 web | grep -q . || die "netd did not resolve the container name"
  in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 c1.cached.bench.test | grep -q 192.0.2.1 \
    || die "netd did not forward to the bench upstream"
  echo "$ns" >"$WORK/netd_ns"

  log "starting the references (private dockerd, podman) and measuring in $RUNS interleaved rounds"
  local rc=0
  with_dockerd bash "$0" __measure "$WORK" || rc=$?
  if [[ $rc == 3 ]]; then
    log "no private dockerd here: measuring without Docker"
    : >"$WORK/figures"
    rc=0
    NO_DOCKER=1 bash "$0" __measure "$WORK" || rc=$?
  fi
  [[ $rc == 0 ]] || die "measuring failed (exit $rc)"
  netd_stop
  write_rows
}

# fig SYSTEM KEY: the median of that key's figures (max for *_loss)
fig() {
  local v
  v=$(awk -v s="$1" -v k="$2" '$1 == s && $2 == k && $3 != "null" {print $3}' "$WORK/figures")
  [[ -n $v ]] || { echo null; return; }
  if [[ $2 == *_loss ]]; then sort -g <<<"$v" | tail -1; else median $v; fi
}

write_rows() {
  cat "$WORK/figures" >&2
  rows_begin "$OUT"
  local note="median of $RUNS interleaved rounds x ${DUR}s, dnsperf -c4 -q100 inside the container netns"
  local lnote="median of $RUNS interleaved rounds at ${LAT_QPS} q/s offered for ${LAT_DUR}s, per-query latencies (dnsperf -v)"
  row "$OUT" "DNS container name qps" "q/s" "$(fig netd container_qps)" "$(fig dnsmasq container_qps)" \
    "dnsmasq direct (client ceiling)" higher "at the client's ceiling (>= 0.9x dnsmasq direct)" 0.9 "$note; netd loss $(fig netd container_loss)%"
  row "$OUT" "DNS container name qps" "q/s" "$(fig netd container_qps)" "$(fig docker container_qps)" \
    "Docker 20.10 embedded DNS" higher "above Docker" 1 "$note"
  row "$OUT" "DNS container name qps" "q/s" "$(fig netd container_qps)" "$(fig aardvark container_qps)" \
    "aardvark-dns (podman+netavark)" higher "above aardvark-dns" 1 "$note"
  local sys name
  for sys in docker aardvark; do
    name="Docker 20.10 embedded DNS"; [[ $sys == aardvark ]] && name="aardvark-dns (podman+netavark)"
    row "$OUT" "DNS container name p50" "us" "$(fig netd container_p50)" "$(fig $sys container_p50)" \
      "$name" lower "lower p50 than $sys" 1 "$lnote"
    row "$OUT" "DNS container name p99" "us" "$(fig netd container_p99)" "$(fig $sys container_p99)" \
      "$name" lower "lower p99 than $sys" 1 "$lnote"
  done
  row "$OUT" "DNS forwarded (cached) qps" "q/s" "$(fig netd fwd_cached_qps)" "$(fig docker fwd_cached_qps)" \
    "Docker 20.10 embedded DNS" higher ">= 3x Docker" 3 "$note; 200 names asked repeatedly"
  row "$OUT" "DNS forwarded (cached) qps" "q/s" "$(fig netd fwd_cached_qps)" "$(fig dnsmasq fwd_cached_qps)" \
    "dnsmasq direct (client ceiling)" higher "informational" null "$note"
  row "$OUT" "DNS forwarded (cached) p50" "us" "$(fig netd fwd_cached_p50)" "$(fig docker fwd_cached_p50)" \
    "Docker 20.10 embedded DNS" lower "informational" null "$lnote"
  row "$OUT" "DNS forwarded (cached) p99" "us" "$(fig netd fwd_cached_p99)" "$(fig docker fwd_cached_p99)" \
    "Docker 20.10 embedded DNS" lower "informational" null "$lnote"
  row "$OUT" "DNS forwarded (uncached) qps" "q/s" "$(fig netd fwd_uncached_qps)" "$(fig docker fwd_uncached_qps)" \
    "Docker 20.10 embedded DNS" higher "informational (3x goal is for cached)" null "$note; every name new; netd loss $(fig netd fwd_uncached_loss)%, docker loss $(fig docker fwd_uncached_loss)%"
  rows_end "$OUT"
}

if [[ ${1:-} == __measure ]]; then
  measure_part "$2"
else
  main "$@"
fi
