# Shared helpers of netd's benchmark scripts (sourced, not run).
#
# What is here: logging, medians and percentiles, the JSON result rows of the bench
# convention (bench/README.md), a private netd on private paths, and a private Podman
# (netavark + aardvark-dns) configuration. Every helper that starts something registers
# its cleanup with `bench_on_exit`, so a failing or interrupted script leaves nothing.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BIN=${NETD_BIN_DIR:-$REPO/target/release}
mkdir -p "$RESULTS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- cleanup stack: run in reverse order on exit ---------------------------------------
BENCH_CLEANUPS=()
bench_on_exit() { BENCH_CLEANUPS+=("$1"); }
bench_cleanup() {
  local i
  for ((i = ${#BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${BENCH_CLEANUPS[$i]}" >/dev/null 2>&1 || true
  done
  BENCH_CLEANUPS=()
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- statistics ----------------------------------------------------------------------------
# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "null"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }
# percentile P (0-100) of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END{ if (NR==0) {print "null"; exit} r=int(p/100*NR+0.999999); if (r<1) r=1; if (r>NR) r=NR; print a[r] }'; }

# ---- result rows (the bench convention) ----------------------------------------------------
# row FILE METRIC UNIT NETD REFERENCE REFERENCE_NAME BETTER GOAL [GOAL_RATIO] [NOTE]
# REFERENCE may be "null"; GOAL_RATIO (optional) is the netd/reference ratio the goal asks
# for (at most, when lower is better; at least, when higher is better).
row() {
  local file=$1 metric=$2 unit=$3 netd=$4 ref=$5 refname=$6 better=$7 goal=$8 gr=${9:-null} note=${10:-}
  [[ $netd =~ ^-?[0-9.eE+-]+$ ]] || netd=null
  [[ $ref =~ ^-?[0-9.eE+-]+$ ]] || ref=null
  [[ $gr =~ ^-?[0-9.eE+-]+$ ]] || gr=null
  jq -n --arg m "$metric" --arg u "$unit" --argjson n "$netd" --argjson r "$ref" \
    --arg rn "$refname" --arg b "$better" --arg g "$goal" --argjson gr "$gr" --arg note "$note" \
    '{metric:$m, unit:$u, netd:$n, reference:$r, reference_name:$rn, better:$b, goal:$g}
     + (if $gr == null then {} else {goal_ratio:$gr} end)
     + (if $note == "" then {} else {note:$note} end)' >>"$file.rows"
}
# rows_begin FILE / rows_end FILE: collect rows, then write FILE as one JSON list.
rows_begin() { rm -f "$1.rows"; : >"$1.rows"; }
rows_end() { jq -s '.' "$1.rows" >"$1" && rm -f "$1.rows"; log "wrote $1 ($(jq length "$1") rows)"; }

# ---- packages ------------------------------------------------------------------------------
# need_pkgs PKG... : apt-get install the Debian packages that are not installed yet.
need_pkgs() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1
  } || log "could not install some of: ${missing[*]}"
}

# A unique tag for names of this run (bridge names are limited to 15 characters).
TAG=$(printf '%x' $(($$ % 0xfffff)))

# ---- a private netd --------------------------------------------------------------------------
# netd_start [NETD ARGS...]: start target/release/netd on private paths, its own nft table
# and pool; sets NETD_DIR, NETD_PID and exports NETD_HOST for netctl.
netd_start() {
  [[ -x $BIN/netd && -x $BIN/netctl ]] || die "$BIN/netd is missing: cargo build --release --workspace --bins"
  NETD_DIR=$(mktemp -d /tmp/netd-bench-XXXXXX)
  NETD_TABLE=netdbench$TAG
  export NETD_HOST=$NETD_DIR/netd.sock
  local third=$(( (RANDOM % 16) * 16 ))
  "$BIN/netd" --socket "$NETD_HOST" --data-root "$NETD_DIR/data" --exec-root "$NETD_DIR/run" \
    --nft-table "$NETD_TABLE" --no-default-bridge --default-bridge "nb$TAG" \
    --default-address-pool "base=10.$((96 + RANDOM % 32)).$third.0/20,size=24" \
    --docker-plugin-socket "" --log-level warn "$@" >"$NETD_DIR/netd.log" 2>&1 &
  NETD_PID=$!
  bench_on_exit "netd_stop"
  local i
  for i in $(seq 100); do
    "$BIN/netctl" version >/dev/null 2>&1 && return 0
    kill -0 "$NETD_PID" 2>/dev/null || { cat "$NETD_DIR/netd.log" >&2; die "netd exited early"; }
    sleep 0.1
  done
  die "netd did not answer on $NETD_HOST"
}
netctl() { "$BIN/netctl" "$@"; }
netd_stop() {
  [[ -n ${NETD_PID:-} ]] || return 0
  local id ids
  ids=$(netctl --json ps -a 2>/dev/null | jq -r '.[].id' 2>/dev/null || true)
  for id in $ids; do netctl rm -f "$id" >/dev/null 2>&1 || true; done
  ids=$(netctl --json sandbox ls 2>/dev/null | jq -r '.[].id' 2>/dev/null || true)
  for id in $ids; do netctl sandbox rm "$id" >/dev/null 2>&1 || true; done
  ids=$(netctl --json network ls 2>/dev/null | jq -r '.[] | select(.name != "host" and .name != "none") | .id' 2>/dev/null || true)
  for id in $ids; do netctl network rm "$id" >/dev/null 2>&1 || true; done
  kill -TERM "$NETD_PID" 2>/dev/null || true
  local i
  for i in $(seq 50); do kill -0 "$NETD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$NETD_PID" 2>/dev/null || true
  wait "$NETD_PID" 2>/dev/null || true
  nft delete table inet "$NETD_TABLE" 2>/dev/null || true
  nft delete table bridge "$NETD_TABLE" 2>/dev/null || true
  ip link del "nb$TAG" 2>/dev/null || true
  local m
  for m in $(awk -v d="$NETD_DIR" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$NETD_DIR"
  NETD_PID=
}

# ---- a private podman (netavark + aardvark-dns) ------------------------------------------------
# podman_setup: write a private containers.conf and storage dirs, import busybox as
# localhost/busybox:bench. Sets PODMAN (the command line to use). Returns 1 (after a
# message) when podman cannot run containers here.
podman_setup() {
  command -v podman >/dev/null || { log "SKIP podman: not installed"; return 1; }
  [[ -x /usr/lib/podman/netavark || -x /usr/libexec/podman/netavark ]] || { log "SKIP podman: netavark not installed"; return 1; }
  PODMAN_DIR=$(mktemp -d /tmp/podman-bench-XXXXXX)
  mkdir -p "$PODMAN_DIR/netcfg" "$PODMAN_DIR/tmp" "$PODMAN_DIR/rootfs/bin"
  cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "netavark"
network_config_dir = "$PODMAN_DIR/netcfg"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_DIR/tmp"
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman"]
EOF
  export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
  PODMAN="podman --root $PODMAN_DIR/root --runroot $PODMAN_DIR/runroot --storage-driver vfs"
  bench_on_exit "podman_teardown"
  cp /bin/busybox "$PODMAN_DIR/rootfs/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -s busybox "$PODMAN_DIR/rootfs/bin/$a"; done
  tar -C "$PODMAN_DIR/rootfs" -c . | $PODMAN import - localhost/busybox:bench >/dev/null 2>&1 \
    || { log "SKIP podman: image import failed"; return 1; }
  $PODMAN run --rm --network none localhost/busybox:bench /bin/true >/dev/null 2>"$PODMAN_DIR/probe.err" \
    || { log "SKIP podman: cannot run a container here: $(tail -1 "$PODMAN_DIR/probe.err")"; return 1; }
}
podman_teardown() {
  [[ -n ${PODMAN_DIR:-} ]] || return 0
  local c n m
  for c in $($PODMAN ps -aq 2>/dev/null || true); do $PODMAN rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  for n in $($PODMAN network ls -q 2>/dev/null || true); do
    [[ $n == podman ]] || $PODMAN network rm -f "$n" >/dev/null 2>&1 || true
  done
  $PODMAN system reset -f >/dev/null 2>&1 || true
  for m in $(awk -v d="$PODMAN_DIR" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$PODMAN_DIR"
  unset CONTAINERS_CONF
  PODMAN_DIR=
}

# ---- the private dockerd fixture (tests/examples/bench_dockerd.rs) --------------------------------
BENCH_DOCKERD=$REPO/target/release/examples/bench_dockerd
# with_dockerd CMD...: run CMD beside a private dockerd (DOCKER_HOST and BENCH_DOCKER set,
# busybox:bench imported). Returns 3 when dockerd cannot run here.
with_dockerd() {
  [[ -x $BENCH_DOCKERD ]] || { log "SKIP docker: $BENCH_DOCKERD not built"; return 3; }
  "$BENCH_DOCKERD" -- "$@"
}

# quiesce: wait (at most 90 s) until the machine has been at least 90% idle for 3
# seconds in a row, so that one sub-benchmark's teardown (the kernel destroys hundreds
# of network namespaces in the background for tens of seconds after they are deleted)
# does not slow the next one's first figures. Prints how long it waited.
quiesce() {
  local start=$SECONDS calm=0 a b idle total
  while (( calm < 3 && SECONDS - start < 90 )); do
    read -ra a < <(head -1 /proc/stat)
    sleep 1
    read -ra b < <(head -1 /proc/stat)
    idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
    total=0
    for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
    if (( total > 0 && idle * 10 >= total * 9 )); then calm=$((calm + 1)); else calm=0; fi
  done
  log "machine quiet after $((SECONDS - start)) s (90% idle for 3 s$( (( calm < 3 )) && echo ': NOT reached, going on'))"
}
