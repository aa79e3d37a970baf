//! `GET /explain`: answers the operator's "why" questions as JSON, for `netctl explain`.
//!
//! - `?network=N`: can `network rm N` succeed, and if not, which endpoints, sandboxes
//!   and containers (netd's runtime, Docker, CNI, or the processes in the namespace)
//!   hold it.
//! - `?port=[IP:]PORT[/PROTO]`: who holds a host port: the netd endpoint/sandbox that
//!   published it, and every host socket bound to it with its processes (from
//!   `/proc/net/*` and `/proc/*/fd`, read in the daemon, which runs as root).
//! - `?subnet=CIDR`: which netd networks, IPAM pools, default pools and host routes
//!   overlap it.
//!
//! The answers are built from a state snapshot; nothing here changes anything.

pub mod procnet;
pub mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::containers::Containers;
use crate::controller::{Controller, State as CtlState, HOST_NETNS};
use crate::error::{Error, Result};
use crate::model::SandboxRec;
pub use plugin_api::explain::*;
use routes::HostRoute;

/// The wire form of a process found in `/proc`.
fn wire_proc(p: procnet::ProcRef) -> ProcRef {
    ProcRef {
        pid: p.pid,
        command: p.command,
        cmdline: p.cmdline,
    }
}

#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    pub network: Option<String>,
    pub port: Option<String>,
    pub subnet: Option<String>,
}

struct Ctx {
    ctl: Arc<Controller>,
    containers: Arc<Containers>,
}

/// `GET /explain`, to merge into the API router.
pub fn router(ctl: Arc<Controller>, containers: Arc<Containers>) -> Router {
    Router::new()
        .route("/explain", get(explain))
        .with_state(Arc::new(Ctx { ctl, containers }))
}

async fn explain(
    State(c): State<Arc<Ctx>>,
    Query(q): Query<ExplainQuery>,
) -> Result<Json<Explanation>> {
    let given = [&q.network, &q.port, &q.subnet]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if given != 1 {
        return Err(Error::bad(
            "explain takes exactly one of ?network=NAME, ?port=[IP:]PORT[/PROTO], ?subnet=CIDR",
        ));
    }
    // Containers first: listing them takes the controller lock itself.
    let containers: BTreeMap<String, ContainerRef> = c
        .containers
        .list(true)
        .await
        .into_iter()
        .map(|x| {
            let key = x
                .sandbox
                .as_ref()
                .map(|s| s.id.clone())
                .unwrap_or(x.id.clone());
            (
                key,
                ContainerRef {
                    runtime: "netd".into(),
                    id: x.id,
                    name: Some(x.name),
                    state: Some(x.state),
                },
            )
        })
        .collect();
    let st = c.ctl.snapshot().await;
    // Reading /proc and running `ip` block: off the runtime.
    let e = tokio::task::spawn_blocking(move || build(&st, q, &containers))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    Ok(Json(e))
}

fn build(
    st: &CtlState,
    q: ExplainQuery,
    containers: &BTreeMap<String, ContainerRef>,
) -> Result<Explanation> {
    let sb = |s: &SandboxRec| sandbox_ref(s, containers, true);
    Ok(if let Some(n) = q.network {
        Explanation::Network(explain_network(st, &n, &sb)?)
    } else if let Some(p) = q.port {
        let (ip, port, proto) = parse_port_query(&p)?;
        Explanation::Port(explain_port(st, ip, port, &proto, &sb))
    } else {
        let s = q.subnet.unwrap_or_default();
        let subnet: IpNetwork = s
            .parse()
            .map_err(|e| Error::bad(format!("invalid subnet {s:?}: {e}")))?;
        let host = routes::host_routes(subnet.is_ipv6());
        Explanation::Subnet(explain_subnet(st, subnet, &host))
    })
}

/// Who a sandbox belongs to: netd's runtime (same id), Docker, CNI, or nobody known.
fn sandbox_ref(
    s: &SandboxRec,
    containers: &BTreeMap<String, ContainerRef>,
    with_procs: bool,
) -> SandboxRef {
    let container = containers
        .get(&s.id)
        .cloned()
        .or_else(|| match s.owner.as_str() {
            "docker" => Some(ContainerRef {
                runtime: "docker".into(),
                // Docker names the namespace after its sandbox id.
                id: s.name.clone(),
                name: None,
                state: None,
            }),
            "cni" => s.cni_container_id.as_ref().map(|c| ContainerRef {
                runtime: "cni".into(),
                id: c.clone(),
                name: None,
                state: None,
            }),
            _ => None,
        });
    let processes = if with_procs && s.netns_path != HOST_NETNS {
        procnet::procs_in_netns(&s.netns_path, 8)
            .into_iter()
            .map(wire_proc)
            .collect()
    } else {
        vec![]
    };
    SandboxRef {
        id: s.id.clone(),
        name: s.name.clone(),
        owner: s.owner.clone(),
        netns_path: s.netns_path.clone(),
        container,
        processes,
    }
}

