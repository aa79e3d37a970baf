//! Reconciliation: make the kernel match the store, both ways.
//!
//! The store is the record of intent. Every multi-step operation writes its records
//! *before* touching the kernel and commits the final form after, so after a crash the
//! store says what should exist and the kernel holds some prefix of it. Reconciliation
//! (at start-up, on `netctl system reconcile`, and when netd's firewall table vanishes)
//! finishes that work or removes its leftovers:
//!
//! - networks: the driver re-creates bridges and firewall set elements (idempotent);
//! - firewall: netd's table is rebuilt from the store when it holds bridges the store
//!   does not know (or is gone), then every network and published port is re-added;
//! - endpoints: an endpoint whose interface is missing in its sandbox is rebuilt (same
//!   addresses, same name); a sandbox whose namespace netd made but is gone is re-made;
//!   a CNI/adopted sandbox whose namespace is gone is released (the container is gone);
//! - leftovers netd can prove it owns are removed: bridges in netd's own firewall set
//!   that no network has, veths enslaved to netd's bridges that no endpoint has,
//!   namespace files under netd's exec root that no sandbox has;
//! - IPAM: addresses allocated in netd-managed pools that no endpoint holds are released,
//!   and endpoint addresses the allocator lost are marked allocated again;
//! - listeners: the DNS listeners and userland proxies of live sandboxes are re-armed.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use drivers::sys::Ns;
use serde::Serialize;

use super::{Controller, State, Txn};
use crate::error::Result;
use crate::model::{EndpointRec, NetworkRec};

/// What one reconciliation did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReconcileReport {
    pub firewall_rebuilt: bool,
    pub networks_ensured: usize,
    pub endpoints_rebuilt: Vec<String>,
    pub sandboxes_released: Vec<String>,
    pub removed_bridges: Vec<String>,
    pub removed_veths: Vec<String>,
    pub removed_netns: Vec<String>,
    pub addresses_released: Vec<String>,
    pub addresses_reclaimed: Vec<String>,
    pub errors: Vec<String>,
}

pub(crate) fn bridge_name(n: &NetworkRec) -> String {
    n.options
        .get("com.docker.network.bridge.name")
        .cloned()
        .unwrap_or_else(|| drivers::bridge::options::default_bridge_name(&n.id))
}

