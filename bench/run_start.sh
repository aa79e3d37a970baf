#!/usr/bin/env bash
# Container start time with networking: wall time of one `run --rm ... true` on a
# user bridge network, median of START_RUNS (20) with hyperfine (2 warm-ups, no shell):
#   netd:   netctl run --rm --network N ROOTFS /bin/true   (ROOTFS from `netctl rootfs busybox`)
#   Docker: docker run --rm --network N busybox:bench true (the same static busybox,
#           imported into a private dockerd)
#   Podman: podman run --rm --network N localhost/busybox:bench true (netavark; private
#           storage and config), where it runs.
# Writes bench/results/start.json (rows of the bench convention). Needs root.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

RUNS=${START_RUNS:-20}
OUT=$RESULTS/start.json

# hf NAME CMD: hyperfine CMD, print the median in seconds
hf() {
  local name=$1 cmd=$2 json
  json=$WORK/hf-$name.json
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" --style basic "$cmd" >&2 \
    || { log "$name: hyperfine failed"; echo null; return 0; }
  jq -r '.results[0].median' "$json"
}

docker_part() {
  WORK=$1
  local D="$BENCH_DOCKER" net=stb$TAG sub=10.$((160 + RANDOM % 32)).$((RANDOM % 250)).0/24
  $D network create --subnet "$sub" "$net" >/dev/null
  bench_on_exit "$D network rm $net"
  $D run --rm --network "$net" busybox:bench true || die "docker run failed"
  echo "docker $(hf docker "$D run --rm --network $net busybox:bench true")" >>"$WORK/figures"
}

main() {
  need_pkgs hyperfine jq busybox-static
  WORK=$(mktemp -d /tmp/start-bench-XXXXXX)
  bench_on_exit "rm -rf $WORK"
  : >"$WORK/figures"

  log "netd: netctl run --rm on a bridge network"
  netd_start
  netctl rootfs busybox "$WORK/rootfs" >/dev/null
  netctl network create "stb$TAG" >/dev/null
  netctl run --rm --network "stb$TAG" "$WORK/rootfs" /bin/true || die "netctl run failed"
  echo "netd $(hf netd "$BIN/netctl --host $NETD_HOST run --rm --network stb$TAG $WORK/rootfs /bin/true")" >>"$WORK/figures"
  netd_stop

  log "Docker 20.10: docker run --rm on a user network (private dockerd)"
  local rc=0
  with_dockerd bash "$0" __docker "$WORK" || rc=$?
  [[ $rc == 0 ]] || log "Docker part did not complete (exit $rc)"

  log "Podman 4.3 + netavark: podman run --rm on a user network"
  if podman_setup; then
    local sub=10.$((200 + RANDOM % 32)).$((RANDOM % 250)).0/24
    $PODMAN network create --subnet "$sub" "stb$TAG" >/dev/null
    if $PODMAN run --rm --network "stb$TAG" localhost/busybox:bench true >/dev/null 2>&1; then
      echo "podman $(hf podman "$PODMAN run --rm --network stb$TAG localhost/busybox:bench true")" >>"$WORK/figures"
    else
      log "SKIP podman: run on a netavark network failed"
    fi
    podman_teardown
  fi

  cat "$WORK/figures" >&2
  fig() { awk -v s="$1" '$1 == s {v=$2} END {print (v=="" ? "null" : v)}' "$WORK/figures"; }
  rows_begin "$OUT"
  local note="median of $RUNS runs (hyperfine -N, 2 warm-ups), busybox rootfs, /bin/true"
  row "$OUT" "run --rm true (start+net+stop)" "s" "$(fig netd)" "$(fig docker)" \
    "docker run --rm (Docker 20.10, user network)" lower ">= 5x faster than docker run" 0.2 "$note"
  row "$OUT" "run --rm true (start+net+stop)" "s" "$(fig netd)" "$(fig podman)" \
    "podman run --rm (Podman 4.3, netavark)" lower "faster than podman run" 1 "$note"
  rows_end "$OUT"
}

if [[ ${1:-} == __docker ]]; then
  docker_part "$2"
else
  main "$@"
fi
