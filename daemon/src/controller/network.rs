//! Network operations: create, list, inspect, delete.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use plugin_api::rest;

use super::{check_name, is_predefined, new_id, Controller, State, Txn};
use crate::error::{Error, Result};
use crate::model::{NetworkRec, SubnetRec};

fn parse_cidr(what: &str, s: &str) -> Result<IpNetwork> {
    let n: IpNetwork = s
        .parse()
        .map_err(|e| Error::bad(format!("invalid {what} {s:?}: {e}")))?;
    // Docker refuses host bits in a subnet ("10.0.0.1/24"): be as strict.
    if n.network() != n.ip() {
        return Err(Error::bad(format!(
            "invalid {what} {s:?}: host bits set (did you mean {}/{}?)",
            n.network(),
            n.prefix()
        )));
    }
    Ok(n)
}

fn parse_ip(what: &str, s: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|e| Error::bad(format!("invalid {what} {s:?}: {e}")))
}

/// Docker's `--subnet/--ip-range/--gateway/--aux-address` turned into an IPAM request.
pub(crate) fn pool_request(cfg: &rest::IpamConfig, v6_default: bool) -> Result<ipam::PoolRequest> {
    let subnet = cfg
        .subnet
        .as_deref()
        .map(|s| parse_cidr("subnet", s))
        .transpose()?;
    let ip_range = cfg
        .ip_range
        .as_deref()
        .map(|s| parse_cidr("ip-range", s))
        .transpose()?;
    let gateway = cfg
        .gateway
        .as_deref()
        .map(|s| parse_ip("gateway", s))
        .transpose()?;
    let mut aux = BTreeMap::new();
    for (k, v) in &cfg.aux_addresses {
        aux.insert(k.clone(), parse_ip("aux-address", v)?);
    }
    if subnet.is_none() && (ip_range.is_some() || gateway.is_some() || !aux.is_empty()) {
        return Err(Error::bad(
            "ip-range, gateway and aux-address need an explicit subnet",
        ));
    }
    let v6 = subnet.map(|s| s.is_ipv6()).unwrap_or(v6_default);
    Ok(ipam::PoolRequest {
        space: ipam::AddressSpace::Local,
        subnet,
        ip_range,
        gateway,
        aux_addresses: aux,
        v6,
        auto_gateway: true,
    })
}

pub(crate) fn ipam_err(e: ipam::IpamError) -> Error {
    use ipam::IpamError as E;
    match e {
        E::UnknownPool { .. } => Error::not_found(e.to_string()),
        E::PoolOverlap { .. }
        | E::AddressInUse { .. }
        | E::PoolInUse { .. }
        | E::Exhausted { .. }
        | E::NoFreePool { .. } => Error::conflict(e.to_string()),
        _ => Error::bad(e.to_string()),
    }
}

impl Controller {
    pub async fn create_network(&self, req: rest::NetworkCreate) -> Result<rest::Network> {
        check_name("network", &req.name)?;
        let driver_name = req.driver.clone().unwrap_or_else(|| "bridge".to_string());
        let driver = self.driver(&driver_name)?;
        let driver_name = driver.name().to_string();
        let owner = req.owner.clone().unwrap_or_else(|| "netd".to_string());
        if !matches!(owner.as_str(), "netd" | "docker" | "cni") {
            return Err(Error::bad(format!("unknown owner {owner:?}")));
        }
        // Parse everything before touching any state.
        let mut requests = Vec::new();
        for c in &req.ipam {
            requests.push(pool_request(c, false)?);
        }
        if requests.iter().any(|r| r.v6) && !req.ipv6 {
            return Err(Error::bad("an IPv6 subnet needs --ipv6"));
        }
        let rec = self
            .with_state(|st, ctl| {
                Box::pin(async move {
                    if st.networks.values().any(|n| n.name == req.name) {
                        return Err(Error::conflict(format!(
                            "network with name {} already exists",
                            req.name
                        )));
                    }
                    if is_predefined(&req.name) && owner != "netd" {
                        return Err(Error::conflict(format!(
                            "{} is a pre-defined network name",
                            req.name
                        )));
                    }
                    let mut subnets = Vec::new();
                    if driver.needs_ipam() {
                        if !requests.iter().any(|r| !r.v6) {
                            requests.push(pool_request(&Default::default(), false)?);
                        }
                        if req.ipv6 && !requests.iter().any(|r| r.v6) {
                            requests.push(pool_request(&Default::default(), true)?);
                        }
                        // Like dockerd: a default subnet never overlaps a route the host
                        // already has (docker0's 172.17.0.0/16, a VPN, the LAN).
                        let host_routes = ctl.host_routes().await;
                        for r in requests {
                            let id = if r.subnet.is_none() {
                                pick_default_pool(&mut st.ipam, &r, &host_routes)?
                            } else {
                                st.ipam.request_pool(&r).map_err(ipam_err)?
                            };
                            let info = st.ipam.pool_info(&id).map_err(ipam_err)?;
                            subnets.push(SubnetRec {
                                pool: id,
                                subnet: info.subnet,
                                ip_range: info.ip_range,
                                gateway: info.gateway,
                                aux: info.aux_addresses.clone(),
                            });
                        }
                    } else if !requests.is_empty() {
                        return Err(Error::bad(format!(
                            "driver {} does not use IPAM: no subnets allowed",
                            driver.name()
                        )));
                    }
                    let rec = NetworkRec {
                        id: new_id(),
                        name: req.name.clone(),
                        driver: driver_name,
                        subnets,
                        ipv6: req.ipv6,
                        internal: req.internal,
                        options: req.options.clone(),
                        labels: req.labels.clone(),
                        owner,
                        created: now_rfc3339(),
                        external_ipam: false,
                    };
                    let spec = rec.spec();
                    driver.validate_network(&spec)?;
                    // Persist first: if we die while building, start-up re-creates it.
                    let mut t = Txn::new();
                    t.network(&rec).ipam(&st.ipam);
                    t.commit(&*ctl.store)?;
                    if let Err(e) = driver.create_network(&spec).await {
                        let _ = driver.delete_network(&spec).await;
                        let mut t = Txn::new();
                        t.del_network(&rec.id);
                        // The ipam in the store is restored by the caller's rollback below.
                        let mut restore = st.clone();
                        for s in &rec.subnets {
                            let _ = restore.ipam.release_pool(&s.pool, true);
                        }
                        t.ipam(&restore.ipam);
                        t.commit(&*ctl.store)?;
                        return Err(e.into());
                    }
                    st.networks.insert(rec.id.clone(), rec.clone());
                    Ok(rec)
                })
            })
            .await?;
        tracing::info!(network = %rec.id, name = %rec.name, driver = %rec.driver, "network created");
        Ok(rec.to_rest(vec![]))
    }

