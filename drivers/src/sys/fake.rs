//! A recording [`Sys`] for unit tests without root: every call is appended
//! to `calls` as one readable line, links are modelled just enough for the
//! driver's idempotency checks (exists / gone), nft batches are kept as JSON,
//! and a call can be made to fail (`fail_on`) to exercise rollback.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use ipnetwork::IpNetwork;

use super::{AddrState, BridgePortFlags, LinkState, RouteState};
use super::{Ns, Sys, SysError, SysResult};

#[derive(Default)]
pub struct FakeSys {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<String>,
    links: BTreeMap<(String, String), LinkState>,
    next_index: u32,
    nft: Vec<serde_json::Value>,
    fail_on: Option<String>,
    sysctls: BTreeMap<String, String>,
    /// Canned answers for `nft_list` (key: the args joined by spaces), used once.
    nft_listings: BTreeMap<String, serde_json::Value>,
    nft_text: Vec<String>,
    /// veth peers by (namespace, name), both directions: deleting one end
    /// deletes both.
    peers: BTreeMap<(String, String), (String, String)>,
}

impl FakeSys {
    pub fn new() -> FakeSys {
        FakeSys::default()
    }
    /// Lines recorded so far.
    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.clone()
    }
    /// nft batches applied so far.
    pub fn nft_batches(&self) -> Vec<serde_json::Value> {
        self.inner.lock().unwrap().nft.clone()
    }
    /// nft text scripts applied so far.
    pub fn nft_texts(&self) -> Vec<String> {
        self.inner.lock().unwrap().nft_text.clone()
    }
    /// Answer the next `nft_list` with these args (joined by spaces) with `v`.
    pub fn set_nft_listing(&self, args: &str, v: serde_json::Value) {
        self.inner
            .lock()
            .unwrap()
            .nft_listings
            .insert(args.into(), v);
    }
    /// Make the first call whose line starts with `prefix` fail (once).
    pub fn fail_on(&self, prefix: &str) {
        self.inner.lock().unwrap().fail_on = Some(prefix.to_string());
    }
    /// Names of the links that exist in `ns`.
    pub fn link_names(&self, ns: &Ns) -> Vec<String> {
        let key = ns.to_string();
        let g = self.inner.lock().unwrap();
        g.links
            .keys()
            .filter(|(n, _)| *n == key)
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn record(&self, line: String) -> SysResult<()> {
        let mut g = self.inner.lock().unwrap();
        let fail = g.fail_on.as_deref().is_some_and(|p| line.starts_with(p));
        g.calls.push(line.clone());
        if fail {
            g.fail_on = None;
            return Err(SysError::Netlink {
                op: line,
                msg: "injected failure".into(),
                errno: Some(libc::EIO),
            });
        }
        Ok(())
    }

    fn add_link(&self, ns: &Ns, name: &str, kind: &str) -> SysResult<()> {
        let mut g = self.inner.lock().unwrap();
        let key = (ns.to_string(), name.to_string());
        if g.links.contains_key(&key) {
            return Err(SysError::Netlink {
                op: format!("create {name}"),
                msg: "exists".into(),
                errno: Some(libc::EEXIST),
            });
        }
        g.next_index += 1;
        let index = g.next_index + 1;
        g.links.insert(
            key,
            LinkState {
                index,
                name: name.into(),
                kind: Some(kind.into()),
                ..Default::default()
            },
        );
        Ok(())
    }

    fn with_link<T>(
        &self,
        ns: &Ns,
        name: &str,
        f: impl FnOnce(&mut LinkState) -> T,
    ) -> SysResult<T> {
        let mut g = self.inner.lock().unwrap();
        g.links
            .get_mut(&(ns.to_string(), name.to_string()))
            .map(f)
            .ok_or_else(|| SysError::LinkNotFound(name.into()))
    }
}

/// A link `old` is now known as `new`: fix both directions of its peer entry.
fn repoint_peer(
    peers: &mut BTreeMap<(String, String), (String, String)>,
    old: &(String, String),
    new: (String, String),
) {
    if let Some(peer) = peers.remove(old) {
        peers.insert(peer.clone(), new.clone());
        peers.insert(new, peer);
    }
}

