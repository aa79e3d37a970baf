//! The daemon side of `netd-cni`: `POST /cni` runs one CNI command (ADD, DEL, CHECK, GC,
//! STATUS) against the controller, so CNI runtimes (Podman, containerd, CRI-O) get netd's
//! networks, IPAM, embedded DNS and port publishing.
//!
//! Interface mode (`"type": "netd-cni"`): the config names a netd network (made on first
//! use from the config's subnet/bridge/options, owner `cni`); ADD adopts the runtime's
//! netns as a sandbox (owner `cni`, remembering the container id) and connects it with the
//! interface named `CNI_IFNAME`. A second interface of the same container joins the same
//! sandbox. DEL removes the endpoint (and the sandbox with its last endpoint); CHECK
//! compares the kernel with what netd recorded; GC drops attachments not in the valid list.
//!
//! IPAM mode (`"ipam": {"type": "netd-cni"}` in another plugin): addresses only, from
//! pools netd keeps for the CNI network (see `controller::cni_ipam`).
//!
//! Errors carry a CNI code ([`CniFailure`]); `api::cni` turns them into `ErrorBody`.
//! CHECK is in [`check`], IPAM mode in [`ipam`].

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use plugin_api::cni::{
    parse_call, Attachment, CniError, Dns, Interface, NetdSettings, Op, ParsedCall, Result100,
};
use plugin_api::rest;
use serde_json::{json, Value};

use crate::controller::{Controller, State};
use crate::error::{Error, Kind};
use crate::model::{EndpointRec, SandboxRec};

mod check;
mod ipam;

use check::check;
use ipam::{ipam_add, ipam_check, ipam_del, ipam_gc};

/// Owner of everything CNI makes.
pub const OWNER: &str = "cni";

/// A failed CNI call: the daemon error and the CNI code netd-cni prints.
#[derive(Debug)]
pub struct CniFailure {
    pub error: Error,
    pub code: u32,
}

type CniResult<T> = std::result::Result<T, CniFailure>;

impl CniFailure {
    fn new(kind: Kind, code: u32, msg: impl Into<String>) -> Self {
        CniFailure {
            error: Error {
                kind,
                message: msg.into(),
            },
            code,
        }
    }

    /// A state that diverges from what ADD made (CHECK), or an ADD refused as such.
    fn state(msg: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, CniError::INTERNAL, msg)
    }
}

impl From<CniError> for CniFailure {
    fn from(e: CniError) -> Self {
        let msg = if e.details.is_empty() {
            e.msg
        } else {
            format!("{} ({})", e.msg, e.details)
        };
        Self::new(Kind::BadRequest, e.code, msg)
    }
}

/// Controller errors: invalid input is a configuration error (7), transient unavailability
/// is 11, the rest (conflicts such as a host port in use, internal failures) 999.
fn ctl_err(context: &str) -> impl Fn(Error) -> CniFailure + '_ {
    move |e| {
        let code = match e.kind {
            Kind::BadRequest | Kind::NotFound => CniError::INVALID_CONFIG,
            Kind::Unavailable => CniError::TRY_AGAIN_LATER,
            Kind::Conflict | Kind::Internal => CniError::INTERNAL,
        };
        CniFailure {
            error: Error {
                kind: e.kind,
                message: format!("{context}: {}", e.message),
            },
            code,
        }
    }
}

/// Run one CNI call; Ok is the JSON to return with HTTP 200.
pub async fn handle(ctl: &Arc<Controller>, call: rest::CniCall) -> CniResult<Value> {
    let p = parse_call(&call)?;
    let r = match (&p.op, p.ipam_mode) {
        (
            Op::Add {
                container_id,
                ifname,
                netns,
            },
            false,
        ) => add(ctl, &p, container_id, ifname, netns).await,
        (
            Op::Add {
                container_id,
                ifname,
                ..
            },
            true,
        ) => ipam_add(ctl, &p, container_id, ifname).await,
        (
            Op::Del {
                container_id,
                ifname,
                ..
            },
            false,
        ) => del(ctl, container_id, ifname).await,
        (
            Op::Del {
                container_id,
                ifname,
                ..
            },
            true,
        ) => ipam_del(ctl, &p, container_id, ifname).await,
        (
            Op::Check {
                container_id,
                ifname,
                netns,
            },
            false,
        ) => check(ctl, &p, container_id, ifname, netns).await,
        (
            Op::Check {
                container_id,
                ifname,
                ..
            },
            true,
        ) => ipam_check(ctl, &p, container_id, ifname).await,
        (Op::Gc { valid_attachments }, false) => gc(ctl, &p, valid_attachments).await,
        (Op::Gc { valid_attachments }, true) => ipam_gc(ctl, &p, valid_attachments).await,
        (Op::Status, _) => Ok(json!({})),
    };
    if let Err(f) = &r {
        tracing::info!(command = %call.command, code = f.code, error = %f.error.message, "CNI call failed");
    }
    r
}