pub fn explain_network(
    st: &CtlState,
    key: &str,
    sb: &dyn Fn(&SandboxRec) -> SandboxRef,
) -> Result<NetworkExplain> {
    let n = st.network(key)?;
    let mut reasons = Vec::new();
    let mut fixes = Vec::new();
    if n.is_predefined() {
        reasons.push(format!(
            "{} is a pre-defined network; netd never removes it",
            n.name
        ));
    }
    let eps = st.endpoints_of_network(&n.id);
    if !eps.is_empty() {
        reasons.push(format!("{} endpoint(s) are attached", eps.len()));
    }
    let mut endpoints = Vec::new();
    for e in eps {
        let sandbox = e
            .sandbox_id
            .as_ref()
            .and_then(|s| st.sandboxes.get(s))
            .map(sb);
        match &sandbox {
            Some(s) => match (&s.container, s.owner.as_str()) {
                (Some(c), _) if c.runtime == "netd" => fixes.push(format!(
                    "netctl rm -f {}",
                    c.name.as_deref().unwrap_or(&c.id)
                )),
                (Some(c), "docker") => fixes.push(format!(
                    "stop or disconnect the Docker container of sandbox {} (docker network disconnect ...)",
                    c.id
                )),
                (Some(c), "cni") => fixes.push(format!(
                    "delete the CNI container {} in its runtime (CNI DEL)",
                    c.id
                )),
                _ => fixes.push(format!("netctl network disconnect {} {}", n.name, s.name)),
            },
            None => fixes.push(format!(
                "endpoint {} has no sandbox; its owner ({}) must delete it",
                e.name, e.owner
            )),
        }
        endpoints.push(EndpointHolder {
            id: e.id.clone(),
            name: e.name.clone(),
            addresses: e.addresses.iter().map(|a| a.to_string()).collect(),
            sandbox,
        });
    }
    fixes.dedup();
    Ok(NetworkExplain {
        id: n.id.clone(),
        name: n.name.clone(),
        driver: n.driver.clone(),
        owner: n.owner.clone(),
        removable: reasons.is_empty(),
        reasons,
        endpoints,
        fixes,
    })
}

/// `8080`, `8080/udp`, `127.0.0.1:8080/tcp`, `[::1]:8080`.
pub fn parse_port_query(s: &str) -> Result<(Option<IpAddr>, u16, String)> {
    let bad = |why: &str| {
        Error::bad(format!(
            "invalid port {s:?}: {why} (expected [IP:]PORT[/tcp|udp])"
        ))
    };
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(bad("protocol must be tcp or udp"));
    }
    let (ip, port) = match rest.rsplit_once(':') {
        Some((ip, p)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            (
                Some(ip.parse::<IpAddr>().map_err(|_| bad("bad address"))?),
                p,
            )
        }
        None => (None, rest),
    };
    let port: u16 = port.parse().map_err(|_| bad("bad port number"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok((ip, port, proto))
}

/// Does a socket or binding on `have` serve an explain query for `want`?
fn ip_matches(want: Option<IpAddr>, have: IpAddr) -> bool {
    match want {
        None => true,
        Some(w) => have == w || have.is_unspecified() || w.is_unspecified(),
    }
}

pub fn explain_port(
    st: &CtlState,
    ip: Option<IpAddr>,
    port: u16,
    proto: &str,
    sb: &dyn Fn(&SandboxRec) -> SandboxRef,
) -> PortExplain {
    let mut published = Vec::new();
    for e in st.endpoints.values() {
        for b in &e.ports {
            if b.host_port != port || b.proto.to_string() != proto || !ip_matches(ip, b.host_ip) {
                continue;
            }
            let net = st.networks.get(&e.network_id);
            published.push(PortPublisher {
                proto: b.proto.to_string(),
                host_ip: b.host_ip.to_string(),
                host_port: b.host_port,
                container_ip: b.container_ip.to_string(),
                container_port: b.container_port,
                network_id: e.network_id.clone(),
                network_name: net.map(|n| n.name.clone()).unwrap_or_default(),
                endpoint_id: e.id.clone(),
                endpoint_name: e.name.clone(),
                sandbox: e
                    .sandbox_id
                    .as_ref()
                    .and_then(|s| st.sandboxes.get(s))
                    .map(sb),
            });
        }
    }
    let tcp = proto == "tcp";
    let socks: Vec<procnet::SockEntry> = procnet::host_sockets(proto)
        .into_iter()
        .filter(|s| s.local_port == port && ip_matches(ip, s.local_ip))
        // Bound or listening: accepted and outgoing connections are not "holders".
        .filter(|s| !tcp || s.state == procnet::TCP_LISTEN || s.state == procnet::TCP_CLOSE)
        .collect();
    let inodes: BTreeSet<u64> = socks.iter().map(|s| s.inode).filter(|i| *i != 0).collect();
    let owners = procnet::socket_owners(&inodes);
    let me = std::process::id();
    let sockets: Vec<HostSocket> = socks
        .into_iter()
        .map(|s| {
            let pids = owners.get(&s.inode).cloned().unwrap_or_default();
            HostSocket {
                proto: proto.to_string(),
                local_ip: s.local_ip.to_string(),
                local_port: s.local_port,
                state: procnet::state_name(tcp, s.state).to_string(),
                uid: s.uid,
                inode: s.inode,
                netd: pids.contains(&me),
                processes: pids
                    .into_iter()
                    .filter_map(procnet::proc_ref)
                    .map(wire_proc)
                    .collect(),
            }
        })
        .collect();
    PortExplain {
        port,
        proto: proto.to_string(),
        host_ip: ip.map(|i| i.to_string()),
        free: published.is_empty() && sockets.is_empty(),
        published,
        sockets,
    }
}

/// Bridge device of a netd bridge network (the driver's naming rule).
fn bridge_name(n: &crate::model::NetworkRec) -> Option<String> {
    if n.driver != "bridge" {
        return None;
    }
    Some(
        n.options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &n.id[..12.min(n.id.len())])),
    )
}

