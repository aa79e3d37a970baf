//! netd as a CNI IPAM plugin (`"ipam": {"type": "netd-cni"}` inside another plugin's
//! config): per CNI network, one IPv4 pool (and optionally one IPv6 pool) in netd's IPAM,
//! and the leases of each attachment `(container id, ifname)`, so DEL and GC release
//! exactly what ADD handed out.
//!
//! No netd network exists for these pools: the other plugin (e.g. the reference `bridge`)
//! owns the bridge and the gateway address, netd only owns the addresses. The lease table
//! of a network is one store record (`Meta` key `cni_ipam/<network>`), written in the same
//! transaction as the IPAM state, so the two never disagree.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::network::ipam_err;
use super::{Controller, State, Txn};
use crate::error::{Error, Result};
use crate::store::Kind;

const META_PREFIX: &str = "cni_ipam/";

/// The pools a CNI IPAM network should use (from its `ipam` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniIpamPools {
    pub subnet: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub subnet6: Option<IpNetwork>,
    pub gateway6: Option<IpAddr>,
    /// Also hand out an IPv6 address (implied by `subnet6`).
    pub ipv6: bool,
}

/// One address handed out, with its subnet's prefix and gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniLease {
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PoolRef {
    pool: ipam::PoolId,
    gateway: Option<IpAddr>,
}

/// The stored record of one CNI IPAM network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct IpamNet {
    pools: Vec<PoolRef>,
    /// `"<container id>/<ifname>"` (a container id never contains '/') → addresses.
    leases: BTreeMap<String, Vec<IpAddr>>,
}

fn lease_key(container_id: &str, ifname: &str) -> String {
    format!("{container_id}/{ifname}")
}

fn split_key(k: &str) -> (&str, &str) {
    k.split_once('/').unwrap_or((k, ""))
}

type Table = BTreeMap<String, IpamNet>;

/// In-memory copy of the records, per data root (one controller per data root). Changed
/// only after the store commit succeeded, and only under the controller's state lock.
fn cache() -> &'static Mutex<HashMap<PathBuf, Table>> {
    static C: OnceLock<Mutex<HashMap<PathBuf, Table>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

impl IpamNet {
    fn lease(&self, key: &str) -> Option<Vec<CniLease>> {
        let addrs = self.leases.get(key)?;
        Some(
            addrs
                .iter()
                .filter_map(|a| {
                    let p = self.pools.iter().find(|p| p.pool.subnet().contains(*a))?;
                    Some(CniLease {
                        address: IpNetwork::new(*a, p.pool.subnet().prefix()).ok()?,
                        gateway: p.gateway,
                    })
                })
                .collect(),
        )
    }
}

impl Controller {
    /// The stored record of `network` (loads the table from the store on first use).
    fn cni_ipam_load(&self, network: &str) -> Result<IpamNet> {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if !c.contains_key(&self.cfg.data_root) {
            let snap = self.store.load()?;
            let mut t = Table::new();
            for (k, v) in snap.get(&Kind::Meta).into_iter().flatten() {
                if let Some(name) = k.strip_prefix(META_PREFIX) {
                    let rec: IpamNet = serde_json::from_slice(v)
                        .map_err(|e| Error::internal(format!("corrupt store record {k}: {e}")))?;
                    t.insert(name.to_string(), rec);
                }
            }
            c.insert(self.cfg.data_root.clone(), t);
        }
        Ok(c[&self.cfg.data_root]
            .get(network)
            .cloned()
            .unwrap_or_default())
    }

    /// Commit the IPAM state and the network's record together, then update the cache.
    fn cni_ipam_commit(&self, st: &State, network: &str, rec: &IpamNet) -> Result<()> {
        let key = format!("{META_PREFIX}{network}");
        let mut t = Txn::new();
        t.ipam(&st.ipam);
        if rec.pools.is_empty() && rec.leases.is_empty() {
            t.del_meta(&key);
        } else {
            t.meta(&key, rec);
        }
        t.commit(&*self.store)?;
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        c.entry(self.cfg.data_root.clone())
            .or_default()
            .insert(network.to_string(), rec.clone());
        Ok(())
    }

