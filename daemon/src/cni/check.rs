//! CNI CHECK in interface mode: compares the kernel (host-side veth on its bridge, the
//! container interface, its addresses and default route, the previous result's addresses
//! and routes) with what netd recorded for the attachment.

use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;
use plugin_api::cni::{CniError, ParsedCall};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ctl_err, find_attachment, CniFailure, CniResult};
use crate::controller::Controller;
use crate::error::Kind;

#[derive(Deserialize)]
struct KIface {
    name: String,
    mac: Option<String>,
    up: bool,
    addresses: Vec<IpNetwork>,
}

#[derive(Deserialize)]
struct KRoute {
    destination: IpNetwork,
    gateway: Option<IpAddr>,
    dev: Option<String>,
}

#[derive(Deserialize)]
struct KView {
    interfaces: Vec<KIface>,
    routes: Vec<KRoute>,
}

pub(super) async fn check(
    ctl: &Controller,
    p: &ParsedCall,
    container_id: &str,
    ifname: &str,
    netns: &str,
) -> CniResult<Value> {
    let (sb, ep, bridge, gw_owner) = {
        let st = ctl.state.lock().await;
        let (Some(sb), Some(ep)) = find_attachment(&st, container_id, ifname) else {
            return Err(CniFailure::new(
                Kind::NotFound,
                CniError::UNKNOWN_CONTAINER,
                format!(
                    "netd has no attachment of container {container_id} with interface {ifname}"
                ),
            ));
        };
        let net = &st.networks[&ep.network_id];
        let bridge = net
            .options
            .get(drivers::bridge::options::OPT_BRIDGE_NAME)
            .cloned()
            .unwrap_or_else(|| drivers::bridge::options::default_bridge_name(&net.id));
        // The endpoint giving the default route (first in join order with a gateway).
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
                .map(|e| e.id.clone())
        };
        let gw_owner = (first_gw(false), first_gw(true));
        (sb.clone(), ep.clone(), bridge, gw_owner)
    };
    let fail = |m: String| {
        Err(CniFailure::state(format!(
            "CHECK {container_id}/{ifname}: {m}"
        )))
    };
    if sb.netns_path != netns {
        return fail(format!(
            "attached in netns {}, but CNI_NETNS is {netns}",
            sb.netns_path
        ));
    }
    if let Some(h) = &ep.host_ifname {
        let sys = Path::new("/sys/class/net").join(h);
        if !sys.exists() {
            return fail(format!("host-side veth {h} is missing"));
        }
        let master = std::fs::read_link(sys.join("master"))
            .ok()
            .and_then(|m| m.file_name().map(|f| f.to_string_lossy().into_owned()));
        if master.as_deref() != Some(bridge.as_str()) {
            return fail(format!(
                "host-side veth {h} is attached to {} instead of bridge {bridge}",
                master.as_deref().unwrap_or("nothing")
            ));
        }
    }
    let view = ctl
        .inspect_sandbox(&sb.id, true)
        .await
        .map_err(ctl_err("CHECK"))?;
    let k = view.kernel.unwrap_or(Value::Null);
    if let Some(e) = k.get("error") {
        return fail(format!(
            "cannot read netns {netns}: {}",
            e.as_str().unwrap_or("")
        ));
    }
    let k: KView = serde_json::from_value(k).map_err(|e| {
        CniFailure::new(
            Kind::Internal,
            CniError::INTERNAL,
            format!("kernel view: {e}"),
        )
    })?;
    let Some(iface) = k.interfaces.iter().find(|i| i.name == ifname) else {
        return fail(format!("interface {ifname} is missing in {netns}"));
    };
    if !iface.up {
        return fail(format!("interface {ifname} is down"));
    }
    if let (Some(want), Some(have)) = (&ep.mac, &iface.mac) {
        if !want.eq_ignore_ascii_case(have) {
            return fail(format!(
                "interface {ifname} has MAC {have}, netd gave it {want}"
            ));
        }
    }
    let mut want_addrs: Vec<IpNetwork> = ep.addresses.clone();
    // Addresses of the previous result for this interface must be there too.
    if let Some(prev) = &p.prev_result {
        for ip in &prev.ips {
            let ours = ip
                .interface
                .and_then(|i| prev.interfaces.get(i))
                .is_some_and(|i| i.name == ifname && i.sandbox == netns);
            if ours && !want_addrs.contains(&ip.address) {
                want_addrs.push(ip.address);
            }
        }
    }
    for a in &want_addrs {
        if !iface.addresses.contains(a) {
            return fail(format!("address {a} is missing on {ifname}"));
        }
    }
    for (v6, gw, owner) in [
        (false, ep.gateway4, &gw_owner.0),
        (true, ep.gateway6, &gw_owner.1),
    ] {
        let Some(gw) = gw else { continue };
        if owner.as_deref() != Some(ep.id.as_str()) {
            continue;
        }
        let ok = k.routes.iter().any(|r| {
            r.destination.prefix() == 0
                && r.destination.is_ipv6() == v6
                && r.gateway == Some(gw)
                && r.dev.as_deref() == Some(ifname)
        });
        if !ok {
            return fail(format!("default route via {gw} dev {ifname} is missing"));
        }
    }
    // Routes of the previous result through this interface's gateway.
    if let Some(prev) = &p.prev_result {
        for r in prev.routes.iter().filter(|r| r.gw.is_some()) {
            let ours = [ep.gateway4, ep.gateway6].contains(&r.gw);
            if ours
                && !k
                    .routes
                    .iter()
                    .any(|kr| kr.destination == r.dst && kr.gateway == r.gw)
            {
                return fail(format!(
                    "route {} via {} is missing",
                    r.dst,
                    r.gw.expect("filtered")
                ));
            }
        }
    }
    Ok(json!({}))
}