    pub async fn list_networks(&self) -> Vec<rest::Network> {
        let st = self.view();
        st.networks
            .values()
            .map(|n| n.to_rest(endpoint_ids(&st, &n.id)))
            .collect()
    }

    pub async fn inspect_network(&self, key: &str) -> Result<rest::Network> {
        let st = self.view();
        let n = st.network(key)?;
        Ok(n.to_rest(endpoint_ids(&st, &n.id)))
    }

    pub async fn delete_network(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        let id = self
            .with_state(|st, ctl| {
                Box::pin(async move {
                    let n = st.network(&key)?.clone();
                    if n.is_predefined() {
                        return Err(Error::conflict(format!(
                            "{} is a pre-defined network and cannot be removed",
                            n.name
                        )));
                    }
                    let eps = st.endpoints_of_network(&n.id);
                    if !eps.is_empty() {
                        let who: Vec<String> = eps
                            .iter()
                            .map(|e| match &e.sandbox_id {
                                Some(s) => format!(
                                    "{} (sandbox {})",
                                    e.name,
                                    st.sandboxes.get(s).map(|s| s.name.as_str()).unwrap_or(s)
                                ),
                                None => e.name.clone(),
                            })
                            .collect();
                        return Err(Error::conflict(format!(
                            "network {} has active endpoints: {}",
                            n.name,
                            who.join(", ")
                        )));
                    }
                    let driver = ctl.driver(&n.driver)?;
                    driver.delete_network(&n.spec()).await?;
                    for s in &n.subnets {
                        st.ipam.release_pool(&s.pool, true).map_err(ipam_err)?;
                    }
                    st.networks.remove(&n.id);
                    let mut t = Txn::new();
                    t.del_network(&n.id).ipam(&st.ipam);
                    t.commit(&*ctl.store)?;
                    Ok(n.id)
                })
            })
            .await?;
        tracing::info!(network = %id, "network removed");
        Ok(())
    }
}

pub(crate) fn endpoint_ids(st: &State, net_id: &str) -> Vec<String> {
    st.endpoints
        .values()
        .filter(|e| e.network_id == net_id)
        .map(|e| e.id.clone())
        .collect()
}

pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Civil-from-days (Howard Hinnant), to avoid a date crate for one timestamp.
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Take default subnets until one overlaps no host route; give back the skipped ones.
fn pick_default_pool(
    ipam: &mut ipam::Ipam,
    req: &ipam::PoolRequest,
    host_routes: &[IpNetwork],
) -> Result<ipam::PoolId> {
    let mut skipped = Vec::new();
    let res = loop {
        match ipam.request_pool(req) {
            Ok(id) => {
                let s = id.subnet();
                let clash = host_routes.iter().any(|r| {
                    r.is_ipv4() == s.is_ipv4()
                        && (r.contains(s.network()) || s.contains(r.network()))
                });
                if clash && skipped.len() < 4096 {
                    skipped.push(id);
                    continue;
                }
                break Ok(id);
            }
            Err(e) => break Err(ipam_err(e)),
        }
    };
    for id in skipped {
        let _ = ipam.release_pool(&id, true);
    }
    res
}

impl Controller {
    /// Destinations of the host's routes (default routes excluded).
    pub(crate) async fn host_routes(&self) -> Vec<IpNetwork> {
        match self.kernel.sys.list_routes(&drivers::sys::Ns::Host).await {
            Ok(rs) => rs
                .into_iter()
                .map(|r| r.destination)
                .filter(|d| d.prefix() > 0)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading host routes; default pools not checked against them");
                Vec::new()
            }
        }
    }
}
