#!/usr/bin/env bash
# DNS benchmark: dnsperf run INSIDE a container's network namespace against its embedded
# DNS at 127.0.0.11 (netd, Docker 20.10) or its network's aardvark-dns (Podman with
# netavark), and against dnsmasq queried directly on loopback (the client's ceiling).
#
# Measured per system: queries/s for a container name (median of DNS_RUNS runs of DNS_DUR
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
# qps NS SERVER QFILE_OR_GENERATOR -> "median_qps max_loss%" over RUNS
# If QFILE ends in ".gen", it is a command that prints a fresh query file path per run.
qps() {
  local ns=$1 server=$2 q=$3 v=() r one file extra LOSS=0
  for r in $(seq "$RUNS"); do
    file=$q
    extra=()
    if [[ $q == *.gen ]]; then file=$(bash "$q" "$r"); extra=(-n 1); fi
    one=$(qps_once "$ns" "$server" "$file" "${extra[@]}")
    v+=("${one% *}")
    LOSS=$(awk -v a="$LOSS" -v b="${one#* }" 'BEGIN{ if (b != "null" && b+0 > a+0) a=b; print a }')
    log "    run $r: ${one% *} q/s (lost ${one#* }%)"
  done
  echo "$(median "${v[@]}") $LOSS"
}
# lat NS SERVER QFILE -> "p50_us p99_us" at LAT_QPS offered load (medians over RUNS runs)
lat() {
  local ns=$1 server=$2 qfile=$3 file r a=() b=() p50 p99
  file=$(mktemp "$WORK/lat-XXXX")
  for r in $(seq "$RUNS"); do
    in_ns "$ns" dnsperf -s "$server" -d "$qfile" -l "$LAT_DUR" -Q "$LAT_QPS" -c 4 -q 100 -t 2 -v >"$file" 2>/dev/null || true
    p50=$(awk '$1 == ">" {print $NF * 1e6}' "$file" | percentile 50)
    p99=$(awk '$1 == ">" {print $NF * 1e6}' "$file" | percentile 99)
    log "    latency run $r at $LAT_QPS q/s: p50 ${p50} us, p99 ${p99} us ($(grep -c '^>' "$file") answers)"
    a+=("$p50"); b+=("$p99")
  done
  rm -f "$file"
  echo "$(median "${a[@]}") $(median "${b[@]}")"
}

# measure_system LABEL NS SERVER [forward]: container names (and forwarded names) ->
# appends "LABEL key value" lines to $WORK/figures
measure_system() {
  local label=$1 ns=$2 server=$3 fwd=${4:-} q l p50 p99
  local f=$WORK/figures
  log "  $label: container name, throughput"
  read -r q l < <(qps "$ns" "$server" "$WORK/q_container")
  echo "$label container_qps $q" >>"$f"; echo "$label container_loss $l" >>"$f"
  log "  $label: container name, latency"
  read -r p50 p99 < <(lat "$ns" "$server" "$WORK/q_container")
  echo "$label container_p50 $p50" >>"$f"; echo "$label container_p99 $p99" >>"$f"
  [[ -n $fwd ]] || return 0
  log "  $label: forwarded names (cached set), warm-up then throughput"
  in_ns "$ns" dnsperf -s "$server" -d "$WORK/q_cached" -n 1 -t 2 >/dev/null 2>&1 || true
  read -r q l < <(qps "$ns" "$server" "$WORK/q_cached")
  echo "$label fwd_cached_qps $q" >>"$f"; echo "$label fwd_cached_loss $l" >>"$f"
  read -r p50 p99 < <(lat "$ns" "$server" "$WORK/q_cached")
  echo "$label fwd_cached_p50 $p50" >>"$f"; echo "$label fwd_cached_p99 $p99" >>"$f"
  log "  $label: forwarded names (every name new)"
  read -r q l < <(qps "$ns" "$server" "$WORK/q_unique_$label.gen")
  echo "$label fwd_uncached_qps $q" >>"$f"; echo "$label fwd_uncached_loss $l" >>"$f"
}

# dnsmasq_start ADDR PIDVAR: an upstream answering *.bench.test, never forwarding.
dnsmasq_start() {
  local addr=$1 pidfile
  pidfile=$(mktemp "$WORK/dnsmasq-XXXX.pid")
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
    --listen-address="$addr" --port=53 --address=/bench.test/192.0.2.1 --local-ttl=300 \
    --cache-size=10000 --dns-forward-max=1000 --user=root --pid-file="$pidfile" \
    --log-facility="$WORK/dnsmasq-$addr.log" &
  local pid=$!
  bench_on_exit "kill $pid; wait $pid"
  local i
  for i in $(seq 50); do dig @"$addr" +short +time=1 +tries=1 probe.bench.test 2>/dev/null | grep -q 192.0.2.1 && return 0; sleep 0.1; done
  die "dnsmasq on $addr did not answer"
}