// ---------------------------------------------------------------- interface mode: ADD

/// The netd network the config names, created (owner `cni`) when it does not exist.
async fn ensure_network(ctl: &Controller, s: &NetdSettings) -> CniResult<rest::Network> {
    if let Some(n) = find_network(ctl, &s.network).await {
        return check_network(n, s);
    }
    let driver = s.driver.clone().unwrap_or_else(|| "bridge".into());
    if driver != "bridge" {
        return Err(CniError::unsupported_field(format!(
            "unsupported config field: driver {driver:?} (netd-cni creates bridge networks)"
        ))
        .into());
    }
    if s.is_gateway == Some(false) {
        return Err(CniError::unsupported_field(
            "unsupported config field: isGateway false (a netd bridge always holds the gateway)",
        )
        .into());
    }
    let mut options = s.options.clone();
    if let Some(b) = &s.bridge {
        options.insert(drivers::bridge::options::OPT_BRIDGE_NAME.into(), b.clone());
    }
    if let Some(m) = s.mtu {
        options.insert(drivers::bridge::options::OPT_MTU.into(), m.to_string());
    }
    if let Some(m) = s.ip_masq {
        options.insert(
            drivers::bridge::options::OPT_MASQUERADE.into(),
            m.to_string(),
        );
    }
    let mut ipam = Vec::new();
    for (sub, gw) in [(s.subnet, s.gateway), (s.subnet6, s.gateway6)] {
        if let Some(sub) = sub {
            ipam.push(rest::IpamConfig {
                subnet: Some(sub.to_string()),
                gateway: gw.map(|g| g.to_string()),
                ..Default::default()
            });
        }
    }
    let req = rest::NetworkCreate {
        name: s.network.clone(),
        driver: Some(driver),
        ipam,
        ipv6: s.ipv6,
        internal: s.internal,
        options,
        labels: [("netd.cni".to_string(), "true".to_string())].into(),
        owner: Some(OWNER.into()),
    };
    match ctl.create_network(req).await {
        Ok(n) => {
            tracing::info!(network = %n.name, "CNI network created on first use");
            Ok(n)
        }
        // Another ADD created it at the same moment.
        Err(e) if e.kind == Kind::Conflict => match find_network(ctl, &s.network).await {
            Some(n) => check_network(n, s),
            None => Err(ctl_err(&format!("creating network {}", s.network))(e)),
        },
        Err(e) => Err(ctl_err(&format!("creating network {}", s.network))(e)),
    }
}

async fn find_network(ctl: &Controller, name: &str) -> Option<rest::Network> {
    let id = {
        let st = ctl.state.lock().await;
        st.networks.values().find(|n| n.name == name)?.id.clone()
    };
    ctl.inspect_network(&id).await.ok()
}

/// An existing network must be what the config describes.
fn check_network(n: rest::Network, s: &NetdSettings) -> CniResult<rest::Network> {
    let bad = |m: String| -> CniResult<rest::Network> {
        Err(CniError::invalid_config(format!("invalid network config: {m}")).into())
    };
    if n.driver != "bridge" {
        return bad(format!(
            "netd network {} uses driver {}; netd-cni needs a bridge network",
            n.name, n.driver
        ));
    }
    for want in [s.subnet, s.subnet6].into_iter().flatten() {
        if !n.subnets.iter().any(|x| x.subnet == want) {
            let have: Vec<String> = n.subnets.iter().map(|x| x.subnet.to_string()).collect();
            return bad(format!(
                "netd network {} exists with subnets [{}], not {want}",
                n.name,
                have.join(", ")
            ));
        }
    }
    Ok(n)
}

/// The sandbox of a CNI container and the endpoint named `ifname` in it.
fn find_attachment<'a>(
    st: &'a State,
    container_id: &str,
    ifname: &str,
) -> (Option<&'a SandboxRec>, Option<&'a EndpointRec>) {
    let Some(sb) = st
        .sandboxes
        .values()
        .find(|s| s.owner == OWNER && s.cni_container_id.as_deref() == Some(container_id))
    else {
        return (None, None);
    };
    let ep = sb
        .endpoints
        .iter()
        .filter_map(|e| st.endpoints.get(e))
        .find(|e| e.ifname.as_deref() == Some(ifname));
    (Some(sb), ep)
}

fn dns_label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn sandbox_name(container_id: &str) -> String {
    format!("cni-{}", container_id.chars().take(120).collect::<String>())
}

