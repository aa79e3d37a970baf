//! Prometheus metrics of netd: API operation counts and latencies (recorded by a
//! middleware on every router), embedded DNS queries and cache hits, userland proxy
//! connections and bytes, and IPAM pool usage. The live figures (DNS, proxy, IPAM,
//! object counts) are read at scrape time from their owners, so nothing is counted twice.
//!
//! Served at `GET /metrics` on netd's unix socket ([`Metrics::router`], merged into the
//! API) and, opt-in, on a TCP address that serves nothing else ([`Metrics::serve_tcp`]).
//!
//! Wiring (in `main.rs`): `let m = Metrics::new(ctl.clone());`, then
//! `m.instrument("api", app.merge(m.router()))` and `m.instrument("docker", plugin_app)`.

pub mod expo;
pub mod layer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::controller::Controller;
use expo::{Histogram, Type, Writer};

/// (router, operation, method, route, status)
type CountKey = (&'static str, String, String, String, u16);

#[derive(Default)]
struct Ops {
    counts: BTreeMap<CountKey, u64>,
    /// Per (router, operation).
    latency: BTreeMap<(&'static str, String), Histogram>,
}

/// The metrics registry of one daemon.
pub struct Metrics {
    ctl: Arc<Controller>,
    ops: Mutex<Ops>,
}

impl Metrics {
    pub fn new(ctl: Arc<Controller>) -> Arc<Self> {
        Arc::new(Metrics {
            ctl,
            ops: Mutex::new(Ops::default()),
        })
    }

    /// Wrap every route of `r` (and its fallback) in the timing/counting/span
    /// middleware. `name` becomes the `router` label: `api` or `docker`.
    pub fn instrument(self: &Arc<Self>, name: &'static str, r: Router) -> Router {
        r.layer(axum::middleware::from_fn_with_state(
            (self.clone(), name),
            layer::track,
        ))
    }

    /// `GET /metrics`, to merge into a router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(self.clone())
    }

    /// Serve `GET /metrics` (and nothing else) on a TCP address. Returns the bound
    /// address (useful with port 0) and the serving task.
    pub async fn serve_tcp(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let l = tokio::net::TcpListener::bind(addr).await?;
        let local = l.local_addr()?;
        let app = self.router();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
        tracing::info!(addr = %local, "Prometheus metrics on TCP");
        Ok((local, task))
    }

    /// Count one finished request.
    pub fn record(
        &self,
        router: &'static str,
        op: &str,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let mut o = self.ops.lock().unwrap();
        *o.counts
            .entry((
                router,
                op.to_string(),
                method.to_string(),
                route.to_string(),
                status,
            ))
            .or_default() += 1;
        o.latency
            .entry((router, op.to_string()))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// The whole exposition document.
    pub async fn render(&self) -> String {
        let mut w = Writer::new();
        w.family("netd_build_info", Type::Gauge, "netd's version.");
        w.int(
            "netd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        self.render_ops(&mut w);
        self.render_state(&mut w).await;
        self.render_dns(&mut w);
        self.render_proxy(&mut w);
        w.finish()
    }

    fn render_ops(&self, w: &mut Writer) {
        let (counts, latency) = {
            let o = self.ops.lock().unwrap();
            (o.counts.clone(), o.latency.clone())
        };
        w.family(
            "netd_api_requests_total",
            Type::Counter,
            "API requests handled, by router, operation, method, route and HTTP status.",
        );
        for ((router, op, method, route, status), n) in &counts {
            let status = status.to_string();
            w.int(
                "netd_api_requests_total",
                &[
                    ("router", router),
                    ("operation", op),
                    ("method", method),
                    ("route", route),
                    ("status", &status),
                ],
                *n,
            );
        }
        w.family(
            "netd_api_request_duration_seconds",
            Type::Histogram,
            "Time to answer an API request, by router and operation.",
        );
        for ((router, op), h) in &latency {
            w.histogram(
                "netd_api_request_duration_seconds",
                &[("router", router), ("operation", op)],
                h,
            );
        }
    }

    async fn render_state(&self, w: &mut Writer) {
        // Read under the lock without cloning the whole state.
        let (nets, eps, sbs, ports, pools) = {
            let st = self.ctl.state.lock().await;
            let ports: usize = st.endpoints.values().map(|e| e.ports.len()).sum();
            let pools: Vec<ipam::PoolInfo> = st.ipam.pools().collect();
            (
                st.networks.len(),
                st.endpoints.len(),
                st.sandboxes.len(),
                ports,
                pools,
            )
        };
        for (name, help, v) in [
            ("netd_networks", "Networks netd knows.", nets),
            ("netd_endpoints", "Endpoints netd knows.", eps),
            ("netd_sandboxes", "Sandboxes netd knows.", sbs),
            ("netd_published_ports", "Published host ports.", ports),
        ] {
            w.family(name, Type::Gauge, help);
            w.int(name, &[], v as u64);
        }
        w.family(
            "netd_ipam_pool_allocated_addresses",
            Type::Gauge,
            "Addresses handed out from an IPAM pool (reserved ones not counted).",
        );
        let labels: Vec<(String, String, String)> = pools
            .iter()
            .map(|p| (p.id.to_string(), p.space.to_string(), p.subnet.to_string()))
            .collect();
        for (p, (id, space, subnet)) in pools.iter().zip(&labels) {
            w.float(
                "netd_ipam_pool_allocated_addresses",
                &[("pool", id), ("space", space), ("subnet", subnet)],
                p.allocated as f64,
            );
        }
        w.family(
            "netd_ipam_pool_capacity_addresses",
            Type::Gauge,
            "Addresses an IPAM pool can hand out in total.",
        );
        for (p, (id, space, subnet)) in pools.iter().zip(&labels) {
            w.float(
                "netd_ipam_pool_capacity_addresses",
                &[("pool", id), ("space", space), ("subnet", subnet)],
                p.capacity as f64,
            );
        }
    }

    fn render_dns(&self, w: &mut Writer) {
        let dns = self.ctl.dns();
        w.family(
            "netd_dns_enabled",
            Type::Gauge,
            "1 when the embedded DNS is on.",
        );
        w.int("netd_dns_enabled", &[], dns.is_some() as u64);
        let Some(d) = dns else { return };
        let s = d.resolver.stats();
        for (name, help, v) in [
            (
                "netd_dns_queries_total",
                "DNS queries received (all sandboxes).",
                s.queries,
            ),
            (
                "netd_dns_cache_hits_total",
                "DNS queries answered from the cache.",
                s.cache_hits,
            ),
            (
                "netd_dns_local_answers_total",
                "DNS queries answered from netd's name table.",
                s.local_answers,
            ),
            (
                "netd_dns_forwarded_total",
                "DNS queries forwarded upstream.",
                s.forwarded,
            ),
            ("netd_dns_servfail_total", "SERVFAIL answers.", s.servfail),
            ("netd_dns_formerr_total", "FORMERR answers.", s.formerr),
            (
                "netd_dns_dropped_total",
                "DNS packets dropped unanswered.",
                s.dropped,
            ),
            (
                "netd_dns_truncated_total",
                "UDP answers sent truncated.",
                s.truncated,
            ),
        ] {
            w.family(name, Type::Counter, help);
            w.int(name, &[], v);
        }
        w.family(
            "netd_dns_cache_entries",
            Type::Gauge,
            "Entries in the DNS answer cache.",
        );
        w.int("netd_dns_cache_entries", &[], d.resolver.cache_len() as u64);
    }

    fn render_proxy(&self, w: &mut Writer) {
        let stats = self.ctl.proxy_stats();
        w.family(
            "netd_proxy_enabled",
            Type::Gauge,
            "1 when published ports are served by the userland proxy.",
        );
        w.int("netd_proxy_enabled", &[], stats.is_some() as u64);
        let Some(s) = stats else { return };
        for (name, ty, help, v) in [
            (
                "netd_proxy_tcp_connections_total",
                Type::Counter,
                "TCP clients accepted by the userland proxy.",
                s.tcp_connections_total,
            ),
            (
                "netd_proxy_tcp_connections_active",
                Type::Gauge,
                "TCP clients being relayed now.",
                s.tcp_connections_active,
            ),
            (
                "netd_proxy_tcp_connect_failures_total",
                Type::Counter,
                "Dials to a container that failed.",
                s.tcp_connect_failures,
            ),
            (
                "netd_proxy_udp_flows_total",
                Type::Counter,
                "UDP flows created.",
                s.udp_flows_total,
            ),
            (
                "netd_proxy_udp_flows_active",
                Type::Gauge,
                "UDP flows open now.",
                s.udp_flows_active,
            ),
            (
                "netd_proxy_udp_flows_evicted_total",
                Type::Counter,
                "UDP flows closed early because the flow table was full.",
                s.udp_flows_evicted,
            ),
            (
                "netd_proxy_udp_flows_refused_total",
                Type::Counter,
                "New UDP clients refused because the flow table was full.",
                s.udp_flows_refused,
            ),
            (
                "netd_proxy_udp_datagrams_dropped_total",
                Type::Counter,
                "UDP datagrams dropped.",
                s.udp_datagrams_dropped,
            ),
        ] {
            w.family(name, ty, help);
            w.int(name, &[], v);
        }
        w.family(
            "netd_proxy_bytes_total",
            Type::Counter,
            "Payload bytes relayed by the userland proxy (TCP and UDP).",
        );
        w.int(
            "netd_proxy_bytes_total",
            &[("direction", "to_container")],
            s.bytes_to_target,
        );
        w.int(
            "netd_proxy_bytes_total",
            &[("direction", "from_container")],
            s.bytes_from_target,
        );
        w.family(
            "netd_proxy_udp_datagrams_total",
            Type::Counter,
            "UDP datagrams relayed by the userland proxy.",
        );
        w.int(
            "netd_proxy_udp_datagrams_total",
            &[("direction", "to_container")],
            s.udp_datagrams_to_target,
        );
        w.int(
            "netd_proxy_udp_datagrams_total",
            &[("direction", "from_container")],
            s.udp_datagrams_from_target,
        );
    }
}

async fn scrape(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, expo::CONTENT_TYPE)],
        m.render().await,
    )
}