impl Controller {
    /// Reconcile everything (see the module docs).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let mut rep = ReconcileReport::default();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                ctl.reconcile_locked(st, &mut rep).await?;
                Ok(rep)
            })
        })
        .await
    }

    pub(crate) async fn reconcile_locked(
        &self,
        st: &mut State,
        rep: &mut ReconcileReport,
    ) -> Result<()> {
        let sys = self.kernel.sys.clone();
        let bridge_nets: Vec<NetworkRec> = st
            .networks
            .values()
            .filter(|n| n.driver == "bridge")
            .cloned()
            .collect();
        let ours: BTreeSet<String> = bridge_nets.iter().map(bridge_name).collect();

        // 1. Firewall and bridges.
        if let Some(b) = &self.bridge {
            let in_fw = b.firewall_bridges().await.unwrap_or_default();
            let orphans: Vec<String> = in_fw
                .iter()
                .filter(|x| !ours.contains(*x))
                .cloned()
                .collect();
            for o in &orphans {
                if o == "docker0" {
                    continue;
                }
                match sys.delete_link(&Ns::Host, o).await {
                    Ok(true) => rep.removed_bridges.push(o.clone()),
                    Ok(false) => {}
                    Err(e) => rep.errors.push(format!("delete bridge {o}: {e}")),
                }
            }
            let table_gone = table_missing(&sys, b.table()).await;
            if !orphans.is_empty() || table_gone {
                if let Err(e) = b.teardown_firewall().await {
                    rep.errors.push(format!("reset firewall: {e}"));
                }
                if let Err(e) = b.init().await {
                    rep.errors.push(format!("firewall init: {e}"));
                }
                rep.firewall_rebuilt = true;
            }
        }
        for n in st.networks.values() {
            let d = self.driver(&n.driver)?;
            match d.create_network(&n.spec()).await {
                Ok(()) => rep.networks_ensured += 1,
                Err(e) => rep.errors.push(format!("network {}: {e}", n.name)),
            }
        }

        // 2. Sandboxes and endpoints.
        let sandboxes: Vec<_> = st.sandboxes.values().cloned().collect();
        for sb in sandboxes {
            let exists = std::path::Path::new(&sb.netns_path).exists();
            if !exists && !sb.owns_netns {
                // An adopted namespace is gone: so is its container. Release everything.
                if let Err(e) = self.delete_sandbox_locked(st, &sb.id).await {
                    rep.errors.push(format!("release sandbox {}: {e}", sb.name));
                }
                rep.sandboxes_released.push(sb.id.clone());
                continue;
            }
            if !exists {
                if let Err(e) = self.kernel.create_netns(&sb.netns_path).await {
                    rep.errors
                        .push(format!("re-create namespace of {}: {e}", sb.name));
                    continue;
                }
            }
            for ep_id in sb.endpoints.clone() {
                let Some(ep) = st.endpoints.get(&ep_id).cloned() else {
                    continue;
                };
                if ep.external_join {
                    continue;
                }
                let net = st.networks[&ep.network_id].clone();
                if net.driver != "bridge" {
                    continue;
                }
                let present = match &ep.ifname {
                    Some(i) => matches!(
                        sys.get_link(&Ns::path(&sb.netns_path), i).await,
                        Ok(Some(_))
                    ),
                    None => false,
                };
                let host_ok = match &ep.host_ifname {
                    Some(h) => matches!(sys.get_link(&Ns::Host, h).await, Ok(Some(_))),
                    None => false,
                };
                if present && host_ok {
                    continue;
                }
                match self.rebuild_endpoint(st, &net, ep.clone()).await {
                    Ok(()) => rep.endpoints_rebuilt.push(ep.id.clone()),
                    Err(e) => rep.errors.push(format!("rebuild endpoint {}: {e}", ep.id)),
                }
            }
            if let Err(e) = self.update_gateway(st, &sb.id).await {
                rep.errors.push(format!("gateway of {}: {e}", sb.name));
            }
        }
        // Published ports: re-program (idempotent map elements) and re-arm proxies.
        for ep in st.endpoints.values().filter(|e| !e.ports.is_empty()) {
            let net = &st.networks[&ep.network_id];
            let d = self.driver(&net.driver)?;
            if let Err(e) = d
                .program_external_connectivity(&net.spec(), &ep.spec(), &ep.ports)
                .await
            {
                rep.errors.push(format!("ports of {}: {e}", ep.id));
            }
            if let Err(e) = self.rearm_port_proxies(ep) {
                rep.errors.push(format!("proxies of {}: {e}", ep.id));
            }
        }

        // 3. Leftovers netd can prove it owns.
        if let Ok(links) = sys.list_links(&Ns::Host).await {
            let idx: HashMap<u32, String> = links
                .iter()
                .filter(|l| ours.contains(&l.name))
                .map(|l| (l.index, l.name.clone()))
                .collect();
            let known: BTreeSet<String> = st
                .endpoints
                .values()
                .filter_map(|e| e.host_ifname.clone())
                .collect();
            for l in &links {
                if l.master.is_some_and(|m| idx.contains_key(&m)) && !known.contains(&l.name) {
                    match sys.delete_link(&Ns::Host, &l.name).await {
                        Ok(_) => rep.removed_veths.push(l.name.clone()),
                        Err(e) => rep.errors.push(format!("delete {}: {e}", l.name)),
                    }
                }
            }
        }
        let netns_dir = self.cfg.exec_root.join("netns");
        if let Ok(rd) = std::fs::read_dir(&netns_dir) {
            let known: BTreeSet<String> = st
                .sandboxes
                .values()
                .map(|s| s.netns_path.clone())
                .collect();
            for e in rd.flatten() {
                let p = e.path().to_string_lossy().into_owned();
                if !known.contains(&p) {
                    match self.kernel.delete_netns(&p).await {
                        Ok(()) => rep.removed_netns.push(p),
                        Err(e) => rep.errors.push(format!("remove namespace {p}: {e}")),
                    }
                }
            }
        }

        // 4. IPAM of netd-managed networks equals what their endpoints hold.
        for n in st
            .networks
            .values()
            .filter(|n| !n.external_ipam)
            .cloned()
            .collect::<Vec<_>>()
        {
            for s in &n.subnets {
                let held: BTreeSet<IpAddr> = st
                    .endpoints
                    .values()
                    .filter(|e| e.network_id == n.id)
                    .flat_map(|e| e.addresses.iter().map(|a| a.ip()))
                    .filter(|a| s.subnet.contains(*a))
                    .collect();
                let allocated: Vec<IpAddr> = match st.ipam.allocated(&s.pool) {
                    Ok(it) => it.collect(),
                    Err(_) => continue,
                };
                for a in &allocated {
                    if !held.contains(a) && st.ipam.release_address(&s.pool, *a).is_ok() {
                        rep.addresses_released.push(a.to_string());
                    }
                }
                for a in &held {
                    if !allocated.contains(a) && st.ipam.request_address(&s.pool, Some(*a)).is_ok()
                    {
                        rep.addresses_reclaimed.push(a.to_string());
                    }
                }
            }
        }
        let mut t = Txn::new();
        t.ipam(&st.ipam);
        t.commit(&*self.store)?;
        for id in st.sandboxes.keys() {
            self.sandbox_changed(st, id);
        }
        if !rep.removed_bridges.is_empty()
            || !rep.removed_veths.is_empty()
            || !rep.endpoints_rebuilt.is_empty()
            || rep.firewall_rebuilt
            || !rep.errors.is_empty()
        {
            tracing::info!(report = ?rep, "reconciled");
        }
        Ok(())
    }

    /// Build an endpoint's kernel side again from its record (same id, addresses, name).
    async fn rebuild_endpoint(
        &self,
        st: &mut State,
        net: &NetworkRec,
        mut ep: EndpointRec,
    ) -> Result<()> {
        let Some(sid) = ep.sandbox_id.clone() else {
            return Ok(());
        };
        let sb = st.sandboxes[&sid].clone();
        let driver = self.driver(&net.driver)?;
        // Remove whatever half of it exists.
        if let Some(i) = &ep.ifname {
            let _ = self.kernel.remove_interface(&sb.netns_path, i).await;
        }
        let _ = driver.delete_endpoint(&net.spec(), &ep.spec()).await;
        let ifname = match &ep.ifname {
            Some(i) => i.clone(),
            None => super::sandbox::next_ifname(st, &sb),
        };
        let ports = std::mem::take(&mut ep.ports);
        self.stop_port_proxies(&ep);
        self.build_endpoint(&*driver, net, &mut ep, &sb, &ifname, vec![])
            .await?;
        ep.ports = ports;
        let mut t = Txn::new();
        t.endpoint(&ep);
        t.commit(&*self.store)?;
        st.endpoints.insert(ep.id.clone(), ep);
        Ok(())
    }
}