#[async_trait]
impl Sys for FakeSys {
    async fn get_link(&self, ns: &Ns, name: &str) -> SysResult<Option<LinkState>> {
        let g = self.inner.lock().unwrap();
        Ok(g.links.get(&(ns.to_string(), name.to_string())).cloned())
    }
    async fn list_links(&self, ns: &Ns) -> SysResult<Vec<LinkState>> {
        let key = ns.to_string();
        let g = self.inner.lock().unwrap();
        Ok(g.links
            .iter()
            .filter(|((n, _), _)| *n == key)
            .map(|(_, l)| l.clone())
            .collect())
    }
    async fn create_bridge(&self, ns: &Ns, name: &str, mtu: Option<u32>) -> SysResult<()> {
        self.record(format!("create_bridge {ns} {name} mtu={mtu:?}"))?;
        self.add_link(ns, name, "bridge")
    }
    async fn create_veth(
        &self,
        ns: &Ns,
        name: &str,
        peer: &str,
        mtu: Option<u32>,
    ) -> SysResult<()> {
        // Honour a peer placement like the real one: the peer is born in the
        // sandbox under its final name and MAC.
        let placed = super::placement::take();
        let (peer_ns, peer_name) = match &placed {
            Some(p) => {
                let pns = Ns::Path(p.netns.clone());
                if self
                    .inner
                    .lock()
                    .unwrap()
                    .links
                    .contains_key(&(pns.to_string(), p.name.clone()))
                {
                    (ns.clone(), peer.to_string())
                } else {
                    (pns, p.name.clone())
                }
            }
            None => (ns.clone(), peer.to_string()),
        };
        if peer_ns == *ns {
            self.record(format!("create_veth {ns} {name} {peer} mtu={mtu:?}"))?;
        } else {
            self.record(format!(
                "create_veth {ns} {name} {peer} mtu={mtu:?} peer_in={peer_ns} as {peer_name}"
            ))?;
        }
        self.add_link(ns, name, "veth")?;
        self.add_link(&peer_ns, &peer_name, "veth")?;
        if peer_ns != *ns {
            if let Some(mac) = placed.and_then(|p| p.mac) {
                self.with_link(&peer_ns, &peer_name, |l| l.mac = Some(mac))?;
            }
        }
        let mut g = self.inner.lock().unwrap();
        let a = (ns.to_string(), name.to_string());
        let b = (peer_ns.to_string(), peer_name);
        g.peers.insert(a.clone(), b.clone());
        g.peers.insert(b, a);
        Ok(())
    }
    async fn set_up(&self, ns: &Ns, name: &str, up: bool) -> SysResult<()> {
        self.record(format!("set_up {ns} {name} {up}"))?;
        self.with_link(ns, name, |l| l.up = up)
    }
    async fn set_mtu(&self, ns: &Ns, name: &str, mtu: u32) -> SysResult<()> {
        self.record(format!("set_mtu {ns} {name} {mtu}"))?;
        self.with_link(ns, name, |l| l.mtu = Some(mtu))
    }
    async fn set_master(&self, ns: &Ns, name: &str, master: Option<&str>) -> SysResult<()> {
        self.record(format!("set_master {ns} {name} {master:?}"))?;
        self.with_link(ns, name, |_| ())
    }
    async fn set_mac(&self, ns: &Ns, name: &str, mac: &str) -> SysResult<()> {
        self.record(format!("set_mac {ns} {name} {mac}"))?;
        self.with_link(ns, name, |l| l.mac = Some(mac.into()))
    }
    async fn rename(&self, ns: &Ns, name: &str, new_name: &str) -> SysResult<()> {
        self.record(format!("rename {ns} {name} {new_name}"))?;
        let mut g = self.inner.lock().unwrap();
        if name != new_name
            && g.links
                .contains_key(&(ns.to_string(), new_name.to_string()))
        {
            return Err(SysError::Netlink {
                op: format!("rename {name} -> {new_name}"),
                msg: "exists".into(),
                errno: Some(libc::EEXIST),
            });
        }
        let mut l = g
            .links
            .remove(&(ns.to_string(), name.to_string()))
            .ok_or_else(|| SysError::LinkNotFound(name.into()))?;
        l.name = new_name.into();
        g.links.insert((ns.to_string(), new_name.into()), l);
        let old = (ns.to_string(), name.to_string());
        let new = (ns.to_string(), new_name.to_string());
        repoint_peer(&mut g.peers, &old, new);
        Ok(())
    }
    async fn move_to_netns(&self, ns: &Ns, name: &str, target: &Path) -> SysResult<()> {
        self.record(format!("move_to_netns {ns} {name} {}", target.display()))?;
        let mut g = self.inner.lock().unwrap();
        let l = g
            .links
            .remove(&(ns.to_string(), name.to_string()))
            .ok_or_else(|| SysError::LinkNotFound(name.into()))?;
        g.links
            .insert((target.display().to_string(), name.into()), l);
        let old = (ns.to_string(), name.to_string());
        let new = (target.display().to_string(), name.to_string());
        repoint_peer(&mut g.peers, &old, new);
        Ok(())
    }
    async fn delete_link(&self, ns: &Ns, name: &str) -> SysResult<bool> {
        self.record(format!("delete_link {ns} {name}"))?;
        let mut g = self.inner.lock().unwrap();
        let existed = g
            .links
            .remove(&(ns.to_string(), name.to_string()))
            .is_some();
        if existed {
            if let Some(peer) = g.peers.remove(&(ns.to_string(), name.to_string())) {
                g.peers.remove(&peer);
                g.links.remove(&peer);
            }
        }
        Ok(existed)
    }
    async fn set_bridge_port(&self, ns: &Ns, name: &str, flags: BridgePortFlags) -> SysResult<()> {
        self.record(format!(
            "set_bridge_port {ns} {name} hairpin={:?} isolated={:?}",
            flags.hairpin, flags.isolated
        ))
    }
    async fn add_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<()> {
        self.record(format!("add_addr {ns} {name} {addr}"))
    }
    async fn del_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<bool> {
        self.record(format!("del_addr {ns} {name} {addr}"))?;
        Ok(true)
    }
    async fn list_addrs(&self, _ns: &Ns) -> SysResult<Vec<AddrState>> {
        Ok(vec![])
    }
    async fn replace_route(
        &self,
        ns: &Ns,
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<()> {
        self.record(format!("replace_route {ns} {dst} via={via:?} dev={dev:?}"))
    }
    async fn del_route(&self, ns: &Ns, dst: IpNetwork, via: Option<IpAddr>) -> SysResult<bool> {
        self.record(format!("del_route {ns} {dst} via={via:?}"))?;
        Ok(true)
    }
    async fn list_routes(&self, _ns: &Ns) -> SysResult<Vec<RouteState>> {
        Ok(vec![])
    }
    async fn sysctl_get(&self, ns: &Ns, key: &str) -> SysResult<String> {
        let g = self.inner.lock().unwrap();
        Ok(g.sysctls
            .get(&format!("{ns} {key}"))
            .cloned()
            .unwrap_or_else(|| "0".into()))
    }
    async fn sysctl_set(&self, ns: &Ns, key: &str, value: &str) -> SysResult<()> {
        self.record(format!("sysctl_set {ns} {key}={value}"))?;
        let mut g = self.inner.lock().unwrap();
        g.sysctls.insert(format!("{ns} {key}"), value.into());
        Ok(())
    }
    async fn nft_apply(&self, ns: &Ns, batch: &nftables::schema::Nftables<'_>) -> SysResult<()> {
        let v = serde_json::to_value(batch).map_err(|e| SysError::Nft(e.to_string()))?;
        self.record(format!(
            "nft_apply {ns} {} cmds",
            v["nftables"].as_array().map_or(0, |a| a.len())
        ))?;
        self.inner.lock().unwrap().nft.push(v);
        Ok(())
    }
    async fn nft_list(&self, ns: &Ns, args: &[&str]) -> SysResult<Option<serde_json::Value>> {
        self.record(format!("nft_list {ns} {}", args.join(" ")))?;
        Ok(self
            .inner
            .lock()
            .unwrap()
            .nft_listings
            .remove(&args.join(" ")))
    }
    async fn nft_apply_text(&self, ns: &Ns, script: &str) -> SysResult<()> {
        self.record(format!(
            "nft_apply_text {ns} {} lines",
            script.lines().count()
        ))?;
        self.inner.lock().unwrap().nft_text.push(script.to_string());
        Ok(())
    }
    async fn conntrack_delete(&self, ns: &Ns, f: &super::conntrack::CtFilter) -> SysResult<usize> {
        let addr = f.dst_addr.map_or_else(
            || if f.ipv6 { "any6" } else { "any4" }.to_string(),
            |a| a.to_string(),
        );
        self.record(format!(
            "conntrack_delete {ns} proto {} dst {addr} port {}",
            f.proto, f.dst_port
        ))?;
        Ok(0)
    }
}