make_queries() {
  echo "web A" >"$WORK/q_container"
  seq 1 200 | awk '{print "c" $1 ".cached.bench.test A"}' >"$WORK/q_cached"
  local label
  for label in netd docker; do
    # a generator: prints a file of names never asked before (per system and run)
    cat >"$WORK/q_unique_$label.gen" <<EOF
f=$WORK/q_unique_${label}_\$1
seq 1 400000 | awk -v r="\$1" '{print "u" \$1 ".r" r ".$label.bench.test A"}' >"\$f"
echo "\$f"
EOF
  done
}

# ---- the Docker part runs as a child of bench_dockerd (DOCKER_HOST set) --------------------------
docker_part() {
  WORK=$1
  local D="$BENCH_DOCKER" net=dnsb$TAG sub=10.$((160 + RANDOM % 32)).$((RANDOM % 250)).0/24
  local gw=${sub%.0/24}.1
  $D network create --subnet "$sub" --gateway "$gw" "$net" >/dev/null
  bench_on_exit "$D rm -f dnsweb$TAG dnscli$TAG; $D network rm $net"
  dnsmasq_start "$gw"
  $D run -d --name "dnsweb$TAG" --network "$net" busybox:bench sleep 900 >/dev/null
  $D run -d --name "dnscli$TAG" --network "$net" --dns "$gw" busybox:bench sleep 900 >/dev/null
  local pid ns
  pid=$($D inspect -f '{{.State.Pid}}' "dnscli$TAG")
  ns=/proc/$pid/ns/net
  local web
  web=$(in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 "dnsweb$TAG" | head -1)
  [[ -n $web ]] || die "Docker's embedded DNS did not resolve the container name"
  # the container is "dnsweb<tag>" here; the query file asks for that name
  echo "dnsweb$TAG A" >"$WORK/q_container"
  in_ns "$ns" dig @127.0.0.11 +short +time=2 +tries=1 c1.cached.bench.test | grep -q 192.0.2.1 \
    || die "Docker's embedded DNS did not forward to the bench upstream"
  measure_system docker "$ns" 127.0.0.11 forward
}

podman_part() {
  podman_setup || return 0
  local net=dnsb$TAG sub=10.$((200 + RANDOM % 32)).$((RANDOM % 250)).0/24
  local gw=${sub%.0/24}.1
  $PODMAN network create --subnet "$sub" --gateway "$gw" "$net" >/dev/null
  $PODMAN run -d --name web --network "$net" localhost/busybox:bench sleep 900 >/dev/null 2>&1
  $PODMAN run -d --name client --network "$net" localhost/busybox:bench sleep 900 >/dev/null 2>&1
  local pid
  pid=$($PODMAN inspect -f '{{.State.Pid}}' client)
  local ns=/proc/$pid/ns/net
  in_ns "$ns" dig @"$gw" +short +time=2 +tries=1 web | grep -q . \
    || { log "SKIP aardvark-dns: it did not answer the container name"; return 0; }
  echo "web A" >"$WORK/q_container"
  measure_system aardvark "$ns" "$gw"
  podman_teardown
}

main() {
  need_pkgs dnsperf dnsmasq dnsutils jq
  WORK=$(mktemp -d /tmp/dns-bench-XXXXXX)
  bench_on_exit "rm -rf $WORK"
  make_queries
  : >"$WORK/figures"

  # -- the ceiling: dnsmasq asked directly on loopback, cached set (answered locally)
  local up=127.77.$((RANDOM % 250)).$((2 + RANDOM % 250))
  dnsmasq_start "$up"
  log "dnsmasq direct on $up (client ceiling)"
  # dnsmasq answers *.bench.test itself: one name stands for "a name it knows"
  echo "web.bench.test A" >"$WORK/q_container"
  measure_system dnsmasq - "$up"
  read -r q l < <(qps - "$up" "$WORK/q_cached")
  echo "dnsmasq fwd_cached_qps $q" >>"$WORK/figures"
  echo "web A" >"$WORK/q_container"

  # -- netd
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
  measure_system netd "$ns" 127.0.0.11 forward
  netd_stop

  # -- Docker's embedded DNS (private dockerd)
  log "Docker 20.10 embedded DNS (private dockerd)"
  local rc=0
  with_dockerd bash "$0" __docker "$WORK" || rc=$?
  [[ $rc == 0 ]] || log "Docker part did not complete (exit $rc): its rows will have no reference"

  # -- aardvark-dns under podman/netavark
  log "aardvark-dns (podman + netavark)"
  podman_part || log "podman part failed"

  write_rows
}

fig() { awk -v s="$1" -v k="$2" '$1 == s && $2 == k {v=$3} END {print (v=="" ? "null" : v)}' "$WORK/figures"; }

write_rows() {
  cat "$WORK/figures" >&2
  rows_begin "$OUT"
  local note="median of $RUNS runs x ${DUR}s, dnsperf -c4 -q100 inside the container netns"
  local lnote="median of $RUNS runs at ${LAT_QPS} q/s offered for ${LAT_DUR}s, per-query latencies (dnsperf -v)"
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

if [[ ${1:-} == __docker ]]; then
  docker_part "$2"
else
  main "$@"
fi
