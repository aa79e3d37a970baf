#!/usr/bin/env bash
# Adapter: bench/proxy-vs-docker.sh prints a table, not the bench convention; turn its
# stdout (argument 1: the log) into rows on stdout (a JSON list). Its table lines are
# "<title> direct netd-proxy netd-nat docker-proxy <n/k>x <n/d>x" (medians), then
# "  UDP loss d% n% a% k%" and "memory per published port: netd daemon RSS +X KiB/port"
# / "docker-proxy Y KiB PSS/port".
set -euo pipefail
log=$1
num() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1" || echo null; }
# cols TITLE -> "direct netd-proxy netd-nat docker-proxy"
cols() { awk -v t="$1" 'index($0, t) == 1 { print $(NF-5), $(NF-4), $(NF-3), $(NF-2); exit }' "$log"; }
read -r tcp_d tcp_n tcp_a tcp_k < <(cols "TCP Gbit/s (client->server)" || true)
read -r tcr_d tcr_n tcr_a tcr_k < <(cols "TCP Gbit/s (server->client, -R)" || true)
read -r udp_d udp_n udp_a udp_k < <(cols "UDP Mbit/s received" || true)
read -r cps_d cps_n cps_a cps_k < <(cols "connections/s" || true)
read -r loss_d loss_n loss_a loss_k < <(awk '/^  UDP loss/ { gsub(/%/, ""); print $(NF-3), $(NF-2), $(NF-1), $NF; exit }' "$log" || true)
mem_n=$(sed -n 's/.*netd daemon RSS +\([0-9.]*\) KiB\/port.*/\1/p' "$log" | head -1)
mem_k=$(sed -n 's/.*docker-proxy \([0-9.]*\) KiB PSS\/port.*/\1/p' "$log" | head -1)
udp_met=$(awk -v n="${udp_n:-0}" -v k="${udp_k:-0}" -v l="${loss_n:-100}" 'BEGIN { print (k > 0 && n / k >= 3 && l < 5) ? "true" : "false" }')
jq -n \
  --argjson tcp_d "$(num "${tcp_d:-}")" --argjson tcp_n "$(num "${tcp_n:-}")" --argjson tcp_a "$(num "${tcp_a:-}")" --argjson tcp_k "$(num "${tcp_k:-}")" \
  --argjson tcr_d "$(num "${tcr_d:-}")" --argjson tcr_n "$(num "${tcr_n:-}")" --argjson tcr_k "$(num "${tcr_k:-}")" \
  --argjson udp_n "$(num "${udp_n:-}")" --argjson udp_k "$(num "${udp_k:-}")" \
  --argjson cps_n "$(num "${cps_n:-}")" --argjson cps_k "$(num "${cps_k:-}")" --argjson cps_a "$(num "${cps_a:-}")" \
  --argjson loss_n "$(num "${loss_n:-}")" --argjson loss_k "$(num "${loss_k:-}")" \
  --argjson mem_n "$(num "${mem_n:-}")" --argjson mem_k "$(num "${mem_k:-}")" --argjson udp_met "$udp_met" '
  def r(m; u; n; ref; rn; b; g; gr): {metric: m, unit: u, netd: n, reference: ref, reference_name: rn, better: b, goal: g}
     + (if gr == null then {} else {goal_ratio: gr} end) + {note: "adapted from the stdout of bench/proxy-vs-docker.sh (medians)"};
  [ r("proxy TCP throughput c->s"; "Gbit/s"; $tcp_n; $tcp_d; "direct path (no proxy)"; "higher"; "within 5% of the direct path"; 0.95),
    r("proxy TCP throughput c->s"; "Gbit/s"; $tcp_n; $tcp_k; "docker-proxy (Docker 20.10)"; "higher"; "informational"; null),
    r("proxy TCP throughput s->c"; "Gbit/s"; $tcr_n; $tcr_d; "direct path (no proxy)"; "higher"; "within 5% of the direct path"; 0.95),
    r("proxy TCP throughput s->c"; "Gbit/s"; $tcr_n; $tcr_k; "docker-proxy (Docker 20.10)"; "higher"; "informational"; null),
    r("NAT (no proxy) TCP throughput c->s"; "Gbit/s"; $tcp_a; $tcp_d; "direct path (no proxy)"; "higher"; "informational"; null),
    (r("proxy UDP received"; "Mbit/s"; $udp_n; $udp_k; "docker-proxy (Docker 20.10)"; "higher"; ">= 3x docker-proxy with < 5% loss"; 3) + {met: $udp_met}),
    r("proxy UDP loss"; "%"; $loss_n; $loss_k; "docker-proxy (Docker 20.10)"; "lower"; "informational (goal: < 5%)"; null),
    r("proxy connections/s"; "conn/s"; $cps_n; $cps_k; "docker-proxy (Docker 20.10)"; "higher"; ">= 1.8x docker-proxy"; 1.8),
    r("NAT (no proxy) connections/s"; "conn/s"; $cps_a; $cps_k; "docker-proxy (Docker 20.10)"; "higher"; "informational"; null),
    r("memory per published port"; "KiB"; $mem_n; $mem_k; "docker-proxy (Docker 20.10), PSS"; "lower"; "at most 1/10 of docker-proxy"; 0.1)
  ] | map(select(.netd != null))'
