#!/usr/bin/env bash
# Adapter: the CNI bench (tests/examples/cni_bench.rs) prints a table, not the bench
# convention; turn its stdout (argument 1: the log) into rows on stdout (a JSON list).
# Lines read: "<what>   <netd> ms   <reference> ms   <ratio>".
set -euo pipefail
log=$1
awk '
  / ms .* ms / && ($0 ~ /median of|concurrent/) {
    n = split($0, f, /[ \t]+/)
    ratio = f[n]; ref = f[n-2]; netd = f[n-4]
    what = $0; sub(/[ \t]+[0-9.]+ ms.*$/, "", what); sub(/^[ \t]+/, "", what)
    printf "%s\t%s\t%s\n", what, netd, ref
  }' "$log" |
  jq -R -s '
    split("\n") | map(select(length > 0) | split("\t")) |
    map({metric: ("CNI " + .[0]), unit: "ms", netd: (.[1] | tonumber), reference: (.[2] | tonumber),
         reference_name: "CNI bridge + host-local (Debian plugins)", better: "lower",
         goal: "at most 1/3 of the reference time", goal_ratio: 0.3333,
         note: "adapted from the stdout of tests/examples/cni_bench.rs"})'