async fn add(
    ctl: &Controller,
    p: &ParsedCall,
    container_id: &str,
    ifname: &str,
    netns: &str,
) -> CniResult<Value> {
    if !Path::new(netns).exists() {
        return Err(CniError::invalid_env(format!("CNI_NETNS {netns} does not exist")).into());
    }
    let net = ensure_network(ctl, &p.netd).await?;
    let (mut ip4, mut ip6) = (None, None);
    for ip in p.requested_ips() {
        let slot = if ip.is_ipv4() { &mut ip4 } else { &mut ip6 };
        if slot.replace(ip.to_string()).is_some() {
            return Err(CniError::invalid_config(
                "invalid network config: netd assigns one address per family, more were requested",
            )
            .into());
        }
    }
    let ports = p
        .conf
        .runtime_config
        .port_mappings
        .iter()
        .map(|m| rest::PortMapping {
            proto: m.protocol.clone(),
            host_ip: m.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            host_port: m.host_port,
            host_port_end: 0,
            container_port: m.container_port,
        })
        .collect();
    let aliases = p
        .args
        .k8s_pod_name
        .iter()
        .filter(|n| dns_label_ok(n))
        .cloned()
        .collect();
    let connect = rest::NetworkConnect {
        target: net.id.clone(),
        aliases,
        ip: ip4,
        ip6,
        mac: p.requested_mac().map(str::to_string),
        ports,
        ifname: Some(ifname.to_string()),
    };
    let existing = {
        let st = ctl.state.lock().await;
        match find_attachment(&st, container_id, ifname) {
            (_, Some(_)) => {
                return Err(CniFailure::state(format!(
                    "container {container_id} already has interface {ifname} (DEL it before adding it again)"
                )))
            }
            (Some(sb), None) if sb.netns_path != netns => {
                return Err(CniError::invalid_env(format!(
                    "container {container_id} is attached in netns {}, not CNI_NETNS {netns}",
                    sb.netns_path
                ))
                .into())
            }
            (Some(sb), None) => Some(sb.id.clone()),
            (None, None) => None,
        }
    };
    let ctx = format!("attaching container {container_id} to network {}", net.name);
    match existing {
        Some(sid) => {
            let opts =
                crate::controller::ConnectOpts::from_rest(&connect).map_err(ctl_err(&ctx))?;
            ctl.connect(&net.id, &sid, opts)
                .await
                .map_err(ctl_err(&ctx))?;
        }
        None => {
            let dns = runtime_upstreams(p);
            let req = rest::SandboxCreate {
                name: Some(sandbox_name(container_id)),
                netns_path: Some(netns.to_string()),
                hostname: None,
                dns,
                networks: vec![connect],
            };
            ctl.create_sandbox_owned(req, OWNER, Some(container_id.to_string()))
                .await
                .map_err(ctl_err(&ctx))?;
        }
    }
    let st = ctl.state.lock().await;
    let (Some(sb), Some(ep)) = find_attachment(&st, container_id, ifname) else {
        return Err(CniFailure::state(format!(
            "container {container_id} vanished while being attached"
        )));
    };
    let mut r = Result100::new();
    if let Some(h) = &ep.host_ifname {
        r.add_interface(Interface::host(h, read_host_mac(h)));
    }
    let idx = r.add_interface(Interface::container(
        ifname,
        ep.mac.clone().unwrap_or_default(),
        netns,
    ));
    let netrec = &st.networks[&ep.network_id];
    let gw_of = |a: &IpNetwork| {
        netrec
            .subnets
            .iter()
            .find(|s| s.subnet.contains(a.ip()))
            .and_then(|s| s.gateway)
    };
    for a in &ep.addresses {
        r = r.ip(*a, gw_of(a), Some(idx));
    }
    // The default route goes through the sandbox's first endpoint with a gateway (per
    // family): report it only on that interface's result.
    let first_gw = |v6: bool| {
        sb.endpoints
            .iter()
            .filter_map(|e| st.endpoints.get(e))
            .find(|e| {
                if v6 {
                    e.gateway6.is_some()
                } else {
                    e.gateway4.is_some()
                }
            })
            .is_some_and(|e| e.id == ep.id)
    };
    if let Some(g) = ep.gateway4.filter(|_| first_gw(false)) {
        r = r.route("0.0.0.0/0".parse().expect("literal"), Some(g));
    }
    if let Some(g) = ep.gateway6.filter(|_| first_gw(true)) {
        r = r.route("::/0".parse().expect("literal"), Some(g));
    }
    let embedded = ctl.dns().is_some() && crate::dns::wants_dns(&st, sb);
    r = r.dns(result_dns(p, embedded));
    Ok(serde_json::to_value(&r).expect("results serialize"))
}

