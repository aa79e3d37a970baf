//! Operations for callers that drive the CNM lifecycle step by step themselves (Docker's
//! remote driver and IPAM protocol): networks with caller-given ids and addresses,
//! endpoints without a sandbox, joins where the caller moves the interface, port
//! publishing per endpoint, and IPAM pools and addresses on their own.
//!
//! Every method is one atomic operation (persist, act, commit; rollback on failure).

use std::collections::BTreeMap;
use std::net::IpAddr;

use drivers::{JoinInfo, SandboxSpec};
use ipnetwork::IpNetwork;
use plugin_api::rest;

use super::network::{ipam_err, now_rfc3339};
use super::{Controller, Txn};
use crate::error::{Error, Result};
use crate::model::{EndpointRec, NetworkRec, SandboxRec, SubnetRec};

/// A network whose id and subnets the caller decided.
#[derive(Debug, Clone)]
pub struct ExternalNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// (subnet, gateway, aux addresses)
    pub subnets: Vec<(IpNetwork, Option<IpAddr>, BTreeMap<String, IpAddr>)>,
    pub ipv6: bool,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub owner: String,
}

/// What a caller-driven join returns.
#[derive(Debug, Clone)]
pub struct ExternalJoin {
    /// Name of the interface (in the host namespace) the caller must move.
    pub src_ifname: String,
    pub info: JoinInfo,
}

fn id_ok(what: &str, id: &str) -> Result<()> {
    if id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "invalid {what} id {id:?}: expected 64 hex characters"
        )))
    }
}

impl Controller {
    pub async fn create_network_external(&self, x: ExternalNetwork) -> Result<NetworkRec> {
        id_ok("network", &x.id)?;
        let driver = self.driver(&x.driver)?;
        self.with_state(|st, ctl| {
            Box::pin(async move {
                if st.networks.contains_key(&x.id) {
                    return Err(Error::conflict(format!("network {} already exists", x.id)));
                }
                if st.networks.values().any(|n| n.name == x.name) {
                    return Err(Error::conflict(format!(
                        "network with name {} already exists",
                        x.name
                    )));
                }
                let rec = NetworkRec {
                    id: x.id.clone(),
                    name: x.name.clone(),
                    driver: driver.name().to_string(),
                    subnets: x
                        .subnets
                        .iter()
                        .map(|(s, g, aux)| SubnetRec {
                            pool: ipam::PoolId::new(ipam::AddressSpace::Local, *s),
                            subnet: *s,
                            ip_range: None,
                            gateway: *g,
                            aux: aux.clone(),
                        })
                        .collect(),
                    ipv6: x.ipv6,
                    internal: x.internal,
                    options: x.options.clone(),
                    labels: x.labels.clone(),
                    owner: x.owner.clone(),
                    created: now_rfc3339(),
                    external_ipam: true,
                };
                let spec = rec.spec();
                driver.validate_network(&spec)?;
                let mut t = Txn::new();
                t.network(&rec);
                t.commit(&*ctl.store)?;
                if let Err(e) = driver.create_network(&spec).await {
                    let _ = driver.delete_network(&spec).await;
                    let mut t = Txn::new();
                    t.del_network(&rec.id);
                    t.commit(&*ctl.store)?;
                    return Err(e.into());
                }
                st.networks.insert(rec.id.clone(), rec.clone());
                tracing::info!(network = %rec.id, owner = %rec.owner, "network created");
                Ok(rec)
            })
        })
        .await
    }