async fn table_missing(sys: &std::sync::Arc<dyn drivers::sys::Sys>, table: &str) -> bool {
    matches!(
        sys.nft_list(&Ns::Host, &["list", "table", "inet", table])
            .await,
        Ok(None)
    )
}

impl Controller {
    /// Firewall only: when netd's table is gone (someone ran `nft flush ruleset` or
    /// deleted it), rebuild it with every network's elements and every published port.
    /// Cheap when the table is there. Returns whether it rebuilt.
    pub async fn reconcile_firewall(&self) -> Result<bool> {
        let Some(b) = self.bridge.clone() else {
            return Ok(false);
        };
        if !table_missing(&self.kernel.sys, b.table()).await {
            return Ok(false);
        }
        let st = self.state.lock().await;
        if !table_missing(&self.kernel.sys, b.table()).await {
            return Ok(false);
        }
        tracing::warn!(table = %b.table(), "netd's nftables table disappeared; restoring it from the store");
        b.init().await?;
        for n in st.networks.values().filter(|n| n.driver == "bridge") {
            let d = self.driver(&n.driver)?;
            if let Err(e) = d.create_network(&n.spec()).await {
                tracing::error!(network = %n.id, error = %e, "restoring network firewall state");
            }
        }
        for ep in st.endpoints.values().filter(|e| !e.ports.is_empty()) {
            let net = &st.networks[&ep.network_id];
            let d = self.driver(&net.driver)?;
            if let Err(e) = d
                .program_external_connectivity(&net.spec(), &ep.spec(), &ep.ports)
                .await
            {
                tracing::error!(endpoint = %ep.id, error = %e, "restoring published ports");
            }
        }
        Ok(true)
    }
}

impl Controller {
    /// Remove every sandbox and every network (pre-defined ones too): `--cleanup-on-exit`.
    pub async fn cleanup_all(&self) -> Result<()> {
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let ids: Vec<String> = st.sandboxes.keys().cloned().collect();
                for id in ids {
                    if let Err(e) = ctl.delete_sandbox_locked(st, &id).await {
                        tracing::warn!(sandbox = %id, error = %e, "cleanup");
                    }
                }
                let eps: Vec<String> = st.endpoints.keys().cloned().collect();
                for e in eps {
                    let _ = ctl.disconnect_endpoint_locked(st, &e).await;
                }
                let nets: Vec<NetworkRec> = st.networks.values().cloned().collect();
                let mut t = Txn::new();
                for n in nets {
                    let d = ctl.driver(&n.driver)?;
                    if let Err(e) = d.delete_network(&n.spec()).await {
                        tracing::warn!(network = %n.id, error = %e, "cleanup");
                    }
                    if !n.external_ipam {
                        for s in &n.subnets {
                            let _ = st.ipam.release_pool(&s.pool, true);
                        }
                    }
                    st.networks.remove(&n.id);
                    t.del_network(&n.id);
                }
                t.ipam(&st.ipam);
                t.commit(&*ctl.store)?;
                Ok(())
            })
        })
        .await
    }
}