/// Upstream servers for the embedded resolver: the `dns` capability, else the config's.
fn runtime_upstreams(p: &ParsedCall) -> Vec<String> {
    let from_rc = p
        .conf
        .runtime_config
        .dns
        .as_ref()
        .map(|d| d.servers.clone());
    let from_conf = p.conf.dns.as_ref().map(|d| d.nameservers.clone());
    from_rc
        .filter(|v| !v.is_empty())
        .or(from_conf)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.parse::<IpAddr>().is_ok() && s != crate::dns::DNS_ADDR)
        .collect()
}

/// The result's `dns`: 127.0.0.11 when the embedded resolver serves the sandbox, else the
/// config's/runtime's servers; search and options from the runtime, else the config.
fn result_dns(p: &ParsedCall, embedded: bool) -> Dns {
    let rc = p.conf.runtime_config.dns.clone().unwrap_or_default();
    let conf = p.conf.dns.clone().unwrap_or_default();
    let nameservers = if embedded {
        vec![crate::dns::DNS_ADDR.to_string()]
    } else if !rc.servers.is_empty() {
        rc.servers.clone()
    } else {
        conf.nameservers.clone()
    };
    Dns {
        nameservers,
        domain: conf.domain.clone(),
        search: if rc.searches.is_empty() {
            conf.search
        } else {
            rc.searches
        },
        options: if rc.options.is_empty() {
            conf.options
        } else {
            rc.options
        },
    }
}

fn read_host_mac(ifname: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- interface mode: DEL, GC

/// Remove one attachment; false when there was none. The sandbox goes with its last endpoint.
async fn detach(ctl: &Controller, container_id: &str, ifname: &str) -> Result<bool, Error> {
    let (sid, net_id, last) = {
        let st = ctl.state.lock().await;
        match find_attachment(&st, container_id, ifname) {
            (Some(sb), Some(ep)) => (
                sb.id.clone(),
                ep.network_id.clone(),
                sb.endpoints.len() == 1,
            ),
            // A sandbox left without endpoints (a failed ADD's leftovers) goes too.
            (Some(sb), None) if sb.endpoints.is_empty() => (sb.id.clone(), String::new(), true),
            _ => return Ok(false),
        }
    };
    if net_id.is_empty() {
        ctl.delete_sandbox(&sid).await?;
        return Ok(false);
    }
    if last {
        ctl.delete_sandbox(&sid).await?;
    } else {
        ctl.disconnect(&net_id, &sid).await?;
    }
    Ok(true)
}

async fn del(ctl: &Controller, container_id: &str, ifname: &str) -> CniResult<Value> {
    match detach(ctl, container_id, ifname).await {
        Ok(_) => Ok(json!({})),
        Err(e) => {
            // Best effort: if the record is gone, what failed was kernel cleanup of
            // something that no longer exists (netns deleted): DEL has succeeded.
            let st = ctl.state.lock().await;
            if find_attachment(&st, container_id, ifname).1.is_none() {
                tracing::warn!(container = %container_id, error = %e.message, "CNI DEL: cleanup incomplete");
                Ok(json!({}))
            } else {
                Err(ctl_err(&format!(
                    "detaching container {container_id} ({ifname})"
                ))(e))
            }
        }
    }
}

async fn gc(ctl: &Controller, p: &ParsedCall, valid: &[Attachment]) -> CniResult<Value> {
    let valid: BTreeSet<(&str, &str)> = valid
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();
    let stale: Vec<(String, String)> = {
        let st = ctl.state.lock().await;
        let Some(net) = st.networks.values().find(|n| n.name == p.netd.network) else {
            return Ok(json!({}));
        };
        st.sandboxes
            .values()
            .filter(|s| s.owner == OWNER)
            .filter_map(|s| Some((s, s.cni_container_id.as_deref()?)))
            .flat_map(|(s, cid)| {
                s.endpoints
                    .iter()
                    .filter_map(|e| st.endpoints.get(e))
                    .filter(|e| e.network_id == net.id)
                    .filter_map(move |e| Some((cid, e.ifname.as_deref()?)))
            })
            .filter(|a| !valid.contains(a))
            .map(|(c, i)| (c.to_string(), i.to_string()))
            .collect()
    };
    let mut errors = Vec::new();
    for (cid, ifn) in &stale {
        match detach(ctl, cid, ifn).await {
            Ok(_) => tracing::info!(container = %cid, ifname = %ifn, "CNI GC released attachment"),
            Err(e) => errors.push(format!("{cid}/{ifn}: {}", e.message)),
        }
    }
    if errors.is_empty() {
        Ok(json!({}))
    } else {
        Err(CniFailure::new(
            Kind::Internal,
            CniError::INTERNAL,
            format!("GC could not release: {}", errors.join("; ")),
        ))
    }
}
