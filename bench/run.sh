#!/usr/bin/env bash
# THE benchmark command of netd: installs what it needs (Debian packages), builds netd in
# release mode, runs every sub-benchmark that exists (and says which are missing),
# collects bench/results/*.json (the convention in bench/README.md), prints one table
# (metric, netd, reference, ratio netd/reference, better-is, goal met?), writes
# bench/results/all.json and draws bench/results/ratios.png.
#
#   bench/run.sh                 # everything
#   bench/run.sh dns start       # only these sub-benchmarks (names as in the table below)
#   BENCH_NO_BUILD=1 bench/run.sh   # use the binaries already in target/release
#
# Needs root (namespaces, bridges, nftables, private dockerd/podman). No traffic leaves
# this machine: every server, upstream and client is on loopback or inside namespaces
# the benchmarks create.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/report.sh"
cd "$REPO"

[[ $(id -u) == 0 ]] || die "bench/run.sh needs root"

# ---- 1. packages ----------------------------------------------------------------------------------
need_pkgs jq docker.io podman netavark aardvark-dns runc dnsperf dnsmasq dnsutils iperf3 \
  containernetworking-plugins gnuplot-nox hyperfine busybox-static nftables iproute2 util-linux

# ---- 2. build -------------------------------------------------------------------------------------
if [[ -z ${BENCH_NO_BUILD:-} ]]; then
  log "cargo build --release --workspace --bins"
  cargo build --release --workspace --bins >"$RESULTS/build.log" 2>&1 \
    || { tail -30 "$RESULTS/build.log" >&2; die "release build failed (bench/results/build.log)"; }
  cargo build --release -p tests --example bench_dockerd >>"$RESULTS/build.log" 2>&1 \
    || log "bench_dockerd fixture did not build: Docker references will be missing"
fi

# ---- 3. sub-benchmarks --------------------------------------------------------------------------
# name | how to run it | where it lives (for the "missing" message)
# A sub-benchmark writes bench/results/<name>.json; it may be a script under bench/ or a
# Rust example of the tests crate (run with cargo in release mode).
declare -a ORDER=(dns start proxy endpoints cni)
declare -A WHAT=(
  [dns]="DNS qps and p50/p99 vs Docker embedded DNS, aardvark-dns, dnsmasq (bench/dns.sh)"
  [start]="netctl run --rm vs docker/podman run --rm (bench/run_start.sh)"
  [proxy]="port proxy vs docker-proxy (bench/proxy-vs-docker.sh)"
  [endpoints]="per-endpoint cost at 10/100/500 vs CNI bridge (bench/endpoints.* or tests/examples/endpoints_bench.rs)"
  [cni]="CNI ADD/DEL latency vs bridge+host-local (bench/cni.sh or tests/examples/cni_bench.rs)"
)

# find_cmd NAME: print the command line of a sub-benchmark, or nothing if it is missing
find_cmd() {
  local f
  case $1 in
    dns) echo "bash $BENCH_DIR/dns.sh" ;;
    start) echo "bash $BENCH_DIR/run_start.sh" ;;
    proxy) [[ -f $BENCH_DIR/proxy-vs-docker.sh ]] && echo "bash $BENCH_DIR/proxy-vs-docker.sh" ;;
    endpoints)
      for f in "$BENCH_DIR"/endpoints.sh "$BENCH_DIR"/endpoints.py; do
        [[ -f $f ]] || continue
        [[ $f == *.py ]] && echo "python3 $f" || echo "bash $f"
        return 0
      done
      [[ -f $REPO/tests/examples/endpoints_bench.rs ]] \
        && echo "cargo run -q --release -p tests --example endpoints_bench -- --json $RESULTS/endpoints.json" ;;
    cni)
      if [[ -f $BENCH_DIR/cni.sh ]]; then echo "bash $BENCH_DIR/cni.sh"
      else
        for f in "$REPO"/tests/examples/cni_bench.rs "$REPO"/tests/examples/cni*bench*.rs; do
          [[ -f $f ]] && { echo "cargo run -q --release -p tests --example $(basename "$f" .rs)"; return 0; }
        done
      fi ;;
  esac
  return 0
}