    fn cni_ipam_add_locked(
        &self,
        st: &mut State,
        network: &str,
        pools: &CniIpamPools,
        container_id: &str,
        ifname: &str,
        want: &[IpAddr],
    ) -> Result<Vec<CniLease>> {
        let mut rec = self.cni_ipam_load(network)?;
        let key = lease_key(container_id, ifname);
        if rec.leases.contains_key(&key) {
            return Err(Error::conflict(format!(
                "container {container_id} already has addresses for {ifname} on CNI network {network} (DEL it first)"
            )));
        }
        let mut families = vec![(false, pools.subnet, pools.gateway)];
        if pools.ipv6 || pools.subnet6.is_some() {
            families.push((true, pools.subnet6, pools.gateway6));
        }
        for (v6, subnet, gateway) in &families {
            let existing = rec.pools.iter().find(|p| p.pool.subnet().is_ipv6() == *v6);
            match (existing, subnet) {
                (Some(p), Some(s)) if p.pool.subnet() != *s => {
                    return Err(Error::bad(format!(
                    "CNI network {network} already allocates from {} but the config asks for {s}",
                    p.pool.subnet()
                )))
                }
                (Some(_), _) => {}
                (None, _) => {
                    let req = ipam::PoolRequest {
                        space: ipam::AddressSpace::Local,
                        subnet: *subnet,
                        v6: *v6,
                        gateway: *gateway,
                        auto_gateway: true,
                        ..Default::default()
                    };
                    let id = st.ipam.request_pool(&req).map_err(ipam_err)?;
                    let gw = st.ipam.gateway(&id).map_err(ipam_err)?;
                    rec.pools.push(PoolRef {
                        pool: id,
                        gateway: gw,
                    });
                }
            }
        }
        for w in want {
            if !families.iter().any(|(v6, _, _)| *v6 == w.is_ipv6()) {
                return Err(Error::bad(format!(
                    "requested address {w} is IPv6 but CNI network {network} has no IPv6 pool"
                )));
            }
        }
        let mut got = Vec::new();
        for (v6, _, _) in &families {
            let p = rec
                .pools
                .iter()
                .find(|p| p.pool.subnet().is_ipv6() == *v6)
                .expect("pool made above");
            let wanted: Vec<&IpAddr> = want.iter().filter(|w| w.is_ipv6() == *v6).collect();
            if wanted.len() > 1 {
                return Err(Error::bad(format!(
                    "netd hands out one address per family, {} were requested",
                    wanted.len()
                )));
            }
            let a = st
                .ipam
                .request_address(&p.pool, wanted.first().copied().copied())
                .map_err(ipam_err)?;
            got.push(a);
        }
        rec.leases.insert(key.clone(), got);
        self.cni_ipam_commit(st, network, &rec)?;
        Ok(rec.lease(&key).unwrap_or_default())
    }

    /// Allocate the addresses of attachment `(container_id, ifname)` on CNI IPAM network
    /// `network` (its pools are made on first use). One address per family; `want` asks
    /// for specific ones. A second ADD of the same attachment is refused.
    pub async fn cni_ipam_add(
        &self,
        network: &str,
        pools: CniIpamPools,
        container_id: &str,
        ifname: &str,
        want: Vec<IpAddr>,
    ) -> Result<Vec<CniLease>> {
        let (network, cid, ifn) = (
            network.to_string(),
            container_id.to_string(),
            ifname.to_string(),
        );
        self.with_state(|st, ctl| {
            Box::pin(
                async move { ctl.cni_ipam_add_locked(st, &network, &pools, &cid, &ifn, &want) },
            )
        })
        .await
    }

    /// The addresses held by an attachment (None: nothing held).
    pub async fn cni_ipam_get(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Vec<CniLease>>> {
        let _guard = self.state.lock().await;
        Ok(self
            .cni_ipam_load(network)?
            .lease(&lease_key(container_id, ifname)))
    }

    fn cni_ipam_release_locked(
        &self,
        st: &mut State,
        network: &str,
        keys: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> Result<Vec<(String, String)>> {
        let mut rec = self.cni_ipam_load(network)?;
        let gone: Vec<String> = rec
            .leases
            .keys()
            .filter(|k| {
                let (c, i) = split_key(k);
                keys(c, i)
            })
            .cloned()
            .collect();
        if gone.is_empty() {
            return Ok(vec![]);
        }
        for k in &gone {
            for a in rec.leases.remove(k).unwrap_or_default() {
                if let Some(p) = rec.pools.iter().find(|p| p.pool.subnet().contains(a)) {
                    match st.ipam.release_address(&p.pool, a) {
                        Ok(()) | Err(ipam::IpamError::AddressNotAllocated { .. }) => {}
                        Err(e) => tracing::warn!(address = %a, error = %e, "CNI IPAM release"),
                    }
                }
            }
        }
        self.cni_ipam_commit(st, network, &rec)?;
        Ok(gone
            .iter()
            .map(|k| {
                let (c, i) = split_key(k);
                (c.to_string(), i.to_string())
            })
            .collect())
    }

    /// Release an attachment's addresses; Ok(false) when it held none (DEL is idempotent).
    pub async fn cni_ipam_del(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<bool> {
        let (network, cid, ifn) = (
            network.to_string(),
            container_id.to_string(),
            ifname.to_string(),
        );
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let r = ctl.cni_ipam_release_locked(st, &network, &|c, i| c == cid && i == ifn)?;
                Ok(!r.is_empty())
            })
        })
        .await
    }

    /// Release every attachment of `network` not in `valid`; returns the released ones.
    pub async fn cni_ipam_gc(
        &self,
        network: &str,
        valid: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>> {
        let network = network.to_string();
        self.with_state(|st, ctl| {
            Box::pin(async move {
                ctl.cni_ipam_release_locked(st, &network, &|c, i| {
                    !valid.iter().any(|(vc, vi)| vc == c && vi == i)
                })
            })
        })
        .await
    }
}