pub fn explain_subnet(st: &CtlState, subnet: IpNetwork, host: &[HostRoute]) -> SubnetExplain {
    use routes::overlaps;
    let mut networks = Vec::new();
    let mut pool_net: BTreeMap<String, String> = BTreeMap::new();
    for n in st.networks.values() {
        for s in &n.subnets {
            pool_net.insert(s.pool.to_string(), n.name.clone());
            if overlaps(&s.subnet, &subnet) {
                networks.push(NetworkOverlap {
                    id: n.id.clone(),
                    name: n.name.clone(),
                    driver: n.driver.clone(),
                    owner: n.owner.clone(),
                    subnet: s.subnet.to_string(),
                    endpoints: st.endpoints_of_network(&n.id).len(),
                });
            }
        }
    }
    let pools: Vec<PoolOverlap> = st
        .ipam
        .pools()
        .filter(|p| overlaps(&p.subnet, &subnet))
        .map(|p| PoolOverlap {
            id: p.id.to_string(),
            subnet: p.subnet.to_string(),
            allocated: p.allocated.to_string(),
            capacity: p.capacity.to_string(),
            network: pool_net.get(&p.id.to_string()).cloned(),
        })
        .collect();
    // Local space only: the global one serves multi-host drivers netd does not run.
    let default_pools: Vec<String> = st
        .ipam
        .default_pools(ipam::AddressSpace::Local)
        .iter()
        .filter(|d| overlaps(&d.base(), &subnet))
        .map(|d| d.to_string())
        .collect();
    let bridges: BTreeMap<String, String> = st
        .networks
        .values()
        .filter_map(|n| Some((bridge_name(n)?, n.name.clone())))
        .collect();
    let host_routes: Vec<RouteOverlap> = host
        .iter()
        .filter(|r| overlaps(&r.dst, &subnet))
        .map(|r| RouteOverlap {
            netd_network: r.dev.as_ref().and_then(|d| bridges.get(d)).cloned(),
            dst: r.dst.to_string(),
            dev: r.dev.clone(),
            kind: r.kind.clone(),
            table: r.table.clone(),
            protocol: r.protocol.clone(),
            gateway: r.gateway.map(|g| g.to_string()),
        })
        .collect();
    SubnetExplain {
        subnet: subnet.to_string(),
        free: networks.is_empty() && pools.is_empty() && host_routes.is_empty(),
        networks,
        pools,
        default_pools,
        host_routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_queries() {
        assert_eq!(
            parse_port_query("8080").unwrap(),
            (None, 8080, "tcp".into())
        );
        assert_eq!(
            parse_port_query("53/UDP").unwrap(),
            (None, 53, "udp".into())
        );
        assert_eq!(
            parse_port_query("127.0.0.1:80/tcp").unwrap(),
            (Some("127.0.0.1".parse().unwrap()), 80, "tcp".into())
        );
        assert_eq!(
            parse_port_query("[::1]:80").unwrap(),
            (Some("::1".parse().unwrap()), 80, "tcp".into())
        );
        assert!(parse_port_query("0").is_err());
        assert!(parse_port_query("70000").is_err());
        assert!(parse_port_query("80/sctpx").is_err());
        assert!(parse_port_query("x:80").is_err());
    }

    #[test]
    fn ip_matching() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(ip_matches(None, lo));
        assert!(ip_matches(Some(lo), any));
        assert!(ip_matches(Some(lo), lo));
        assert!(!ip_matches(Some(lo), other));
    }
}