WANT=("$@")
((${#WANT[@]})) || WANT=("${ORDER[@]}")
RAN=()
SKIPPED=()
STAMP=$(date +%s)
mkdir -p "$RESULTS/logs"
for name in "${WANT[@]}"; do
  cmd=$(find_cmd "$name")
  if [[ -z $cmd ]]; then
    log "SKIP $name: not there yet — ${WHAT[$name]:-unknown sub-benchmark}"
    SKIPPED+=("$name: missing (${WHAT[$name]:-?})")
    continue
  fi
  quiesce
  log "=== $name: $cmd"
  rc=0
  set +e
  NO_BUILD=1 NETD_BIN_DIR=$BIN BENCH_RESULTS=$RESULTS $cmd 2>&1 | tee "$RESULTS/logs/$name.log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc != 0 ]]; then
    log "$name exited $rc (log: bench/results/logs/$name.log)"
    SKIPPED+=("$name: exited $rc (see bench/results/logs/$name.log)")
    continue
  fi
  RAN+=("$name")
  # A sub-benchmark that prints a table instead of writing the convention gets adapted.
  out=$RESULTS/$name.json
  if [[ ! -f $out || $(stat -c %Y "$out") -lt $STAMP ]] && [[ -f $BENCH_DIR/lib/adapt_$name.sh ]]; then
    log "$name: adapting its printed table into $out (bench/lib/adapt_$name.sh)"
    bash "$BENCH_DIR/lib/adapt_$name.sh" "$RESULTS/logs/$name.log" >"$out.tmp" && mv "$out.tmp" "$out" \
      || { rm -f "$out.tmp"; log "$name: adapter failed"; }
  fi
done

# ---- 4. collect --------------------------------------------------------------------------------
rows=$(mktemp)
echo '[]' >"$rows"
for f in "$RESULTS"/*.json; do
  [[ -e $f ]] || continue
  n=$(basename "$f" .json)
  [[ $n == all ]] && continue
  # A file of a sub-benchmark this run tried but that did not rewrite it is stale; files of
  # sub-benchmarks not selected this time are kept as they are (an earlier run's).
  stale=
  if [[ $(stat -c %Y "$f") -lt $STAMP ]] && [[ " ${WANT[*]} " == *" $n "* ]]; then
    stale=1
    log "note: $n.json is older than this run (kept, marked stale)"
  fi
  if norm=$(normalise "$f" "$n" 2>/dev/null); then
    if [[ $(jq length <<<"$norm") == 0 ]]; then
      log "WARN: $n.json has no rows in the bench convention (see bench/README.md): ignored"
      continue
    fi
    [[ -n $stale ]] && norm=$(jq 'map(. + {stale: true})' <<<"$norm")
    jq --argjson add "$norm" '. + $add' "$rows" >"$rows.tmp" && mv "$rows.tmp" "$rows"
  else
    log "WARN: $n.json is not valid JSON: ignored"
  fi
done

ALL=$RESULTS/all.json
ran_json=$(printf '%s\n' "${RAN[@]+"${RAN[@]}"}" | jq -R . | jq -s 'map(select(. != ""))')
skip_json=$(printf '%s\n' "${SKIPPED[@]+"${SKIPPED[@]}"}" | jq -R . | jq -s 'map(select(. != ""))')
verdicts <"$rows" | jq --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
  --arg cpus "$(nproc)" --arg os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
  --arg commit "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --argjson ran "$ran_json" --argjson skipped "$skip_json" \
  '{date: $date, machine: {cpus: ($cpus | tonumber), kernel: $kernel, os: $os}, commit: $commit,
    ran: $ran, skipped: $skipped, rows: .}' >"$ALL"
rm -f "$rows"

# ---- 5. report ---------------------------------------------------------------------------------
echo
fmt_table "$ALL"
echo
fmt_markdown "$ALL" >"$RESULTS/table.md"
chart "$ALL" "$RESULTS/ratios.png" && [[ -f $RESULTS/ratios.png ]] && log "chart: $RESULTS/ratios.png"
log "ran: ${RAN[*]:-none}"
for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do log "skipped: $s"; done
log "results: $RESULTS/all.json, $RESULTS/table.md"