    /// Create an endpoint with caller-given id and addresses, not yet in a sandbox.
    /// Returns the record (with the MAC the driver chose when none was given).
    pub async fn create_endpoint_external(
        &self,
        network_id: &str,
        endpoint_id: &str,
        addresses: Vec<IpNetwork>,
        mac: Option<String>,
        owner: &str,
    ) -> Result<EndpointRec> {
        id_ok("endpoint", endpoint_id)?;
        if let Some(m) = &mac {
            super::sandbox::check_mac(m)?;
        }
        let (network_id, endpoint_id, owner) = (
            network_id.to_string(),
            endpoint_id.to_string(),
            owner.to_string(),
        );
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let net =
                    st.networks.get(&network_id).cloned().ok_or_else(|| {
                        Error::not_found(format!("no such network: {network_id}"))
                    })?;
                if st.endpoints.contains_key(&endpoint_id) {
                    return Err(Error::conflict(format!(
                        "endpoint {endpoint_id} already exists"
                    )));
                }
                for a in &addresses {
                    if !net.subnets.iter().any(|s| s.subnet.contains(a.ip())) {
                        return Err(Error::bad(format!(
                            "address {a} is not in any subnet of network {}",
                            net.name
                        )));
                    }
                }
                let driver = ctl.driver(&net.driver)?;
                let mut ep = EndpointRec {
                    id: endpoint_id.clone(),
                    name: endpoint_id[..12].to_string(),
                    network_id: net.id.clone(),
                    sandbox_id: None,
                    addresses,
                    mac,
                    host_ifname: None,
                    container_ifname: None,
                    ifname: None,
                    aliases: vec![],
                    ports: vec![],
                    gateway4: None,
                    gateway6: None,
                    owner,
                    external_join: true,
                };
                let mut t = Txn::new();
                t.endpoint(&ep);
                t.commit(&*ctl.store)?;
                match driver.create_endpoint(&net.spec(), &ep.spec()).await {
                    Ok(info) => {
                        ep.host_ifname = info.host_ifname;
                        ep.container_ifname = info.container_ifname;
                        if ep.mac.is_none() {
                            ep.mac = info.mac;
                        }
                    }
                    Err(e) => {
                        let _ = driver.delete_endpoint(&net.spec(), &ep.spec()).await;
                        let mut t = Txn::new();
                        t.del_endpoint(&ep.id);
                        t.commit(&*ctl.store)?;
                        return Err(e.into());
                    }
                }
                let mut t = Txn::new();
                t.endpoint(&ep);
                t.commit(&*ctl.store)?;
                st.endpoints.insert(ep.id.clone(), ep.clone());
                Ok(ep)
            })
        })
        .await
    }

    /// Join an endpoint to the namespace at `netns_path`; the caller moves the interface.
    /// The sandbox record is found by path or created (owned by `owner`, netns not ours).
    pub async fn join_external(
        &self,
        endpoint_id: &str,
        netns_path: &str,
        owner: &str,
    ) -> Result<ExternalJoin> {
        let (endpoint_id, netns_path, owner) = (
            endpoint_id.to_string(),
            netns_path.to_string(),
            owner.to_string(),
        );
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let mut ep =
                    st.endpoints.get(&endpoint_id).cloned().ok_or_else(|| {
                        Error::not_found(format!("no such endpoint: {endpoint_id}"))
                    })?;
                if ep.sandbox_id.is_some() {
                    return Err(Error::conflict(format!(
                        "endpoint {endpoint_id} is already joined"
                    )));
                }
                let net = st.networks[&ep.network_id].clone();
                let src = ep.container_ifname.clone().ok_or_else(|| {
                    Error::bad(format!("driver {} has no interface to join", net.driver))
                })?;
                let mut sb = match st.sandboxes.values().find(|s| s.netns_path == netns_path) {
                    Some(s) => s.clone(),
                    None => {
                        let id = super::new_id();
                        let base = std::path::Path::new(&netns_path)
                            .file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let name = if super::check_name("sandbox", &base).is_ok()
                            && !st.sandboxes.values().any(|s| s.name == base)
                        {
                            base
                        } else {
                            id[..12].to_string()
                        };
                        SandboxRec {
                            id,
                            name,
                            netns_path: netns_path.clone(),
                            owns_netns: false,
                            hostname: None,
                            dns: vec![],
                            endpoints: vec![],
                            owner: owner.clone(),
                            cni_container_id: None,
                        }
                    }
                };
                let driver = ctl.driver(&net.driver)?;
                let sspec = SandboxSpec {
                    id: sb.id.clone(),
                    netns_path: netns_path.clone(),
                };
                let info = driver.join(&net.spec(), &ep.spec(), &sspec).await?;
                ep.sandbox_id = Some(sb.id.clone());
                ep.gateway4 = info.gateway4;
                ep.gateway6 = info.gateway6;
                ep.ifname = None;
                sb.endpoints.push(ep.id.clone());
                let mut t = Txn::new();
                t.endpoint(&ep).sandbox(&sb);
                t.commit(&*ctl.store)?;
                st.endpoints.insert(ep.id.clone(), ep);
                st.sandboxes.insert(sb.id.clone(), sb);
                Ok(ExternalJoin {
                    src_ifname: src,
                    info,
                })
            })
        })
        .await
    }

    /// Undo a caller-driven join; a sandbox record left without endpoints goes too.
    pub async fn leave_external(&self, endpoint_id: &str) -> Result<()> {
        let endpoint_id = endpoint_id.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let mut ep =
                    st.endpoints.get(&endpoint_id).cloned().ok_or_else(|| {
                        Error::not_found(format!("no such endpoint: {endpoint_id}"))
                    })?;
                let Some(sid) = ep.sandbox_id.clone() else {
                    return Ok(());
                };
                let net = st.networks[&ep.network_id].clone();
                let mut t = Txn::new();
                if let Some(mut sb) = st.sandboxes.get(&sid).cloned() {
                    let driver = ctl.driver(&net.driver)?;
                    let sspec = SandboxSpec {
                        id: sb.id.clone(),
                        netns_path: sb.netns_path.clone(),
                    };
                    if let Err(e) = driver.leave(&net.spec(), &ep.spec(), &sspec).await {
                        tracing::warn!(endpoint = %ep.id, error = %e, "leave");
                    }
                    sb.endpoints.retain(|e| e != &endpoint_id);
                    if sb.endpoints.is_empty() && !sb.owns_netns {
                        t.del_sandbox(&sb.id);
                        st.sandboxes.remove(&sb.id);
                    } else {
                        t.sandbox(&sb);
                        st.sandboxes.insert(sb.id.clone(), sb);
                    }
                }
                ep.sandbox_id = None;
                t.endpoint(&ep);
                t.commit(&*ctl.store)?;
                st.endpoints.insert(ep.id.clone(), ep);
                Ok(())
            })
        })
        .await
    }

    /// Delete an endpoint (also during a caller's rollback: unknown ids are fine).
    pub async fn delete_endpoint_external(&self, endpoint_id: &str) -> Result<()> {
        let endpoint_id = endpoint_id.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                if !st.endpoints.contains_key(&endpoint_id) {
                    return Ok(());
                }
                ctl.disconnect_endpoint_locked(st, &endpoint_id).await
            })
        })
        .await
    }

    /// Publish ports of an endpoint (Docker's ProgramExternalConnectivity).
    pub async fn publish_ports(
        &self,
        endpoint_id: &str,
        ports: Vec<rest::PortMapping>,
    ) -> Result<()> {
        let endpoint_id = endpoint_id.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let mut ep =
                    st.endpoints.get(&endpoint_id).cloned().ok_or_else(|| {
                        Error::not_found(format!("no such endpoint: {endpoint_id}"))
                    })?;
                if !ep.ports.is_empty() {
                    ctl.unpublish_locked(st, &mut ep).await?;
                }
                if ports.is_empty() {
                    return Ok(());
                }
                let net = st.networks[&ep.network_id].clone();
                let driver = ctl.driver(&net.driver)?;
                let reserved = ctl.allocate_ports(st, &ep, &ports)?;
                ep.ports = reserved.iter().map(|r| r.binding.clone()).collect();
                let mut t = Txn::new();
                t.endpoint(&ep);
                t.commit(&*ctl.store)?;
                let programmed = driver
                    .program_external_connectivity(&net.spec(), &ep.spec(), &ep.ports)
                    .await;
                // A driver without NAT publishing: the userland proxy alone serves the
                // ports (it listens on the host addresses, like docker-proxy).
                let proxy_only = ctl.proxy.is_some()
                    && reserved.iter().all(|r| r.listener.is_some());
                let programmed = match programmed {
                    Err(drivers::DriverError::NotSupported(m)) if proxy_only => {
                        tracing::warn!(endpoint = %ep.id, driver = %net.driver, "{m}; published ports served by the userland proxy only");
                        Ok(())
                    }
                    other => other,
                };
                let started = match programmed {
                    Ok(()) => ctl.start_port_proxies(&ep, reserved),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = started {
                    // Undo all of it: rules, proxies, and the record in the store.
                    ctl.stop_port_proxies(&ep);
                    let _ = driver
                        .revoke_external_connectivity(&net.spec(), &ep.spec(), &ep.ports)
                        .await;
                    ep.ports.clear();
                    let mut t = Txn::new();
                    t.endpoint(&ep);
                    t.commit(&*ctl.store)?;
                    return Err(e);
                }
                st.endpoints.insert(ep.id.clone(), ep);
                Ok(())
            })
        })
        .await
    }

    /// Remove an endpoint's published ports (Docker's RevokeExternalConnectivity).
    pub async fn unpublish_ports(&self, endpoint_id: &str) -> Result<()> {
        let endpoint_id = endpoint_id.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let Some(mut ep) = st.endpoints.get(&endpoint_id).cloned() else {
                    return Ok(());
                };
                ctl.unpublish_locked(st, &mut ep).await
            })
        })
        .await
    }

    async fn unpublish_locked(&self, st: &mut super::State, ep: &mut EndpointRec) -> Result<()> {
        let net = st.networks[&ep.network_id].clone();
        let driver = self.driver(&net.driver)?;
        self.stop_port_proxies(ep);
        driver
            .revoke_external_connectivity(&net.spec(), &ep.spec(), &ep.ports)
            .await?;
        ep.ports.clear();
        let mut t = Txn::new();
        t.endpoint(ep);
        t.commit(&*self.store)?;
        st.endpoints.insert(ep.id.clone(), ep.clone());
        Ok(())
    }

    /// Delete a caller-made network (no endpoints may remain).
    pub async fn delete_network_external(&self, network_id: &str) -> Result<()> {
        let network_id = network_id.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let Some(n) = st.networks.get(&network_id).cloned() else {
                    return Err(Error::not_found(format!("no such network: {network_id}")));
                };
                if !st.endpoints_of_network(&n.id).is_empty() {
                    return Err(Error::conflict(format!(
                        "network {} has active endpoints",
                        n.id
                    )));
                }
                let driver = ctl.driver(&n.driver)?;
                driver.delete_network(&n.spec()).await?;
                if !n.external_ipam {
                    for s in &n.subnets {
                        let _ = st.ipam.release_pool(&s.pool, true);
                    }
                }
                st.networks.remove(&n.id);
                let mut t = Txn::new();
                t.del_network(&n.id).ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                Ok(())
            })
        })
        .await
    }

    // ---- IPAM on its own (Docker's IpamDriver) ----

    pub async fn ipam_request_pool(&self, req: ipam::PoolRequest) -> Result<ipam::PoolInfo> {
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let id = st.ipam.request_pool(&req).map_err(ipam_err)?;
                let info = st.ipam.pool_info(&id).map_err(ipam_err)?;
                let mut t = Txn::new();
                t.ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                Ok(info)
            })
        })
        .await
    }

    pub async fn ipam_release_pool(&self, pool: &str) -> Result<()> {
        let id: ipam::PoolId = pool.parse().map_err(ipam_err)?;
        self.with_state(|st, ctl| {
            Box::pin(async move {
                st.ipam.release_pool(&id, true).map_err(ipam_err)?;
                let mut t = Txn::new();
                t.ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                Ok(())
            })
        })
        .await
    }

    pub async fn ipam_request_address(
        &self,
        pool: &str,
        addr: Option<IpAddr>,
    ) -> Result<IpNetwork> {
        let id: ipam::PoolId = pool.parse().map_err(ipam_err)?;
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let a = st.ipam.request_address(&id, addr).map_err(ipam_err)?;
                let mut t = Txn::new();
                t.ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                IpNetwork::new(a, id.subnet().prefix()).map_err(|e| Error::internal(e.to_string()))
            })
        })
        .await
    }

    pub async fn ipam_release_address(&self, pool: &str, addr: IpAddr) -> Result<()> {
        let id: ipam::PoolId = pool.parse().map_err(ipam_err)?;
        self.with_state(|st, ctl| {
            Box::pin(async move {
                match st.ipam.release_address(&id, addr) {
                    Ok(()) | Err(ipam::IpamError::AddressNotAllocated { .. }) => {}
                    Err(e) => return Err(ipam_err(e)),
                }
                let mut t = Txn::new();
                t.ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                Ok(())
            })
        })
        .await
    }
}
