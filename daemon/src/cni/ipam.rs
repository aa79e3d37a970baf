//! CNI IPAM mode (`"ipam": {"type": "netd-cni"}` inside another plugin): addresses from
//! pools netd keeps per CNI network (`controller::cni_ipam`), routes and DNS; no interface.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use plugin_api::cni::{Attachment, CniError, NetdSettings, ParsedCall, Result100, Route};
use serde_json::{json, Value};

use super::{ctl_err, CniFailure, CniResult};
use crate::controller::cni_ipam::{CniIpamPools, CniLease};
use crate::controller::Controller;

fn ipam_pools(s: &NetdSettings) -> CniIpamPools {
    CniIpamPools {
        subnet: s.subnet,
        gateway: s.gateway,
        subnet6: s.subnet6,
        gateway6: s.gateway6,
        ipv6: s.ipv6,
    }
}

/// `ipam.routes` (list of `{dst, gw}`) if present, else a default route per family.
fn ipam_routes(p: &ParsedCall, leases: &[CniLease]) -> CniResult<Vec<Route>> {
    let Some(list) = p.conf.ipam.as_ref().and_then(|i| i.get("routes")) else {
        return Ok(leases
            .iter()
            .filter_map(|l| {
                let dst = if l.address.is_ipv4() {
                    "0.0.0.0/0"
                } else {
                    "::/0"
                };
                Some(Route::new(dst.parse().ok()?, Some(l.gateway?)))
            })
            .collect());
    };
    let bad = |m: String| {
        CniFailure::from(CniError::invalid_config(format!(
            "invalid network config: ipam.routes: {m}"
        )))
    };
    let arr = list
        .as_array()
        .ok_or_else(|| bad(format!("must be a list, got {list}")))?;
    arr.iter()
        .map(|r| {
            let dst = r
                .get("dst")
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<IpNetwork>().ok())
                .ok_or_else(|| bad(format!("entry {r} needs a `dst` CIDR")))?;
            let gw = match r.get("gw").and_then(Value::as_str) {
                None | Some("") => None,
                Some(g) => Some(
                    g.parse::<IpAddr>()
                        .map_err(|_| bad(format!("bad gw in {r}")))?,
                ),
            };
            Ok(Route::new(dst, gw))
        })
        .collect()
}

pub(super) async fn ipam_add(
    ctl: &Controller,
    p: &ParsedCall,
    container_id: &str,
    ifname: &str,
) -> CniResult<Value> {
    let leases = ctl
        .cni_ipam_add(
            &p.netd.network,
            ipam_pools(&p.netd),
            container_id,
            ifname,
            p.requested_ips().to_vec(),
        )
        .await
        .map_err(ctl_err(&format!(
            "allocating addresses on {}",
            p.netd.network
        )))?;
    let mut r = Result100::new();
    r.routes = ipam_routes(p, &leases)?;
    for l in &leases {
        r = r.ip(l.address, l.gateway, None);
    }
    if let Some(d) = &p.conf.dns {
        r = r.dns(d.clone());
    }
    Ok(serde_json::to_value(&r).expect("results serialize"))
}

pub(super) async fn ipam_del(
    ctl: &Controller,
    p: &ParsedCall,
    container_id: &str,
    ifname: &str,
) -> CniResult<Value> {
    ctl.cni_ipam_del(&p.netd.network, container_id, ifname)
        .await
        .map_err(ctl_err(&format!(
            "releasing addresses on {}",
            p.netd.network
        )))?;
    Ok(json!({}))
}

pub(super) async fn ipam_check(
    ctl: &Controller,
    p: &ParsedCall,
    container_id: &str,
    ifname: &str,
) -> CniResult<Value> {
    let held = ctl
        .cni_ipam_get(&p.netd.network, container_id, ifname)
        .await
        .map_err(ctl_err("CHECK"))?;
    let Some(held) = held else {
        return Err(CniFailure::state(format!(
            "CHECK {container_id}/{ifname}: netd holds no addresses for it on {}",
            p.netd.network
        )));
    };
    if let Some(prev) = &p.prev_result {
        for ip in &prev.ips {
            let in_our_pool = held.iter().any(|h| {
                h.address.network() == ip.address.network()
                    && h.address.prefix() == ip.address.prefix()
            });
            if in_our_pool && !held.iter().any(|h| h.address.ip() == ip.address.ip()) {
                return Err(CniFailure::state(format!(
                    "CHECK {container_id}/{ifname}: {} is in the result but netd does not hold it",
                    ip.address
                )));
            }
        }
    }
    Ok(json!({}))
}

pub(super) async fn ipam_gc(
    ctl: &Controller,
    p: &ParsedCall,
    valid: &[Attachment],
) -> CniResult<Value> {
    let valid = valid
        .iter()
        .map(|a| (a.container_id.clone(), a.ifname.clone()))
        .collect();
    let gone = ctl
        .cni_ipam_gc(&p.netd.network, valid)
        .await
        .map_err(ctl_err(&format!("GC on {}", p.netd.network)))?;
    for (c, i) in gone {
        tracing::info!(container = %c, ifname = %i, "CNI IPAM GC released addresses");
    }
    Ok(json!({}))
}
